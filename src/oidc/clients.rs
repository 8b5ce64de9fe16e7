//! Relying parties: registration, lookup and authentication of clients.

use secrecy::SecretString;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{FieldError, RedirectUri};
use crate::secret::{constant_time_eq, digest, random_token};
use crate::storage::Db;

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// A public client (SPA, native app) has no secret and must use PKCE.
    pub is_public: bool,
    /// First-party clients (the academy's ENT) skip the consent screen.
    pub is_first_party: bool,
    pub created_at: i64,
}

impl Client {
    /// The registered URI equal to `candidate`, compared as strings (no
    /// normalisation, no prefix matching: OAuth 2.0 Security BCP §4.1.3).
    pub fn registered_redirect_uri(&self, candidate: &str) -> Option<&RedirectUri> {
        self.redirect_uris
            .iter()
            .find(|uri| uri.as_str() == candidate)
    }

    /// Checks a presented secret against the stored digest in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => constant_time_eq(&digest(presented), hash),
            None => false,
        }
    }
}

pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub is_public: bool,
    pub is_first_party: bool,
}

impl NewClient {
    pub fn validate(&self) -> Result<(), FieldError> {
        crate::domain::text("nom", &self.name, 100)?;
        if self.redirect_uris.is_empty() {
            return Err(FieldError::new(
                "redirect_uri",
                crate::domain::Problem::Empty,
            ));
        }
        Ok(())
    }
}

/// Registers a client; the secret is returned once and only its digest is kept.
pub async fn create(
    db: &Db,
    new: NewClient,
    now: i64,
) -> anyhow::Result<(Client, Option<SecretString>)> {
    new.validate()?;
    let id = format!("clef-{}", random_token(16));
    let secret = (!new.is_public).then(|| random_token(32));
    let client = Client {
        id,
        name: new.name.trim().to_owned(),
        secret_hash: secret.as_deref().map(digest),
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        is_public: new.is_public,
        is_first_party: new.is_first_party,
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, is_public, \
         is_first_party, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&client.id)
    .bind(&client.name)
    .bind(&client.secret_hash)
    .bind(serde_json::to_string(&client.redirect_uris)?)
    .bind(serde_json::to_string(&client.post_logout_redirect_uris)?)
    .bind(i64::from(client.is_public))
    .bind(i64::from(client.is_first_party))
    .bind(now)
    .execute(db)
    .await?;
    Ok((client, secret.map(SecretString::from)))
}

/// Gives a confidential client a new secret; the old one stops working at once.
pub async fn rotate_secret(db: &Db, id: &str) -> anyhow::Result<SecretString> {
    let secret = random_token(32);
    let updated =
        sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2 AND is_public = 0")
            .bind(digest(&secret))
            .bind(id)
            .execute(db)
            .await?;
    anyhow::ensure!(updated.rows_affected() == 1, "no confidential client {id}");
    Ok(secret.into())
}

const COLUMNS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, is_public, is_first_party, created_at";

fn client_from(row: &AnyRow) -> Result<Client, sqlx::Error> {
    let uris = |column: &str| -> Result<Vec<RedirectUri>, sqlx::Error> {
        let json: String = row.try_get(column)?;
        serde_json::from_str(&json).map_err(|e| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: e.into(),
        })
    };
    Ok(Client {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        redirect_uris: uris("redirect_uris")?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris")?,
        is_public: row.try_get::<i64, _>("is_public")? == 1,
        is_first_party: row.try_get::<i64, _>("is_first_party")? == 1,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Client>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(|row| client_from(&row))
        .transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Client>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM clients ORDER BY created_at, name");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(db)
        .await?
        .iter()
        .map(client_from)
        .collect()
}
