//! Claims about an account, by scope, for the ID token and UserInfo (SPEC §4).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::clients::{Client, SubjectType};
use super::{Scopes, consent};
use crate::accounts::{Account, AccountKind, store};
use crate::secret::load_or_create_key;
use crate::storage::Db;

/// The `sub` each client sees for an account (OIDC Core §8): the account's
/// immutable id (never the identifier, which may change) for a public client;
/// for a pairwise one, an HMAC of its sector and the id under the server's
/// key (`keys/pairwise.key`, shared by every instance, never to be replaced:
/// every pairwise subject would change), so two unrelated services cannot
/// link a parent or a child, and one service always sees the same `sub`.
pub struct Subjects {
    keyed: Hmac<Sha256>,
}

impl Subjects {
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let key = load_or_create_key(&dir.join("pairwise.key"), "pairwise")?;
        let keyed = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| anyhow::anyhow!("pairwise key: {e}"))?;
        Ok(Self { keyed })
    }

    pub fn of(&self, client: &Client, account_id: &str) -> String {
        match client.subject_type {
            SubjectType::Public => account_id.to_owned(),
            SubjectType::Pairwise => {
                let mut mac = self.keyed.clone();
                mac.update(client.sector().as_bytes());
                mac.update(b"\0");
                mac.update(account_id.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
        }
    }

    /// The `sid` each client sees for a session (ID token, logout token,
    /// introspection): the session's id for a public client; for a pairwise
    /// one, an HMAC of its sector and the id, so two unrelated services used
    /// in one session cannot join their records on it (Front-Channel Logout
    /// 1.0 §3 asks only that it be unique at the issuer and opaque).
    pub fn session_of(&self, client: &Client, sid: &str) -> String {
        match client.subject_type {
            SubjectType::Public => sid.to_owned(),
            SubjectType::Pairwise => {
                let mut mac = self.keyed.clone();
                mac.update(b"sid\0");
                mac.update(client.sector().as_bytes());
                mac.update(b"\0");
                mac.update(sid.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
        }
    }
}

/// The scope each standard claim belongs to (OIDC Core §5.4), for the `claims`
/// request parameter: asking for a claim asks for its scope, so consent and
/// the token's `scope` say what the client receives.
pub fn scope_of(claim: &str) -> Option<&'static str> {
    Some(match claim {
        "name" | "given_name" | "family_name" | "preferred_username" | "birthdate" => "profile",
        "email" | "email_verified" => "email",
        "phone_number" | "phone_number_verified" => "phone",
        "children" => "children",
        "school" => "school",
        _ => return None,
    })
}

/// The scope-dependent claims (everything but the protocol claims). A
/// connection is taken from `db` only for the claims beyond the account's own
/// row: a guardian's children, a student's school.
pub async fn for_scopes(
    db: &Db,
    subjects: &Subjects,
    client: &Client,
    account: &Account,
    scopes: &Scopes,
) -> anyhow::Result<Map<String, Value>> {
    let mut claims = Map::new();
    claims.insert("sub".into(), subjects.of(client, &account.id).into());
    if scopes.contains("profile") {
        claims.insert(
            "name".into(),
            format!("{} {}", account.given_name, account.family_name).into(),
        );
        claims.insert("given_name".into(), account.given_name.clone().into());
        claims.insert("family_name".into(), account.family_name.clone().into());
        // The login identifier: half of what signs the person in, and the
        // same for every service, which pairwise subjects are not. For the
        // academy's own services only; the consent screen says names.
        if client.is_first_party {
            claims.insert(
                "preferred_username".into(),
                account.identifier.clone().into(),
            );
        }
        // A pupil's birth date is part of their profile (the consent screen
        // says so); a parent's, which only an operator records, goes to the
        // academy's own services alone: a third party's screen says names.
        let told = client.is_first_party || account.kind != AccountKind::Guardian;
        if let Some(birthdate) = account.birthdate.as_ref().filter(|_| told) {
            claims.insert("birthdate".into(), birthdate.clone().into());
        }
    }
    if scopes.contains("email")
        && let Some(email) = &account.email
    {
        claims.insert("email".into(), email.clone().into());
        claims.insert(
            "email_verified".into(),
            account.email_verified_at.is_some().into(),
        );
    }
    if scopes.contains("phone")
        && let Some(phone) = &account.phone
    {
        claims.insert(
            "phone_number".into(),
            crate::provisioning::csv_file::Phone::as_stored(phone).into(),
        );
        // The number comes from the school's file; Clef never checked it.
        claims.insert("phone_number_verified".into(), false.into());
    }
    match account.kind {
        AccountKind::Guardian if scopes.contains("children") => {
            let mut conn = db.acquire().await?;
            let mut children = store::children(&mut *conn, &account.id).await?;
            // A third party: the children the person's consent listed.
            if !client.is_first_party {
                let covered =
                    consent::children_covered(&mut *conn, &account.id, &client.id).await?;
                children.retain(|child| covered.contains(&child.id));
            }
            let children: Vec<Value> = children
                .into_iter()
                .map(|child| {
                    let mut entry = json!({
                        "sub": subjects.of(client, &child.id),
                        "given_name": child.given_name,
                        "family_name": child.family_name,
                        "birthdate": child.birthdate,
                        "establishment": child.establishment.map(|e| json!({"uai": e.uai, "name": e.name})),
                        "class": child.class_name,
                    });
                    // The parent's legal rank is the school's business, for
                    // its own services: the consent screen of a third party
                    // names the children's names, birth dates and schools.
                    if client.is_first_party {
                        entry["rank"] = child.rank.into();
                    }
                    entry
                })
                .collect();
            claims.insert("children".into(), children.into());
        }
        AccountKind::Student if scopes.contains("school") => {
            if let Some(establishment_id) = &account.establishment_id
                && let Some(establishment) =
                    store::establishment_by_id(&mut *db.acquire().await?, establishment_id).await?
            {
                claims.insert(
                    "school".into(),
                    json!({"uai": establishment.uai, "name": establishment.name, "class": account.class_name}),
                );
            }
        }
        _ => {}
    }
    Ok(claims)
}
