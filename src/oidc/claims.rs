//! Claims about an account, by scope, for the ID token and UserInfo (SPEC §4).

use serde_json::{Map, Value, json};

use super::Scopes;
use super::clients::Client;
use crate::accounts::{Account, AccountKind, store};
use crate::storage::Db;

/// The subject a client sees for an account. Public subjects for now: the
/// account's immutable id, never the identifier (which may change).
pub fn subject(_client: &Client, account_id: &str) -> String {
    account_id.to_owned()
}

/// The scope-dependent claims (everything but the protocol claims).
pub async fn for_scopes(
    db: &Db,
    client: &Client,
    account: &Account,
    scopes: &Scopes,
) -> anyhow::Result<Map<String, Value>> {
    let mut claims = Map::new();
    claims.insert("sub".into(), subject(client, &account.id).into());
    if scopes.contains("profile") {
        claims.insert(
            "name".into(),
            format!("{} {}", account.given_name, account.family_name).into(),
        );
        claims.insert("given_name".into(), account.given_name.clone().into());
        claims.insert("family_name".into(), account.family_name.clone().into());
        claims.insert(
            "preferred_username".into(),
            account.identifier.clone().into(),
        );
        if let Some(birthdate) = &account.birthdate {
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
    if scopes.contains("children") && account.kind == AccountKind::Guardian {
        let children = store::children(db, &account.id).await?;
        let children: Vec<Value> = children
            .into_iter()
            .map(|child| {
                json!({
                    "sub": subject(client, &child.id),
                    "given_name": child.given_name,
                    "family_name": child.family_name,
                    "birthdate": child.birthdate,
                    "rank": child.rank,
                    "establishment": child.establishment.map(|e| json!({"uai": e.uai, "name": e.name})),
                    "class": child.class_name,
                })
            })
            .collect();
        claims.insert("children".into(), children.into());
    }
    if scopes.contains("school")
        && account.kind == AccountKind::Student
        && let Some(establishment_id) = &account.establishment_id
        && let Some(establishment) = store::establishment_by_id(db, establishment_id).await?
    {
        claims.insert(
            "school".into(),
            json!({"uai": establishment.uai, "name": establishment.name, "class": account.class_name}),
        );
    }
    Ok(claims)
}
