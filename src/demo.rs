//! Demo data: an establishment, a parent with two children, a student and a
//! first-party client, so a newcomer can log in through a real code flow.

use secrecy::{ExposeSecret, SecretString};

use crate::accounts::AccountKind;
use crate::accounts::AccountState;
use crate::accounts::store::{self as accounts, NewAccount};
use crate::app::Clef;
use crate::domain::{
    BirthDate, ClassName, EmailAddress, Identifier, PersonName, Rank, RedirectUri, Uai,
};
use crate::oidc::clients::{self, NewClient};

pub const PASSWORD: &str = "Demo2026clef";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9000/callback";
const UAI: &str = "0590001A";
const CLIENT_NAME: &str = "ENT de démonstration";

pub struct DemoData {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Loads the demo data; later runs reuse it and give the demo client a new
/// secret (Clef keeps only a hash, so the old one cannot be shown again).
pub async fn load(app: &Clef) -> anyhow::Result<DemoData> {
    let db = &app.db;
    let now = app.now();
    let uai = Uai::parse(UAI)?;
    if accounts::establishment_by_uai(db, &uai).await?.is_none() {
        accounts::create_establishment(db, &uai, "Collège Jean Moulin (démo)", now).await?;
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
            Some("2010-11-21"),
            None,
            Some("2 C"),
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
    accounts::link_guardian(db, &ids[0], &ids[1], Rank::new(1)?, now).await?;
    accounts::link_guardian(db, &ids[0], &ids[2], Rank::new(1)?, now).await?;

    let existing = clients::list(db)
        .await?
        .into_iter()
        .find(|c| c.name == CLIENT_NAME);
    let (client_id, client_secret) = match existing {
        Some(client) => {
            let secret = clients::rotate_secret(db, &client.id).await?;
            (client.id, secret)
        }
        None => {
            let new = NewClient {
                name: CLIENT_NAME.into(),
                redirect_uris: vec![RedirectUri::parse(REDIRECT_URI)?],
                post_logout_redirect_uris: vec![],
                is_public: false,
                is_first_party: true,
            };
            let (client, secret) = clients::create(db, new, now).await?;
            (
                client.id,
                secret.ok_or_else(|| anyhow::anyhow!("a confidential client has a secret"))?,
            )
        }
    };
    Ok(DemoData {
        client_id,
        client_secret,
    })
}

impl DemoData {
    /// What `clef demo` prints: accounts, client, and the two steps of a login.
    pub fn instructions(&self, issuer: &str) -> String {
        let id = &self.client_id;
        let secret = self.client_secret.expose_secret();
        format!(
            "Demo data loaded.\n\
             \n  Parent:   parent.martin / {PASSWORD}   (Léa, 5 B, and Hugo, 3 A)\
             \n  Student:  jules.bernard / {PASSWORD}\
             \n  Client:   {id}\
             \n  Secret:   {secret}\n\
             \n1. Open in a browser:\
             \n   {issuer}/authorize?response_type=code&client_id={id}&redirect_uri={REDIRECT_URI}&scope=openid%20profile%20email%20children&state=demo&nonce=demo\
             \n2. Log in as parent.martin. The browser lands on {REDIRECT_URI}?code=… (nothing listens\
             \n   there: copy the code from the address bar) and exchange it within a minute:\
             \n   curl -s -u '{id}:{secret}' -d grant_type=authorization_code -d code=CODE \\\
             \n        -d redirect_uri={REDIRECT_URI} {issuer}/token\
             \n   The id_token's payload (base64url, between the dots) lists both children."
        )
    }
}
