//! Refresh-token families (RFC 6749 §6; OAuth 2.0 Security BCP §4.14): every
//! use rotates the token; a token used twice, past a short grace window for a
//! client's retried request, revokes its whole family — and the access tokens
//! issued from it. Kept in the database, so they outlive a Redis restart.

use sqlx::Row;

use super::Scopes;
use crate::secret::{digest, random_token};
use crate::storage::Db;

/// Lifetimes, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A token unused this long is dead.
    pub idle: i64,
    /// A family ends this long after its code exchange, whatever its use.
    pub absolute: i64,
    /// A token used again less than this many seconds after its first use (the
    /// client retried a request whose answer it lost) gets a successor instead
    /// of revoking the family; 0 disables the window.
    pub grace: i64,
}

impl Policy {
    /// A family that continues a sign-in without `offline_access` ends with
    /// its session (at `session_end`), the person no longer there (OIDC Core
    /// §11): a lapsed session leaves no refresh token behind, as a logout
    /// does not.
    pub fn within_session(self, session_end: i64, now: i64) -> Self {
        Self {
            absolute: self.absolute.min(session_end - now).max(0),
            ..self
        }
    }
}

/// What a family stands for: the sign-in it continues.
#[derive(Debug, Clone)]
pub struct Family {
    pub id: String,
    pub client_id: String,
    pub account_id: String,
    pub scopes: Scopes,
    pub sid: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// The token was good: here is its successor, and the ids of the
    /// successors a retry in the grace window ended (their access tokens go
    /// with them).
    Rotated {
        token: String,
        family: Family,
        superseded: Vec<String>,
    },
    /// Unknown, expired, revoked, or another client's.
    Invalid,
    /// Used before, outside the grace window: the family is now revoked.
    ReuseDetected { family_id: String },
    /// The scopes asked go beyond the family's (RFC 6749 §6): refused, and
    /// the token left as it was.
    WiderScope,
}

/// A family as its columns (`f.*` under their own names) hold it.
fn family_from(row: &sqlx::any::AnyRow) -> Result<Family, sqlx::Error> {
    Ok(Family {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        account_id: row.try_get("account_id")?,
        scopes: Scopes::known(row.try_get::<String, _>("scopes")?.split(' ')),
        sid: row.try_get("sid")?,
        auth_time: row.try_get("auth_time")?,
        amr: row
            .try_get::<String, _>("amr")?
            .split(' ')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A family a code exchange opens, with its first token, ready to be written
/// (by the ledger, in one batch with other exchanges').
#[derive(Debug)]
pub struct Opening {
    pub family: Family,
    created_at: i64,
    expires_at: i64,
    /// The first token's digest, and when it dies unused.
    first_token: String,
    first_token_expires_at: i64,
}

impl Opening {
    /// Opens `family` at `now`; also returns its first refresh token, of
    /// which only the digest is kept.
    pub fn new(family: Family, policy: &Policy, now: i64) -> (Self, String) {
        let token = random_token(32);
        let opening = Self {
            family,
            created_at: now,
            expires_at: now + policy.absolute,
            first_token: digest(&token),
            first_token_expires_at: now + policy.idle.min(policy.absolute),
        };
        (opening, token)
    }
}

/// Writes the families and their first tokens: a few multi-row statements per table
/// (`storage::in_prepared_sizes`).
pub async fn open_all(
    db: &mut sqlx::AnyConnection,
    openings: &[&Opening],
) -> Result<(), sqlx::Error> {
    for run in crate::storage::in_prepared_sizes(openings) {
        let families = format!(
            "INSERT INTO refresh_families (id, client_id, account_id, scopes, sid, auth_time, amr, created_at, expires_at) \
             VALUES {}",
            crate::storage::values_list(run.len(), 9)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(families));
        for opening in run {
            let family = &opening.family;
            query = query
                .bind(family.id.as_str())
                .bind(family.client_id.as_str())
                .bind(family.account_id.as_str())
                .bind(family.scopes.to_wire())
                .bind(family.sid.as_str())
                .bind(family.auth_time)
                .bind(family.amr.join(" "))
                .bind(opening.created_at)
                .bind(opening.expires_at);
        }
        query.execute(&mut *db).await?;
    }
    let first_tokens: Vec<NewToken> = openings
        .iter()
        .map(|opening| NewToken {
            id: &opening.first_token,
            family_id: &opening.family.id,
            issued_at: opening.created_at,
            expires_at: opening.first_token_expires_at,
        })
        .collect();
    insert_tokens(db, &first_tokens).await
}

/// A refresh token's row, as written.
struct NewToken<'a> {
    /// The token's digest.
    id: &'a str,
    family_id: &'a str,
    issued_at: i64,
    expires_at: i64,
}

/// Writes token rows: a family's first tokens in a batch, or a rotation's one.
async fn insert_tokens(
    db: &mut sqlx::AnyConnection,
    tokens: &[NewToken<'_>],
) -> Result<(), sqlx::Error> {
    for run in crate::storage::in_prepared_sizes(tokens) {
        let insert = format!(
            "INSERT INTO refresh_tokens (id, family_id, issued_at, expires_at) VALUES {}",
            crate::storage::values_list(run.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
        for token in run {
            query = query
                .bind(token.id)
                .bind(token.family_id)
                .bind(token.issued_at)
                .bind(token.expires_at);
        }
        query.execute(&mut *db).await?;
    }
    Ok(())
}

/// A new family id (its tokens are random and separate).
pub fn new_family_id() -> String {
    random_token(18)
}

async fn issue(
    tx: &mut sqlx::AnyConnection,
    family_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<String, sqlx::Error> {
    let token = random_token(32);
    let row = NewToken {
        id: &digest(&token),
        family_id,
        issued_at: now,
        expires_at,
    };
    insert_tokens(tx, &[row]).await?;
    Ok(token)
}

/// A refresh token presented at the token endpoint, for rotation.
#[derive(Debug)]
pub struct Presented {
    /// The token's digest, as stored.
    pub id: String,
    pub client_id: String,
    /// A narrower set of the family's scopes, if asked (RFC 6749 §6).
    pub asked: Option<Scopes>,
    pub policy: Policy,
    pub now: i64,
}

impl Presented {
    pub fn new(
        token: &str,
        client_id: &str,
        asked: Option<Scopes>,
        policy: Policy,
        now: i64,
    ) -> Self {
        Self {
            id: digest(token),
            client_id: client_id.to_owned(),
            asked,
            policy,
            now,
        }
    }
}

/// Presents `token` for `client_id` at `now` in a transaction of its own:
/// rotates it, or says why not. Of two concurrent uses, the first rotates and
/// the second is a reuse (within the grace window, it gets a successor too).
/// The token endpoint rotates through `oidc::rotations`, in batches.
#[cfg(test)]
pub async fn rotate(
    db: &mut sqlx::AnyConnection,
    token: &str,
    client_id: &str,
    asked: Option<&Scopes>,
    policy: &Policy,
    now: i64,
) -> Result<Rotation, sqlx::Error> {
    let presented = Presented::new(token, client_id, asked.cloned(), *policy, now);
    let mut tx = sqlx::Connection::begin(db).await?;
    let rotation = rotate_in(&mut tx, &presented).await?;
    tx.commit().await?;
    Ok(rotation)
}

/// Rotates `presented` inside the caller's transaction, which may hold other
/// rotations (`oidc::rotations`): a refusal leaves nothing of its own behind.
pub async fn rotate_in(
    tx: &mut sqlx::AnyConnection,
    presented: &Presented,
) -> Result<Rotation, sqlx::Error> {
    let Presented {
        id,
        client_id,
        asked,
        policy,
        now,
    } = presented;
    let now = *now;
    // The family's row first, taken and read in one statement (SQLite: the
    // write lock, before anything is read): rotations of one family run one
    // after another. On PostgreSQL a retry that waited here reads the family
    // as the one before it left it, successor included, and ends it (below);
    // without it, two retries side by side each missed the other's
    // uncommitted successor and the family lived on in several branches.
    // Tokens are then only ever taken under their family's row, so two
    // rotations never wait on each other's tokens (which deadlocked).
    let row = sqlx::query(
        "UPDATE refresh_families SET revoked_at = revoked_at \
         WHERE id = (SELECT family_id FROM refresh_tokens WHERE id = $1) \
         RETURNING (SELECT expires_at FROM refresh_tokens WHERE id = $1) AS token_expires, \
         id, client_id, account_id, scopes, sid, auth_time, amr, expires_at AS family_expires, revoked_at",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    // Then claim the token: the UPDATE is the atomic step. Claimed, it was
    // unused, so nothing changed it since the read above (a retry ends a
    // successor by using it).
    let claimed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    // A refusal gives the claim back: the transaction may commit others.
    let refuse = async |tx: &mut sqlx::AnyConnection, rotation: Rotation| {
        if claimed {
            sqlx::query("UPDATE refresh_tokens SET used_at = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(rotation)
    };
    let family = family_from(&row)?;
    let family_expires: i64 = row.try_get("family_expires")?;
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    let mut token_expires: i64 = row.try_get("token_expires")?;
    let mut used_at: Option<i64> = None;
    if !claimed {
        // Used already: when, read now under the family's row (the first
        // read, on PostgreSQL, may predate the wait for it).
        let (expires, used): (i64, Option<i64>) =
            sqlx::query_as("SELECT expires_at, used_at FROM refresh_tokens WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        (token_expires, used_at) = (expires, used);
    }
    // A token presented by another client is not theirs to use (RFC 6749 §6).
    if family.client_id != *client_id || revoked.is_some() || family_expires <= now {
        return refuse(tx, Rotation::Invalid).await;
    }
    let mut superseded = Vec::new();
    if !claimed {
        // A retry: the token was used moments ago and nothing ended it since
        // (a successor ended by a retry, below, is a fork's other branch).
        let within_grace =
            used_at.is_some_and(|used| now - used < policy.grace) && token_expires > now;
        if !within_grace {
            revoke_family_in(tx, &family.id, now).await?;
            return Ok(Rotation::ReuseDetected {
                family_id: family.id,
            });
        }
        // The successor the first use got (lost, as far as the client
        // knows) ends, so that the family never forks in two live branches —
        // a thief's and the client's; and it ends as used: whichever of the
        // two holds it and presents it later betrays the fork, and the
        // family is revoked (RFC 9700 §4.14.2).
        superseded = sqlx::query_scalar(
            "UPDATE refresh_tokens SET used_at = $1, expires_at = $1 \
             WHERE family_id = $2 AND used_at IS NULL AND expires_at > $1 RETURNING id",
        )
        .bind(now)
        .bind(&family.id)
        .fetch_all(&mut *tx)
        .await?;
    } else if token_expires <= now {
        return refuse(tx, Rotation::Invalid).await;
    }
    if asked
        .as_ref()
        .is_some_and(|asked| !asked.iter().all(|s| family.scopes.contains(s)))
    {
        // The token is not spent.
        return refuse(tx, Rotation::WiderScope).await;
    }
    let expires_at = (now + policy.idle).min(family_expires);
    let token = issue(tx, &family.id, now, expires_at).await?;
    Ok(Rotation::Rotated {
        token,
        family,
        superseded,
    })
}

async fn revoke_family_in(
    tx: &mut sqlx::AnyConnection,
    family_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Ends a family: its refresh tokens and the access tokens issued from it.
pub async fn revoke_family(db: &Db, family_id: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    revoke_family_in(&mut tx, family_id, now).await?;
    tx.commit().await
}

/// Whether a family still lives (access tokens issued from it check this).
pub async fn family_alive(db: &Db, family_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let alive: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM refresh_families WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(family_id)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(alive.is_some())
}

/// A live refresh token as introspection describes it.
#[derive(Debug)]
pub struct Described {
    pub family: Family,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// The live, unused refresh token `token`, if it is one.
pub async fn describe(db: &Db, token: &str, now: i64) -> Result<Option<Described>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.issued_at, t.expires_at, f.id, f.client_id, f.account_id, f.scopes, f.sid, f.auth_time, f.amr \
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
         WHERE t.id = $1 AND t.used_at IS NULL AND t.expires_at > $2 AND f.revoked_at IS NULL AND f.expires_at > $2",
    )
    .bind(digest(token))
    .bind(now)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Described {
        family: family_from(&row)?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// The family of refresh token `token` whatever its state, to revoke it.
pub async fn family_of(db: &Db, token: &str) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT f.id, f.client_id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.id = $1",
    )
    .bind(digest(token))
    .fetch_optional(db)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("client_id")?)))
        .transpose()
}

/// Ends every family `account_id` holds at `client_id` — their refresh tokens
/// and the access tokens issued from them — when the person withdraws the
/// client's consent. Takes a connection or a transaction; answers how many.
pub async fn revoke_families_of<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    account_id: &str,
    client_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 \
         WHERE account_id = $2 AND client_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(account_id)
    .bind(client_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Ends every family the account holds, at every client (a password reset).
/// Back-Channel Logout 1.0 §2.7: a session's end revokes the refresh tokens
/// issued in it without `offline_access`; those are the sign-in's, not the
/// person's standing permission.
pub async fn revoke_session_bound(
    db: &Db,
    account_id: &str,
    sid: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 \
         WHERE account_id = $2 AND sid = $3 AND revoked_at IS NULL \
         AND (' ' || scopes || ' ') NOT LIKE '% offline_access %'",
    )
    .bind(now)
    .bind(account_id)
    .bind(sid)
    .execute(db)
    .await?
    .rows_affected())
}

/// Ends every family the account holds but those of the session `keep_sid`
/// (« se déconnecter partout »), `offline_access` ones included.
pub async fn revoke_all_but_session(
    db: &Db,
    account_id: &str,
    keep_sid: Option<&str>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 \
         WHERE account_id = $2 AND revoked_at IS NULL AND sid <> $3",
    )
    .bind(now)
    .bind(account_id)
    .bind(keep_sid.unwrap_or(""))
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn revoke_all_of<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    account_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(account_id)
    .execute(conn)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// Present the n-th token issued so far (modulo their number).
        Use(usize),
        Wait(i64),
        Revoke,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0usize..16).prop_map(Step::Use),
            2 => (0i64..6).prop_map(Step::Wait),
            1 => Just(Step::Revoke),
        ]
    }

    async fn database() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::storage::open(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, created_at, updated_at) \
             VALUES ('a1', 'claire.martin', 'guardian', 'active', 'Claire', 'Martin', 0, 0)",
        )
        .execute(&db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, is_public, is_first_party, created_at) \
             VALUES ('ent', 'ENT', 'x', '', '', 0, 1, 0)",
        )
        .execute(&db)
        .await
        .unwrap();
        (dir, db)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any interleaving of uses, reuses, waits and revocations: a revoked
        /// family or a token reused past the grace window never mints a token,
        /// and every other use does, exactly as the model says.
        #[test]
        fn a_revoked_or_reused_token_never_mints_a_new_one(steps in proptest::collection::vec(step(), 1..24)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (_dir, db) = database().await;
                let policy = Policy { idle: 1_000_000, absolute: 2_000_000, grace: 3 };
                let mut now = 1_000;
                let family = Family {
                    id: new_family_id(),
                    client_id: "ent".into(),
                    account_id: "a1".into(),
                    scopes: Scopes::known(["openid"]),
                    sid: "s".into(),
                    auth_time: now,
                    amr: vec!["pwd".into()],
                };
                let (opening, first) = Opening::new(family.clone(), &policy, now);
                open_all(&mut db.acquire().await.unwrap(), &[&opening]).await.unwrap();
                // The model: each token issued, when it was first used, and
                // whether it still works (a retry ends the unused ones, as
                // used: presented later, they betray a fork).
                let mut tokens: Vec<(String, Option<i64>, bool)> = vec![(first, None, true)];
                let mut revoked = false;
                for step in steps {
                    match step {
                        Step::Wait(seconds) => now += seconds,
                        Step::Revoke => {
                            revoke_family(&db, &family.id, now).await.unwrap();
                            revoked = true;
                        }
                        Step::Use(n) => {
                            let n = n % tokens.len();
                            let (token, used_at, works) = tokens[n].clone();
                            let outcome = rotate(&mut db.acquire().await.unwrap(), &token, "ent", None, &policy, now).await.unwrap();
                            match (revoked, used_at) {
                                (true, _) => prop_assert!(matches!(outcome, Rotation::Invalid), "{outcome:?}"),
                                (false, Some(used)) if !works || now - used >= policy.grace => {
                                    prop_assert!(matches!(outcome, Rotation::ReuseDetected { .. }), "{outcome:?}");
                                    revoked = true;
                                }
                                (false, None) if !works => {
                                    prop_assert!(matches!(outcome, Rotation::Invalid), "{outcome:?}");
                                }
                                (false, used) => {
                                    let Rotation::Rotated { token: next, .. } = outcome else {
                                        return Err(TestCaseError::fail(format!("expected a rotation, got {outcome:?}")));
                                    };
                                    match used {
                                        None => tokens[n].1 = Some(now),
                                        // A retry: the successors not used yet end, as used.
                                        Some(_) => tokens
                                            .iter_mut()
                                            .filter(|(_, used, _)| used.is_none())
                                            .for_each(|(_, used, works)| {
                                                *used = Some(now);
                                                *works = false;
                                            }),
                                    }
                                    tokens.push((next, None, true));
                                }
                            }
                            // Another client never gets anything from it.
                            let stolen = rotate(&mut db.acquire().await.unwrap(), &token, "other", None, &policy, now).await.unwrap();
                            prop_assert!(matches!(stolen, Rotation::Invalid));
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
}
