//! Query plans of the hot queries (issue 12, item 7): with a million accounts, a
//! query that reads a whole large table makes logins, code exchanges and
//! imports slower as the academy grows. Each query below is asked for its plan
//! (`EXPLAIN QUERY PLAN` on SQLite; `EXPLAIN` on PostgreSQL with sequential
//! scans, hash and merge joins off, as its planner reads tiny tables whole
//! whatever the indexes) and the plan may not scan a large table: on SQLite
//! no `SCAN` of one (a `SCAN … USING INDEX` reads a whole index, as long), on
//! PostgreSQL no `Seq Scan` of one, nor an index scan without an `Index Cond`.
//! Figures on a million accounts: docs/benchmarks.md, « A million accounts ».
//!
//! The SQL is copied from the source (the file and function are named with
//! each query; the column lists are shortened to `*` where the source builds
//! them from a private constant: the plan's access paths do not depend on
//! them), so a change there should be copied here.

use sqlx::{Any, Row, pool::PoolConnection};

use crate::helpers::*;

/// Tables that grow with the accounts or their use; the others
/// (establishments, clients, registration tokens) stay small.
const SMALL: &[&str] = &[
    "establishments",
    "clients",
    "registration_tokens",
    "_sqlx_migrations",
];

/// Aliases of small tables in the queries below (SQLite names a table by its
/// alias), and the import's recursive working table `grouped`, which holds
/// the guardians of one school, read once.
const SMALL_ALIASES: &[&str] = &["e", "k", "CONSTANT ROW", "grouped"];

#[derive(Clone, Copy)]
enum Arg {
    T(&'static str),
    I(i64),
}
use Arg::{I, T};

struct Hot {
    /// Where the query is, in `src/`.
    source: &'static str,
    sql: &'static str,
    args: &'static [Arg],
}

const fn hot(source: &'static str, sql: &'static str, args: &'static [Arg]) -> Hot {
    Hot { source, sql, args }
}

/// The queries of a login, a code exchange, a refresh, a recovery, an import,
/// the back office and the hourly jobs.
const HOT: &[Hot] = &[
    // Login, sessions, claims.
    hot(
        "accounts/store.rs account_by_identifier",
        "SELECT * FROM accounts WHERE identifier = $1",
        &[T("lea.martin")],
    ),
    hot(
        "accounts/store.rs account_by_id",
        "SELECT * FROM accounts WHERE id = $1",
        &[T("a")],
    ),
    hot(
        "accounts/store.rs record_login",
        "UPDATE accounts SET previous_login_at = last_login_at, last_login_at = $1, locale = $3 \
         WHERE id = $2 AND COALESCE(password_hash, provisional_password, '') = $4 \
         RETURNING session_epoch",
        &[I(1), T("a"), T("fr"), T("h")],
    ),
    hot(
        "accounts/store.rs session_epoch",
        "SELECT session_epoch FROM accounts WHERE id = $1",
        &[T("a")],
    ),
    hot(
        "accounts/store.rs children (the children claim)",
        "SELECT s.id, s.given_name, s.family_name, s.birthdate, s.class_name, g.rank, \
                e.id AS e_id, e.uai AS e_uai, e.name AS e_name, e.portal_url AS e_portal_url \
         FROM guardianships g \
         JOIN accounts s ON s.id = g.student_id \
         LEFT JOIN establishments e ON e.id = s.establishment_id \
         WHERE g.guardian_id = $1 AND s.state <> 'closed' \
         ORDER BY g.created_at, s.family_name, s.given_name, s.id",
        &[T("a")],
    ),
    hot(
        "accounts/store.rs establishment_by_uai",
        "SELECT id, uai, name, portal_url FROM establishments WHERE uai = $1",
        &[T("0590001A")],
    ),
    hot(
        "accounts/staff.rs scope",
        "SELECT r.establishment_id, e.uai, e.name, e.portal_url FROM staff_roles r \
         LEFT JOIN establishments e ON e.id = r.establishment_id \
         WHERE r.account_id = $1 ORDER BY e.uai",
        &[T("a")],
    ),
    hot(
        "oidc/session.rs touch",
        "SELECT last_seen_at, ended_at FROM sessions WHERE sid = $1",
        &[T("s")],
    ),
    hot(
        "oidc/session.rs touch",
        "UPDATE sessions SET last_seen_at = $1 WHERE sid = $2 AND last_seen_at < $1",
        &[I(1), T("s")],
    ),
    hot(
        "oidc/session.rs end",
        "UPDATE sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL",
        &[I(1), T("s")],
    ),
    hot(
        "oidc/session.rs end_others",
        "UPDATE sessions SET ended_at = $1 \
         WHERE account_id = $2 AND ended_at IS NULL AND expires_at > $1 \
         AND (epoch IS NULL OR epoch < $3) AND sid <> $4 RETURNING sid",
        &[I(1), T("a"), I(2), T("s")],
    ),
    hot(
        "oidc/session.rs ended_among",
        "SELECT s.sid FROM sessions s JOIN accounts a ON a.id = s.account_id \
         WHERE (s.ended_at IS NOT NULL OR s.epoch < a.session_epoch) AND s.sid IN ($1, $2)",
        &[T("s"), T("t")],
    ),
    hot(
        "oidc/session.rs open sessions (« Mon compte »)",
        "SELECT sid, device, created_at, last_seen_at FROM sessions \
         WHERE account_id = $1 AND ended_at IS NULL AND expires_at > $2 \
         ORDER BY last_seen_at DESC, created_at DESC",
        &[T("a"), I(1)],
    ),
    // Authorization and code exchange.
    hot(
        "oidc/clients.rs find",
        "SELECT * FROM clients WHERE id = $1 AND deleted_at IS NULL",
        &[T("c")],
    ),
    hot(
        "oidc/consent.rs granted",
        "SELECT scopes FROM consents WHERE account_id = $1 AND client_id = $2",
        &[T("a"), T("c")],
    ),
    hot(
        "oidc/consent.rs terms_pending",
        "SELECT 1 FROM terms_acceptances WHERE account_id = $1 AND client_id = $2 AND version = $3",
        &[T("a"), T("c"), T("1")],
    ),
    hot(
        "oidc/consent.rs authorizations",
        "SELECT c.client_id, k.name, c.scopes, c.granted_at \
         FROM consents c JOIN clients k ON k.id = c.client_id \
         WHERE c.account_id = $1 AND k.is_first_party = 0 \
         ORDER BY k.name, c.client_id",
        &[T("a")],
    ),
    hot(
        "oidc/backchannel.rs record",
        "INSERT INTO session_clients (sid, client_id, created_at) \
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM sessions WHERE sid = $1) \
         ON CONFLICT (sid, client_id) DO NOTHING",
        &[T("s"), T("c"), I(1)],
    ),
    hot(
        "oidc/backchannel.rs notify",
        "SELECT client_id FROM session_clients WHERE sid = $1",
        &[T("s")],
    ),
    // Refresh tokens.
    hot(
        "oidc/refresh.rs rotate",
        "SELECT t.expires_at AS token_expires, t.used_at, f.id, f.client_id, f.account_id, f.scopes, \
         f.sid, f.auth_time, f.amr, f.expires_at AS family_expires, f.revoked_at \
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.id = $1",
        &[T("t")],
    ),
    hot(
        "oidc/refresh.rs rotate",
        "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
        &[I(1), T("t")],
    ),
    hot(
        "oidc/refresh.rs family_alive",
        "SELECT 1 FROM refresh_families WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        &[T("f"), I(1)],
    ),
    hot(
        "oidc/refresh.rs revoke_families_of",
        "UPDATE refresh_families SET revoked_at = $1 \
         WHERE account_id = $2 AND client_id = $3 AND revoked_at IS NULL",
        &[I(1), T("a"), T("c")],
    ),
    hot(
        "oidc/refresh.rs revoke_all_of",
        "UPDATE refresh_families SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
        &[I(1), T("a")],
    ),
    // Recovery and emailed links.
    hot(
        "accounts/store.rs accounts_by_confirmed_email",
        "SELECT * FROM accounts \
         WHERE LOWER(email) = LOWER($1) AND email_verified_at IS NOT NULL AND state <> 'closed' \
         ORDER BY created_at, identifier",
        &[T("claire@example.org")],
    ),
    hot(
        "accounts/tokens.rs take",
        "SELECT id, account_id, email, return_to, expires_at, consumed_at FROM action_tokens \
         WHERE token_hash = $1 AND purpose = $2",
        &[T("h"), T("reset_password")],
    ),
    hot(
        "accounts/tokens.rs issue",
        "UPDATE action_tokens SET consumed_at = $1 WHERE account_id = $2 AND purpose = $3 AND consumed_at IS NULL",
        &[I(1), T("a"), T("reset_password")],
    ),
    hot(
        "accounts/recovery.rs outcome",
        "UPDATE recovery_requests SET outcome = $1 WHERE reference = $2",
        &[T("sent"), T("1234567890123")],
    ),
    // Import.
    hot(
        "provisioning/import.rs existing_students",
        "SELECT id, student_ref, class_name, given_name, family_name, birthdate FROM accounts \
         WHERE establishment_id = $1 AND student_ref IS NOT NULL AND state <> 'closed'",
        &[T("e")],
    ),
    hot(
        "provisioning/import.rs existing_guardians",
        "SELECT g.student_id, g.rank, a.id, a.given_name, a.family_name, a.email, a.phone, a.state, a.activated_at, \
         CASE WHEN EXISTS (SELECT 1 FROM guardianships o JOIN accounts os ON os.id = o.student_id \
           WHERE o.guardian_id = a.id AND os.establishment_id <> $1 AND os.state <> 'closed') \
           THEN 1 ELSE 0 END AS shared \
         FROM guardianships g JOIN accounts a ON a.id = g.guardian_id JOIN accounts s ON s.id = g.student_id \
         WHERE s.establishment_id = $1 AND s.student_ref IS NOT NULL \
         AND (a.state <> 'closed' OR a.closed_by_school_at IS NOT NULL)",
        &[T("e")],
    ),
    hot(
        "provisioning/import.rs existing_guardians (grouped names)",
        "WITH RECURSIVE grouped (root, id) AS ( \
             SELECT DISTINCT g.guardian_id, g.guardian_id FROM guardianships g \
             JOIN accounts s ON s.id = g.student_id \
             WHERE s.establishment_id = $1 AND s.student_ref IS NOT NULL \
           UNION \
             SELECT grouped.root, a.id FROM grouped JOIN accounts a ON a.merged_into = grouped.id \
         ) \
         SELECT grouped.root, a.given_name, a.family_name FROM grouped \
         JOIN accounts a ON a.id = grouped.id WHERE grouped.id <> grouped.root",
        &[T("e")],
    ),
    hot(
        "provisioning/identifiers.rs assign (taken)",
        "SELECT identifier FROM accounts WHERE identifier IN ($1, $2)",
        &[T("lea.martin"), T("hugo.martin")],
    ),
    hot(
        "provisioning/import.rs (links that left the file)",
        "DELETE FROM guardianships WHERE guardian_id = $1 AND student_id = $2",
        &[T("a"), T("b")],
    ),
    hot(
        "provisioning/letters.rs select",
        "SELECT a.id, a.identifier, a.kind, a.given_name, a.family_name, a.letter_date, a.provisional_password, \
                0 AS rank, a.given_name AS s_given, a.family_name AS s_family, a.class_name AS s_class \
         FROM accounts a \
         WHERE a.establishment_id = $1 AND a.kind = 'student' AND a.state = 'provisional' \
         UNION ALL \
         SELECT a.id, a.identifier, a.kind, a.given_name, a.family_name, a.letter_date, a.provisional_password, \
                g.rank AS rank, s.given_name AS s_given, s.family_name AS s_family, s.class_name AS s_class \
         FROM accounts a JOIN guardianships g ON g.guardian_id = a.id JOIN accounts s ON s.id = g.student_id \
         WHERE s.establishment_id = $1 AND s.state <> 'closed' AND a.kind = 'guardian' AND a.state = 'provisional' \
         ORDER BY s_class, s_family, s_given, rank, identifier",
        &[T("e")],
    ),
    // Back office.
    hot(
        "accounts/staff.rs funnel (pupils)",
        "SELECT class_name AS class, state, COUNT(*) AS n FROM accounts \
         WHERE establishment_id = $1 AND kind = 'student' AND state <> 'closed' \
         GROUP BY class_name, state ORDER BY class_name",
        &[T("e")],
    ),
    hot(
        "accounts/staff.rs funnel (guardians)",
        "SELECT s.class_name AS class, g.state AS state, COUNT(DISTINCT g.id) AS n \
         FROM accounts s JOIN guardianships l ON l.student_id = s.id \
         JOIN accounts g ON g.id = l.guardian_id \
         WHERE s.establishment_id = $1 AND s.kind = 'student' AND s.state <> 'closed' AND g.state <> 'closed' \
         GROUP BY s.class_name, g.state ORDER BY s.class_name",
        &[T("e")],
    ),
    hot(
        "web/backoffice.rs accounts (list)",
        "SELECT DISTINCT a.id, a.identifier, a.kind, a.state, a.given_name, a.family_name, s.class_name \
         FROM accounts s LEFT JOIN guardianships l ON l.student_id = s.id \
         JOIN accounts a ON a.id = s.id OR (a.id = l.guardian_id AND s.state <> 'closed') \
         WHERE s.establishment_id = $1 AND s.kind = 'student' \
         AND ($2 = '' OR s.class_name = $2) AND ($3 = '' OR a.state = $3) \
         AND ($4 = '' OR LOWER(a.identifier) LIKE $4 OR LOWER(a.family_name) LIKE $4 OR LOWER(a.given_name) LIKE $4) \
         ORDER BY s.class_name, a.family_name, a.given_name, a.identifier LIMIT $5 OFFSET $6",
        &[T("e"), T(""), T(""), T("%martin%"), I(51), I(0)],
    ),
    hot(
        "web/backoffice.rs accounts (classes)",
        "SELECT DISTINCT class_name FROM accounts WHERE establishment_id = $1 AND kind = 'student' \
         AND class_name IS NOT NULL ORDER BY class_name",
        &[T("e")],
    ),
    hot(
        "web/backoffice.rs manages",
        "SELECT 1 FROM accounts s LEFT JOIN guardianships l ON l.student_id = s.id \
         WHERE s.establishment_id = $1 AND s.kind = 'student' AND (s.id = $2 OR l.guardian_id = $2) LIMIT 1",
        &[T("e"), T("a")],
    ),
    hot(
        "audit.rs trail (one account)",
        "SELECT * FROM audit_events WHERE account_id = $1 AND at >= $2 ORDER BY at DESC, id DESC LIMIT $3",
        &[T("a"), I(1), I(100)],
    ),
    hot(
        "audit.rs trail (everyone)",
        "SELECT * FROM audit_events WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2",
        &[I(1), I(100)],
    ),
    // The hourly jobs: letter expiry (CLAIMED is its constant), housekeeping, audit purge.
    hot(
        "provisioning/expiry.rs expire_letters (claim guardians)",
        "UPDATE accounts SET state = 'closed', provisional_password = NULL, updated_at = $1, \
         closed_at = $1 WHERE kind = 'guardian' AND state = 'provisional' AND letter_date < $2",
        &[I(2), I(1)],
    ),
    hot(
        "provisioning/expiry.rs expire_letters (claimed)",
        "SELECT id FROM accounts WHERE state = 'closed' AND closed_at = $1 AND activated_at IS NULL \
         AND merged_into IS NULL AND letter_date < $2",
        &[I(2), I(1)],
    ),
    hot(
        "provisioning/expiry.rs expire_letters (their links)",
        "DELETE FROM guardianships WHERE guardian_id IN (SELECT id FROM accounts WHERE state = 'closed' \
         AND closed_at = $1 AND activated_at IS NULL AND merged_into IS NULL AND letter_date < $2)",
        &[I(2), I(1)],
    ),
    hot(
        "provisioning/expiry.rs expire_letters (their tokens)",
        "DELETE FROM action_tokens WHERE account_id IN (SELECT id FROM accounts WHERE state = 'closed' \
         AND closed_at = $1 AND activated_at IS NULL AND merged_into IS NULL AND letter_date < $2)",
        &[I(2), I(1)],
    ),
    hot(
        "provisioning/expiry.rs expire_letters (claim students)",
        "UPDATE accounts SET state = 'closed', provisional_password = NULL, updated_at = $1, \
         closed_at = $1 WHERE kind = 'student' AND state = 'provisional' AND letter_date < $2 \
         AND NOT EXISTS (SELECT 1 FROM guardianships g WHERE g.student_id = accounts.id)",
        &[I(2), I(1)],
    ),
    hot(
        "provisioning/expiry.rs expire_letters (delete)",
        "DELETE FROM accounts WHERE state = 'closed' AND closed_at = $1 AND activated_at IS NULL \
         AND merged_into IS NULL AND letter_date < $2",
        &[I(2), I(1)],
    ),
    hot(
        "provisioning/expiry.rs expire_letters (void)",
        "UPDATE accounts SET provisional_password = NULL, updated_at = $1 \
         WHERE kind = 'student' AND state = 'provisional' AND letter_date < $2 AND provisional_password IS NOT NULL",
        &[I(2), I(1)],
    ),
    hot(
        "oidc/housekeeping.rs purge (session_clients)",
        "DELETE FROM session_clients WHERE sid IN \
         (SELECT sid FROM sessions WHERE COALESCE(ended_at, expires_at) < $1)",
        &[I(1)],
    ),
    hot(
        "oidc/housekeeping.rs purge (sessions)",
        "DELETE FROM sessions WHERE COALESCE(ended_at, expires_at) < $1",
        &[I(1)],
    ),
    hot(
        "oidc/housekeeping.rs purge (refresh_tokens)",
        "DELETE FROM refresh_tokens WHERE family_id IN \
         (SELECT id FROM refresh_families WHERE COALESCE(revoked_at, expires_at) < $1)",
        &[I(1)],
    ),
    hot(
        "oidc/housekeeping.rs purge (refresh_families)",
        "DELETE FROM refresh_families WHERE COALESCE(revoked_at, expires_at) < $1",
        &[I(1)],
    ),
    hot(
        "oidc/housekeeping.rs purge (recovery_requests)",
        "DELETE FROM recovery_requests WHERE created_at < $1",
        &[I(1)],
    ),
    hot(
        "audit.rs purge",
        "DELETE FROM audit_events WHERE at < $1",
        &[I(1)],
    ),
    // A client's deletion (RFC 7592).
    hot(
        "oidc/clients.rs delete (consent_children)",
        "DELETE FROM consent_children WHERE client_id = $1",
        &[T("c")],
    ),
    hot(
        "oidc/clients.rs delete (consents)",
        "DELETE FROM consents WHERE client_id = $1",
        &[T("c")],
    ),
    hot(
        "oidc/clients.rs delete (refresh_families)",
        "UPDATE refresh_families SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
        &[I(1), T("c")],
    ),
];

/// Tables rows are deleted from (expiry, housekeeping): every foreign key into
/// them is checked on each deleted row, by a lookup on the referencing column.
const DELETED_FROM: &[&str] = &["accounts", "sessions", "refresh_families"];

enum Backend {
    Sqlite,
    Postgres,
}

async fn planner(app: &TestApp) -> (PoolConnection<Any>, Backend) {
    let mut conn = app.app.db.acquire().await.unwrap();
    let backend = if std::env::var("CLEF_TEST_DATABASE_URL").is_ok() {
        // The tables are empty, so the planner's estimates say nothing: it
        // would read every table whole, or hash one side of a join. Without
        // sequential scans, hash and merge joins, what is left is the index
        // paths; a Seq Scan, or an index read without a condition, is what
        // remains when no index serves the query.
        for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("SET {setting} = off")))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    (conn, backend)
}

/// The plan, one line per row (SQLite) or as PostgreSQL prints it.
async fn plan(
    conn: &mut PoolConnection<Any>,
    backend: &Backend,
    sql: &str,
    args: &[Arg],
) -> Vec<String> {
    let explain = match backend {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Backend::Postgres => format!("EXPLAIN (COSTS OFF) {sql}"),
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
    for arg in args {
        query = match *arg {
            T(v) => query.bind(v),
            I(v) => query.bind(v),
        };
    }
    let rows = query
        .fetch_all(&mut **conn)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    rows.iter()
        .map(|row| match backend {
            Backend::Sqlite => row.try_get::<String, _>("detail").unwrap(),
            Backend::Postgres => row.try_get::<String, _>(0).unwrap(),
        })
        .collect()
}

fn is_small(name: &str) -> bool {
    SMALL.contains(&name) || SMALL_ALIASES.contains(&name)
}

/// What in the plan reads a whole large table (empty: nothing).
fn full_scans(backend: &Backend, plan: &[String]) -> Vec<String> {
    match backend {
        // `SCAN accounts`, `SCAN s USING INDEX …`, `SCAN g USING COVERING INDEX …`:
        // every row of the table or of one of its indexes. `SEARCH` is a lookup.
        Backend::Sqlite => plan
            .iter()
            .filter_map(|line| {
                let scanned = line.strip_prefix("SCAN ")?;
                let name = scanned.split(" USING ").next().unwrap_or(scanned);
                (!is_small(name)).then(|| line.clone())
            })
            .collect(),
        // Nodes are the first line and the lines starting with `->`; the
        // lines under a node until the next one are its details.
        Backend::Postgres => {
            let mut nodes: Vec<(String, Vec<String>)> = Vec::new();
            for line in plan {
                let trimmed = line.trim_start();
                match trimmed.strip_prefix("->") {
                    Some(node) => nodes.push((node.trim().to_owned(), Vec::new())),
                    None if nodes.is_empty() => nodes.push((trimmed.to_owned(), Vec::new())),
                    None => nodes.last_mut().unwrap().1.push(trimmed.to_owned()),
                }
            }
            nodes
                .into_iter()
                .filter(|(node, details)| {
                    let table = |node: &str| {
                        node.split(" on ")
                            .nth(1)
                            .and_then(|rest| rest.split_whitespace().next())
                            .map(str::to_owned)
                    };
                    let Some(table) = table(node) else {
                        return false;
                    };
                    if is_small(&table) {
                        return false;
                    }
                    let index_scan =
                        node.starts_with("Index Scan") || node.starts_with("Index Only Scan");
                    node.starts_with("Seq Scan")
                        || (index_scan && !details.iter().any(|d| d.starts_with("Index Cond:")))
                })
                .map(|(node, details)| format!("{node} {}", details.join(" ")))
                .collect()
        }
    }
}

#[tokio::test]
async fn no_hot_query_reads_a_whole_large_table() {
    let app = spawn_app().await;
    let (mut conn, backend) = planner(&app).await;
    let mut failures = Vec::new();
    for hot in HOT {
        let plan = plan(&mut conn, &backend, hot.sql, hot.args).await;
        let scans = full_scans(&backend, &plan);
        if !scans.is_empty() {
            failures.push(format!(
                "{} ({}):\n  scans: {scans:?}\n  plan:\n    {}",
                hot.source,
                hot.sql,
                plan.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} hot queries read a whole large table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn deleting_a_row_never_reads_a_whole_referencing_table() {
    let app = spawn_app().await;
    let (mut conn, backend) = planner(&app).await;
    // Every foreign key: the referencing table and column, the referenced table.
    let keys_sql = match backend {
        Backend::Sqlite => {
            "SELECT m.name AS child, f.\"from\" AS col, f.\"table\" AS parent \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"
        }
        Backend::Postgres => {
            "SELECT c.conrelid::regclass::text AS child, a.attname::text AS col, \
             c.confrelid::regclass::text AS parent FROM pg_constraint c \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             WHERE c.contype = 'f'"
        }
    };
    let keys: Vec<(String, String, String)> = sqlx::query(keys_sql)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get("child").unwrap(),
                row.try_get("col").unwrap(),
                row.try_get("parent").unwrap(),
            )
        })
        .collect();
    assert!(
        keys.iter()
            .any(|(child, col, _)| child == "guardianships" && col == "student_id"),
        "the foreign keys are read: {keys:?}"
    );
    let mut failures = Vec::new();
    for (child, col, parent) in &keys {
        if !DELETED_FROM.contains(&parent.as_str()) {
            continue;
        }
        // The lookup the database makes for each deleted row of `parent`.
        let sql = format!("SELECT 1 FROM {child} WHERE {col} = $1");
        let plan = plan(&mut conn, &backend, &sql, &[T("x")]).await;
        let scans = full_scans(&backend, &plan);
        if !scans.is_empty() {
            failures.push(format!(
                "{child}.{col} → {parent}: {scans:?}\n    {}",
                plan.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "deleting from {DELETED_FROM:?} reads whole tables for these foreign keys:\n{}",
        failures.join("\n")
    );
}

/// The check above can fail: a query on an unindexed column is caught.
#[tokio::test]
async fn a_full_scan_is_caught() {
    let app = spawn_app().await;
    let (mut conn, backend) = planner(&app).await;
    for sql in [
        "SELECT id FROM accounts WHERE given_name = $1",
        "SELECT g.guardian_id FROM guardianships g JOIN accounts s ON s.id = g.student_id \
         WHERE s.given_name = $1",
    ] {
        let plan = plan(&mut conn, &backend, sql, &[T("Léa")]).await;
        assert!(
            !full_scans(&backend, &plan).is_empty(),
            "{sql} reads all accounts, yet passes:\n{}",
            plan.join("\n")
        );
    }
    // A lookup by key passes.
    let plan = plan(&mut conn, &backend, HOT[0].sql, HOT[0].args).await;
    assert_eq!(
        full_scans(&backend, &plan),
        Vec::<String>::new(),
        "{plan:?}"
    );
}
