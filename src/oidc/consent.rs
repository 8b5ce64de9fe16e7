//! Consent (SPEC §4): a third-party client receives an account's data only
//! after the person accepted, on a page, what it will receive. Remembered per
//! account and client as the scopes accepted so far; asked again when a
//! request wants more, or when the client sends `prompt=consent`.

use super::Scopes;
use super::authorize::AuthorizationRequest;
use super::clients::Client;
use crate::storage::Db;

/// Whether this request needs the person's consent before a code is issued.
pub async fn required(
    db: &Db,
    client: &Client,
    account_id: &str,
    request: &AuthorizationRequest,
) -> Result<bool, sqlx::Error> {
    if request.prompt_consent {
        return Ok(true);
    }
    if client.is_first_party {
        return Ok(false);
    }
    let granted = granted(db, account_id, &client.id).await?;
    Ok(!request
        .scopes
        .iter()
        .all(|scope| granted.as_ref().is_some_and(|g| g.contains(scope))))
}

/// The scopes `account_id` has accepted for `client_id`, if any.
pub async fn granted(
    db: &Db,
    account_id: &str,
    client_id: &str,
) -> Result<Option<Scopes>, sqlx::Error> {
    let scopes: Option<String> =
        sqlx::query_scalar("SELECT scopes FROM consents WHERE account_id = $1 AND client_id = $2")
            .bind(account_id)
            .bind(client_id)
            .fetch_optional(db)
            .await?;
    Ok(scopes.map(|s| Scopes::known(s.split(' '))))
}

/// Records the person's acceptance of `scopes`, added to what they accepted before.
pub async fn grant(
    db: &Db,
    account_id: &str,
    client_id: &str,
    scopes: &Scopes,
    now: i64,
) -> Result<(), sqlx::Error> {
    let before = granted(db, account_id, client_id).await?;
    let all = Scopes::known(before.iter().flat_map(|b| b.iter()).chain(scopes.iter()));
    sqlx::query(
        "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
    )
    .bind(account_id)
    .bind(client_id)
    .bind(all.to_wire())
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// What a scope gives a service, in the words a parent reads on the consent page.
pub fn described(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("votre identifiant Clef, pour vous reconnaître"),
        "profile" => Some("vos nom et prénom (et votre date de naissance pour un élève)"),
        "email" => Some("votre adresse mail"),
        "children" => Some(
            "la liste de vos enfants : leurs nom, prénom et date de naissance, leur établissement et leur classe",
        ),
        "school" => Some("votre établissement et votre classe"),
        "offline_access" => Some(
            "garder l'accès à ces informations quand vous n'êtes pas connecté(e), jusqu'à ce que vous le retiriez",
        ),
        _ => None,
    }
}
