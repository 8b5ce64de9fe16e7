//! Demo data: an establishment, a parent with two children, a student and a
//! first-party client, so a newcomer can log in through a real code flow.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::AccountKind;
use crate::accounts::AccountState;
use crate::accounts::store::{self as accounts, NewAccount};
use crate::app::Clef;
use crate::domain::{
    BirthDate, ClassName, EmailAddress, Identifier, PersonName, Rank, RedirectUri, Uai,
};
use crate::oidc::clients::{self, NewClient};
use crate::provisioning::csv_file::Phone;

pub const PASSWORD: &str = "Demo2026clef";
/// The demo parent's mobile number.
pub const DEMO_PHONE: &str = "0612345678";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9000/callback";
const UAI: &str = "0590001A";
const CLIENT_NAME: &str = "ENT de démonstration";
/// Under `data_dir`: the demo client's secret, so that every run prints the same one
/// (Clef itself keeps only its hash).
const SECRET_FILE: &str = "demo-client-secret";

pub struct DemoData {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where the secret is kept between runs.
    pub secret_file: PathBuf,
}

/// Where the demo data may be loaded.
#[derive(Debug, Clone, Copy)]
pub struct Where {
    /// Also behind an issuer that is not on loopback (a shared test server).
    pub allow_public: bool,
}

/// Loads the demo data; later runs reuse it, and the client's secret kept in
/// `data_dir` as long as it still matches the client's hash (otherwise the client
/// gets a new secret, written there). Refused behind an issuer that is not on
/// loopback unless `place` allows it: the demo accounts' password is in the
/// README, and a production database would let anyone sign in with it.
pub async fn load(app: &Clef, place: Where) -> anyhow::Result<DemoData> {
    anyhow::ensure!(
        place.allow_public || crate::domain::is_loopback(&app.config.issuer),
        "the demo accounts' password is published in the README: they are loaded only \
         behind an issuer on this machine (http://localhost:8080, http://127.0.0.1:…), \
         not {}; for a shared test server, add --allow-public",
        app.config.issuer_str()
    );
    let db = &app.db;
    let now = app.now();
    let uai = Uai::parse(UAI)?;
    if accounts::establishment_by_uai(db, &uai).await?.is_none() {
        let named = crate::accounts::EstablishmentChange::named("Collège Jean Moulin (démo)");
        accounts::create_establishment(db, &uai, &named, now).await?;
    }
    let password = SecretString::from(PASSWORD.to_owned());
    let people = [
        (
            "parent.martin",
            AccountKind::Guardian,
            "Claire",
            "Martin",
            None,
            Some("claire.martin@example.org"),
            None,
        ),
        (
            "lea.martin",
            AccountKind::Student,
            "Léa",
            "Martin",
            Some("2013-05-14"),
            None,
            Some("5 B"),
        ),
        (
            "hugo.martin",
            AccountKind::Student,
            "Hugo",
            "Martin",
            Some("2011-02-03"),
            None,
            Some("3 A"),
        ),
        (
            "jules.bernard",
            AccountKind::Student,
            "Jules",
            "Bernard",
            Some("2013-11-21"),
            None,
            Some("4 C"),
        ),
    ];
    let mut ids = Vec::new();
    for (identifier, kind, given, family, birthdate, email, class) in people {
        let identifier = Identifier::parse(identifier)?;
        let account = match accounts::account_by_identifier(db, &identifier).await? {
            Some(account) => account,
            None => {
                let new = NewAccount {
                    identifier,
                    kind,
                    state: AccountState::Active,
                    given_name: PersonName::parse("prénom", given)?,
                    family_name: PersonName::parse("nom", family)?,
                    birthdate: birthdate.map(BirthDate::parse).transpose()?,
                    email: email.map(EmailAddress::parse).transpose()?,
                    email_verified: email.is_some(),
                    establishment: class
                        .map(ClassName::parse)
                        .transpose()?
                        .map(|c| (uai.clone(), c)),
                    password_hash: Some(app.passwords.hash(&password).await?),
                };
                accounts::create_account(db, new, now).await?
            }
        };
        ids.push(account.id);
    }
    // The parent's mobile, so « mot de passe oublié ? » can be tried by SMS
    // (written to the SMS outbox unless a gateway is configured).
    accounts::set_phone(db, &ids[0], Some(&Phone::parse(DEMO_PHONE)?), now).await?;
    accounts::link_guardian(db, &ids[0], &ids[1], Rank::new(1)?, now).await?;
    accounts::link_guardian(db, &ids[0], &ids[2], Rank::new(1)?, now).await?;

    let existing = clients::list(db)
        .await?
        .into_iter()
        .find(|c| c.name == CLIENT_NAME);
    let secret_file = app.config.data_dir.join(SECRET_FILE);
    let kept = read_secret(&secret_file)?;
    let (client_id, client_secret) = match existing {
        Some(client) => match kept.filter(|secret| client.secret_matches(secret.expose_secret())) {
            Some(secret) => (client.id, secret),
            None => {
                let secret = clients::rotate_secret(db, &client.id).await?;
                write_secret(&secret_file, &secret)?;
                (client.id, secret)
            }
        },
        None => {
            let new = NewClient {
                name: CLIENT_NAME.into(),
                redirect_uris: vec![RedirectUri::parse(REDIRECT_URI)?],
                post_logout_redirect_uris: vec![],
                is_public: false,
                is_first_party: true,
                ..NewClient::default()
            };
            let (client, secret) = clients::create(db, new, now).await?;
            let secret =
                secret.ok_or_else(|| anyhow::anyhow!("a confidential client has a secret"))?;
            write_secret(&secret_file, &secret)?;
            (client.id, secret)
        }
    };
    Ok(DemoData {
        client_id,
        client_secret,
        secret_file,
    })
}

fn read_secret(path: &Path) -> anyhow::Result<Option<SecretString>> {
    match std::fs::read_to_string(path) {
        Ok(secret) => Ok(Some(secret.trim().to_owned().into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Written to a fresh 0600 file, then renamed into place: the secret is its owner's
/// alone whatever the folder, and never half-written.
fn write_secret(path: &Path, secret: &SecretString) -> anyhow::Result<()> {
    use std::io::Write;

    let dir = path.parent().unwrap_or(Path::new("."));
    let mut folder = std::fs::DirBuilder::new();
    folder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
    folder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&temporary)
        .and_then(|mut file| {
            writeln!(file, "{}", secret.expose_secret())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("writing {}", path.display()))
}

/// A shell pipeline printing the payload of the JWT written in place of `ID_TOKEN`.
pub const DECODE_PAYLOAD: &str = "echo 'ID_TOKEN' | cut -d. -f2 | tr '_-' '/+' \
     | awk '{ while (length($0) % 4) $0 = $0 \"=\"; print }' | base64 -d; echo";

impl DemoData {
    /// What `clef demo` prints: accounts, client, the steps of a login, and how to
    /// read the ID token.
    pub fn instructions(&self, issuer: &str) -> String {
        let id = &self.client_id;
        let secret = self.client_secret.expose_secret();
        let secret_file = self.secret_file.display();
        format!(
            "Demo data loaded.\n\
             \n  Parent:   parent.martin / {PASSWORD}   (Léa, 5 B, and Hugo, 3 A)\
             \n  Student:  jules.bernard / {PASSWORD}\
             \n  Client:   {id}\
             \n  Secret:   {secret}   (kept in {secret_file}: the same at every start)\n\
             \n1. Open in a browser:\
             \n   {issuer}/authorize?response_type=code&client_id={id}&redirect_uri={REDIRECT_URI}&scope=openid%20profile%20email%20children&state=demo&nonce=demo\
             \n2. Log in as parent.martin. The browser lands on {REDIRECT_URI}?code=… (nothing listens\
             \n   there: copy the code from the address bar) and exchange it within a minute:\
             \n   curl -s -u '{id}:{secret}' -d grant_type=authorization_code -d code=CODE \\\
             \n        -d redirect_uri={REDIRECT_URI} {issuer}/token\
             \n3. The id_token's payload lists both children. To read it, paste the id_token in place\
             \n   of ID_TOKEN (base64url between two dots; awk adds the padding base64 wants):\
             \n   {DECODE_PAYLOAD}"
        )
    }
}
