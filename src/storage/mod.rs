//! Storage: the relational database (SQLite embedded, or PostgreSQL), its
//! migrations, and the short-lived store (in-process, or Redis).

pub mod batch;
mod breaker;
mod ephemeral;
mod typed;
mod unavailable;

pub use breaker::{Breaker, DatabaseDown};
pub use ephemeral::{
    Attempt, Backoff, MemoryStore, RedisStore, RedisTarget, ShortLived,
    check_url as check_redis_url,
};
pub use typed::Kind;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, SqlStr};

use crate::config::Config;

pub use unavailable::{
    RETRY_AFTER, database_unreachable, is_unavailable, sqlx_unavailable, sqlx_unreachable,
};

/// The pool every capability's store functions take. Queries go through sqlx's
/// `Any` driver with portable SQL (`$1` placeholders work on SQLite and
/// PostgreSQL alike), so one code path and one test suite serve both databases;
/// the compile-time macros would bind each query to a single database.
pub type Db = AnyPool;

/// Migrations, carried in the binary so `clef` runs from any directory.
/// Append-only: a released migration is never edited.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/0001_foundation.sql"),
    ),
    (
        2,
        "provisioning",
        include_str!("../../migrations/0002_provisioning.sql"),
    ),
    (
        3,
        "session epoch",
        include_str!("../../migrations/0003_session_epoch.sql"),
    ),
    (
        4,
        "consents",
        include_str!("../../migrations/0004_consents.sql"),
    ),
    (
        5,
        "refresh tokens",
        include_str!("../../migrations/0005_refresh_tokens.sql"),
    ),
    (
        6,
        "sessions and logout",
        include_str!("../../migrations/0006_sessions_and_logout.sql"),
    ),
    (
        7,
        "client credentials",
        include_str!("../../migrations/0007_client_credentials.sql"),
    ),
    (
        8,
        "client refresh lifetimes",
        include_str!("../../migrations/0008_client_refresh_lifetimes.sql"),
    ),
    (
        9,
        "recovery",
        include_str!("../../migrations/0009_recovery.sql"),
    ),
    (
        10,
        "client metadata",
        include_str!("../../migrations/0010_client_metadata.sql"),
    ),
    (
        11,
        "registration",
        include_str!("../../migrations/0011_registration.sql"),
    ),
    (
        12,
        "audit and staff",
        include_str!("../../migrations/0012_audit_and_staff.sql"),
    ),
    (
        13,
        "indexes at scale",
        include_str!("../../migrations/0013_indexes_at_scale.sql"),
    ),
    (
        14,
        "client default max age",
        include_str!("../../migrations/0014_client_default_max_age.sql"),
    ),
    (
        15,
        "account locale",
        include_str!("../../migrations/0015_account_locale.sql"),
    ),
    (
        16,
        "session registry epoch",
        include_str!("../../migrations/0016_session_registry_epoch.sql"),
    ),
    (
        17,
        "account closed by school",
        include_str!("../../migrations/0017_account_closed_by_school.sql"),
    ),
    (
        18,
        "consent children",
        include_str!("../../migrations/0018_consent_children.sql"),
    ),
    (
        19,
        "client request object alg",
        include_str!("../../migrations/0019_client_request_object_alg.sql"),
    ),
    (
        20,
        "previous login",
        include_str!("../../migrations/0020_previous_login.sql"),
    ),
    (
        21,
        "guardianship grouped from",
        include_str!("../../migrations/0021_guardianship_grouped_from.sql"),
    ),
    (
        22,
        "client deletion indexes",
        include_str!("../../migrations/0022_client_deletion_indexes.sql"),
    ),
    (
        23,
        "account closed at",
        include_str!("../../migrations/0023_account_closed_at.sql"),
    ),
    (
        24,
        "registration token clients",
        include_str!("../../migrations/0024_registration_token_clients.sql"),
    ),
    (
        25,
        "client own sector",
        include_str!("../../migrations/0025_client_own_sector.sql"),
    ),
];

pub fn migrator() -> Migrator {
    migrator_up_to(i64::MAX)
}

/// The migrations up to `last`, to test one against data of the version before.
fn migrator_up_to(last: i64) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .filter(|&&(version, _, _)| version <= last)
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

/// The database URL in effect: the configured one, or a SQLite file under the data dir.
pub fn database_url(config: &Config) -> anyhow::Result<String> {
    match &config.database_url {
        Some(url) => Ok(url.expose_secret().to_owned()),
        None => {
            // The database holds password hashes: the folder is its owner's alone.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(&config.data_dir)
                .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
            let path = config.data_dir.join("clef.db");
            create_private(&path)?;
            Ok(sqlite_url(&path))
        }
    }
}

/// Creates the SQLite file `0600` before SQLite does (it would create it `0644`
/// less the umask), whatever the folder's own mode: the data folder may be a
/// volume mounted `0755`. SQLite gives the `-wal` and `-shm` files it creates
/// the main file's mode. An existing file open to others is closed to them.
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0
            && let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
        {
            // Another user's file: SQLite can still use it; say so, do not refuse to start.
            tracing::warn!(path = %path.display(), error = %e, "the database file is readable by others (chmod 600 it)");
        }
    }
    Ok(())
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters: the VALUES
/// of a multi-row statement, numbered as both SQLite and PostgreSQL read them.
/// Only placeholders: what it builds is safe to format into SQL.
pub fn values_list(rows: usize, columns: usize) -> String {
    let mut list = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        list.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                list.push_str(", ");
            }
            list.push('$');
            list.push_str(&(row * columns + column + 1).to_string());
        }
        list.push(')');
    }
    list
}

/// `items` in runs of 64, 32, 16, 8, 4, 2 and 1, largest first (13 are 8, 4
/// and 1). A multi-row statement per run then has one of seven shapes for any
/// batch, each prepared once and kept, where a statement sized to each batch
/// would be prepared anew every time.
pub fn in_prepared_sizes<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = 1 << (usize::BITS - 1 - rest.len().leading_zeros()).min(6);
        let (run, after) = rest.split_at(size);
        rest = after;
        Some(run)
    })
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// How long a request waits for a PostgreSQL connection before 503.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a PostgreSQL statement of the pool waits for a lock before it
/// fails (SQLSTATE 55P03, read as the database busy: 503).
const POSTGRES_LOCK_TIMEOUT: &str = "SET lock_timeout = '2s'";

/// Lets the statements of `tx` wait for their locks as long as they must:
/// work that is not a request (an import waits for the school's previous
/// import to end). Nothing on SQLite, whose writers wait their busy timeout.
pub async fn wait_for_locks(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> sqlx::Result<()> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SET LOCAL lock_timeout = 0")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The database URL read, without connecting (also `clef config check`).
pub fn connect_options(url: &str) -> anyhow::Result<AnyConnectOptions> {
    sqlx::any::install_default_drivers();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        anyhow::bail!("the database URL must start with sqlite:// or postgres://");
    }
    // The driver's own reading, which `AnyConnectOptions` leaves to the first
    // connection: a bad parameter (`sslmode=bogus`) is told now, by
    // `config check` too.
    let read = if url.starts_with("sqlite:") {
        sqlx::sqlite::SqliteConnectOptions::from_str(url).map(drop)
    } else {
        sqlx::postgres::PgConnectOptions::from_str(url).map(drop)
    };
    if let Err(e) = read {
        // Its innermost cause alone: sqlx nests the one message thrice.
        let cause = anyhow::Error::from(e).root_cause().to_string();
        anyhow::bail!("reading the database URL: {cause}");
    }
    if url.starts_with("sqlite:") {
        return AnyConnectOptions::from_str(url).context("parsing the database URL");
    }
    let mut named = url::Url::parse(url).context("reading the database URL")?;
    postgres_url_complete(&named)?;
    // Named in pg_stat_activity and PostgreSQL's logs, unless the URL names it.
    if !named
        .query_pairs()
        .any(|(key, _)| key == "application_name")
    {
        named
            .query_pairs_mut()
            .append_pair("application_name", "clef");
    }
    AnyConnectOptions::from_str(named.as_str()).context("parsing the database URL")
}

/// What the driver reads without complaint but no connection can use: no
/// host at all (in the URL, its `host=` or `PGHOST`), or a `sslrootcert`
/// file that is not there (read only when connecting).
fn postgres_url_complete(parsed: &url::Url) -> anyhow::Result<()> {
    let param = |name: &str| {
        parsed
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let host = parsed.host_str().is_some_and(|host| !host.is_empty())
        || param("host").is_some()
        || std::env::var_os("PGHOST").is_some();
    anyhow::ensure!(
        host,
        "the database URL names no host: postgres://user@host:5432/database"
    );
    if let Some(file) = param("sslrootcert") {
        anyhow::ensure!(
            std::path::Path::new(&file).is_file(),
            "the database URL's sslrootcert {file}: no such file"
        );
    }
    Ok(())
}

/// Opens the pool (without migrating).
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    let options = connect_options(url)?;
    let is_sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        // SQLite writes one at a time anyway; a small pool keeps the file locks short.
        .max_connections(if is_sqlite { 4 } else { 16 })
        // A PostgreSQL that is down or frozen must fail a request in about two
        // seconds (503), not hold it for sqlx's default 30. The bound covers
        // connecting, and pinging an idle connection before handing it out.
        .acquire_timeout(if is_sqlite {
            Duration::from_secs(10)
        } else {
            POSTGRES_ACQUIRE_TIMEOUT
        })
        // The ping before handing out a connection finds a PostgreSQL that
        // went away; a SQLite file cannot, and its ping is one more trip to
        // the connection's worker thread on every checkout.
        .test_before_acquire(!is_sqlite)
        // SQLite: readers do not block the writer (WAL, which persists in the
        // file), and a commit is durable once in the log, synced at checkpoints
        // rather than at every commit (SQLite's advice for WAL): a crash of
        // Clef loses nothing; a power cut may lose the last commits, never
        // consistency. Temporary storage in memory: a multi-row insert inside
        // a transaction journals the pages it changes, in case it must be
        // undone alone; in a file that is a write per statement (measured: 4–9 %
        // more code exchanges per second). PostgreSQL keeps its own settings.
        //
        // PostgreSQL: a statement waits at most `POSTGRES_LOCK_TIMEOUT` for a
        // lock (a table an upgrade's migration is indexing, a long transaction
        // of an operator's): it then fails as the database busy, 503 with
        // Retry-After, instead of holding the request until its timeout.
        // Migrations run on a connection of their own, without this bound.
        .after_connect(move |connection, _| {
            Box::pin(async move {
                let settings: &[&'static str] = if is_sqlite {
                    &[
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA temp_store = MEMORY",
                    ]
                } else {
                    &[POSTGRES_LOCK_TIMEOUT]
                };
                for setting in settings {
                    sqlx::query(*setting).execute(&mut *connection).await?;
                }
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await;
    match pool {
        Ok(pool) => Ok(pool),
        Err(e) => {
            // The pool's timeout hides why it got no connection: one more
            // attempt, alone, tells (refused, unknown host, wrong password…).
            let cause = match e {
                sqlx::Error::PoolTimedOut => {
                    use sqlx::Connection;
                    sqlx::AnyConnection::connect_with(&options).await.err()
                }
                e => Some(e),
            };
            let cause = match cause {
                // PostgreSQL's message, without where in its source it came from.
                Some(sqlx::Error::Database(e)) => e.message().to_owned(),
                Some(e) => anyhow::Error::from(e).root_cause().to_string(),
                None => "no connection within the time allowed".into(),
            };
            anyhow::bail!(
                "connecting to the database at {}: {cause}",
                database_shown(url)
            )
        }
    }
}

/// Where a database URL points, as `config check` shows it (password and
/// options masked).
fn database_shown(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "the configured URL".into(),
        |url| crate::config::shown_url(&url),
    )
}

/// Opens the pool and applies pending migrations.
pub async fn open(url: &str) -> anyhow::Result<Db> {
    let pool = connect(url).await?;
    migrate(url).await?;
    Ok(pool)
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// Migrations this run applied.
    pub applied: usize,
    /// The newest migration the database has.
    pub version: i64,
    /// The newest this binary carries: below `version`, a newer Clef
    /// migrated the database (a rolling upgrade under way, or a rollback).
    pub known: i64,
}

/// Applies pending migrations on a connection of their own. Instances that
/// start together wait for the first one's migrations behind PostgreSQL's
/// advisory lock; sqlx would log each of those waits, and each long
/// migration, as a slow statement (a warning carrying the migration's whole
/// SQL), so this connection logs none.
///
/// A database a newer version migrated is served as it is (migrations only
/// add tables, columns and indexes): an instance of the previous version
/// restarted during a rolling upgrade, or a binary rolled back, runs on it,
/// with a warning, instead of refusing to start.
pub async fn migrate(url: &str) -> anyhow::Result<Schema> {
    use sqlx::{ConnectOptions, Connection};
    let options =
        connect_options(url)?.log_slow_statements(log::LevelFilter::Off, Duration::from_secs(1));
    let mut connection = sqlx::AnyConnection::connect_with(&options)
        .await
        .with_context(|| format!("connecting to the database at {}", database_shown(url)))?;
    let mut migrator = migrator();
    migrator.set_ignore_missing(true);
    let applied_versions = "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM _sqlx_migrations";
    // No table yet on a new database: nothing applied. (Another instance
    // migrating at the same moment is waited for by `run`, and what it
    // applied meanwhile is counted here as this run's.)
    let before: (i64, i64) = match sqlx::query_as(applied_versions)
        .fetch_one(&mut connection)
        .await
    {
        Ok(before) => before,
        Err(e) if is_missing_table(&e) => (0, 0),
        Err(e) => return Err(e).context("reading the migrations applied"),
    };
    let started = std::time::Instant::now();
    migrator
        .run(&mut connection)
        .await
        .context("applying migrations")?;
    let (count, version): (i64, i64) = sqlx::query_as(applied_versions)
        .fetch_one(&mut connection)
        .await
        .context("reading the migrations applied")?;
    let _ = connection.close().await;
    let schema = Schema {
        applied: usize::try_from(count - before.0).unwrap_or(0),
        version,
        known: migrator.iter().map(|m| m.version).max().unwrap_or(0),
    };
    if schema.version > schema.known {
        tracing::warn!(
            schema = schema.version,
            known = schema.known,
            "the database was migrated by a newer version of Clef: running on it"
        );
    } else if schema.applied > 0 {
        tracing::info!(
            schema = schema.version,
            applied = schema.applied,
            seconds = started.elapsed().as_secs_f32(),
            "migrations applied"
        );
    }
    Ok(schema)
}

/// A statement refused because its table does not exist (PostgreSQL's
/// `undefined_table`, SQLite's « no such table »).
fn is_missing_table(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| {
        db.code().as_deref() == Some("42P01") || db.message().starts_with("no such table")
    })
}

/// Maps a unique-constraint violation by name to `Some(name)`, so callers turn
/// it into a user error (realworld-axum-sqlx's `on_constraint`). SQLite names
/// the columns rather than the constraint, so both forms are recognised.
pub fn violated_constraint(error: &sqlx::Error) -> Option<String> {
    let db = error.as_database_error()?;
    if let Some(name) = db.constraint() {
        return Some(name.to_owned());
    }
    // SQLite: "UNIQUE constraint failed: accounts.identifier"
    let message = db.message();
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
    let (table, column) = columns.split(',').next()?.trim().split_once('.')?;
    Some(format!("{table}_{column}_key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_shown_without_its_credentials() {
        assert_eq!(
            database_shown("postgres://clef:s3cret@db.internal:6432/clef?sslmode=require"),
            "postgres://clef:********@db.internal:6432/clef?********"
        );
        assert_eq!(
            database_shown("postgres://clef@db/clef"),
            "postgres://clef@db/clef"
        );
        assert_eq!(database_shown("not a URL s3cret"), "the configured URL");
    }

    /// Migration 0017 dates the parent accounts the school closed before it,
    /// from the audit trail; not an account closed by a grouping.
    #[tokio::test]
    async fn closures_made_before_0017_are_dated_from_the_audit_trail() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = connect(&url).await.unwrap();
        migrator_up_to(16).run(&db).await.unwrap();
        for (id, merged_into) in [("closed", None), ("grouped", Some("closed"))] {
            sqlx::query(
                "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, merged_into, \
                 created_at, updated_at) VALUES ($1, $1, 'guardian', 'closed', 'Marc', 'Baillet', $2, 0, 0)",
            )
            .bind(id)
            .bind(merged_into)
            .execute(&db)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO audit_events (id, at, event, outcome, account_id, detail) \
                 VALUES ($1, 42, 'staff_action', 'ok', $1, 'close')",
            )
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
        }
        migrator().run(&db).await.unwrap();
        let dated: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, closed_by_school_at FROM accounts ORDER BY id")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(
            dated,
            [("closed".into(), Some(42)), ("grouped".into(), None)]
        );
    }

    /// Migration 0023 dates the closures made before it: the school's, or
    /// the row's last write; an open account has no closure date.
    #[tokio::test]
    async fn closures_made_before_0023_are_dated() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = connect(&url).await.unwrap();
        migrator_up_to(22).run(&db).await.unwrap();
        for (id, state, closed_by_school_at) in [
            ("by_school", "closed", Some(7)),
            ("grouped", "closed", None),
            ("open", "active", None),
        ] {
            sqlx::query(
                "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, \
                 closed_by_school_at, created_at, updated_at) \
                 VALUES ($1, $1, 'guardian', $2, 'Marc', 'Baillet', $3, 0, 9)",
            )
            .bind(id)
            .bind(state)
            .bind(closed_by_school_at)
            .execute(&db)
            .await
            .unwrap();
        }
        migrator().run(&db).await.unwrap();
        let dated: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, closed_at FROM accounts ORDER BY id")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(
            dated,
            [
                ("by_school".into(), Some(7)),
                ("grouped".into(), Some(9)),
                ("open".into(), None)
            ]
        );
    }

    /// Migration 0018: a consent to `children` given before it covers the
    /// children the account had; a consent without the scope covers none.
    #[tokio::test]
    async fn consents_given_before_0018_cover_the_children_of_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = connect(&url).await.unwrap();
        migrator_up_to(17).run(&db).await.unwrap();
        // (The children as guardian rows: a student row needs a school.)
        for id in ["parent", "lea", "hugo"] {
            sqlx::query(
                "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, \
                 created_at, updated_at) VALUES ($1, $1, 'guardian', 'active', 'A', 'B', 0, 0)",
            )
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
        }
        for child in ["lea", "hugo"] {
            sqlx::query(
                "INSERT INTO guardianships (guardian_id, student_id, rank, created_at) \
                 VALUES ('parent', $1, 1, 0)",
            )
            .bind(child)
            .execute(&db)
            .await
            .unwrap();
        }
        for (client, scopes) in [("cahier", "openid children"), ("quiz", "openid profile")] {
            sqlx::query(
                "INSERT INTO clients (id, name, redirect_uris, post_logout_redirect_uris, is_public, \
                 is_first_party, created_at) VALUES ($1, $1, '[]', '[]', 1, 0, 0)",
            )
            .bind(client)
            .execute(&db)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO consents (account_id, client_id, scopes, granted_at) \
                 VALUES ('parent', $1, $2, 0)",
            )
            .bind(client)
            .bind(scopes)
            .execute(&db)
            .await
            .unwrap();
        }
        migrator().run(&db).await.unwrap();
        let covered: Vec<(String, String)> = sqlx::query_as(
            "SELECT client_id, child_id FROM consent_children ORDER BY client_id, child_id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(
            covered,
            [
                ("cahier".into(), "hugo".into()),
                ("cahier".into(), "lea".into())
            ]
        );
    }

    #[test]
    fn batches_are_cut_into_runs_of_seven_sizes_largest_first() {
        let sizes = |n: usize| -> Vec<usize> {
            let items: Vec<usize> = (0..n).collect();
            let runs: Vec<&[usize]> = in_prepared_sizes(&items).collect();
            // Every item once, in order.
            assert_eq!(runs.concat(), items);
            runs.iter().map(|run| run.len()).collect()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(13), [8, 4, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(100), [64, 32, 4]);
        assert_eq!(sizes(200), [64, 64, 64, 8]);
    }
}
