//! Staff roles (SPEC §3.9, issue 11): a staff account manages one or more
//! establishments, or — the academy operator — all of them. Every back-office
//! action asks [`Scope::manages`] first.

use sqlx::Row;

use super::{Account, AccountKind, Establishment};
use crate::storage::Db;

/// What a staff account may manage.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The academy operator: every establishment.
    pub academy: bool,
    /// The establishments of an establishment's staff.
    pub establishments: Vec<Establishment>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        !self.academy && self.establishments.is_empty()
    }

    /// Whether the establishment `id` is within the scope.
    pub fn manages(&self, establishment_id: &str) -> bool {
        self.academy || self.establishments.iter().any(|e| e.id == establishment_id)
    }
}

/// The scope of `account`: empty for anyone but staff.
pub async fn scope(db: &Db, account: &Account) -> Result<Scope, sqlx::Error> {
    if account.kind != AccountKind::Staff {
        return Ok(Scope::default());
    }
    let rows = sqlx::query(
        "SELECT r.establishment_id, e.uai, e.name, e.portal_url FROM staff_roles r \
         LEFT JOIN establishments e ON e.id = r.establishment_id \
         WHERE r.account_id = $1 ORDER BY e.uai",
    )
    .bind(&account.id)
    .fetch_all(db)
    .await?;
    let mut scope = Scope::default();
    for row in rows {
        match row.try_get::<Option<String>, _>("establishment_id")? {
            None => scope.academy = true,
            Some(id) => scope.establishments.push(Establishment {
                id,
                uai: row.try_get("uai")?,
                name: row.try_get("name")?,
                portal_url: row.try_get("portal_url")?,
            }),
        }
    }
    Ok(scope)
}

/// Gives a staff account an establishment (`Some`) or the academy role (`None`).
pub async fn grant(
    db: &Db,
    account: &Account,
    establishment_id: Option<&str>,
    now: i64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        account.kind == AccountKind::Staff,
        "only a staff account gets a back-office role"
    );
    let exists: Option<i64> = match establishment_id {
        Some(id) => {
            sqlx::query_scalar(
                "SELECT 1 FROM staff_roles WHERE account_id = $1 AND establishment_id = $2",
            )
            .bind(&account.id)
            .bind(id)
            .fetch_optional(db)
            .await?
        }
        None => {
            sqlx::query_scalar(
                "SELECT 1 FROM staff_roles WHERE account_id = $1 AND establishment_id IS NULL",
            )
            .bind(&account.id)
            .fetch_optional(db)
            .await?
        }
    };
    if exists.is_none() {
        sqlx::query(
            "INSERT INTO staff_roles (account_id, establishment_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&account.id)
        .bind(establishment_id)
        .bind(now)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// Accounts of an establishment in each state, per class: its pupils, and the
/// guardians of its pupils (a guardian of two classes counts in both).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Funnel {
    pub class: String,
    pub provisional: i64,
    pub pending_email: i64,
    pub active: i64,
}

impl Funnel {
    pub fn total(&self) -> i64 {
        self.provisional + self.pending_email + self.active
    }
}

/// The activation funnel of an establishment, by class, for students or guardians.
pub async fn funnel(
    db: &Db,
    establishment_id: &str,
    guardians: bool,
) -> Result<Vec<Funnel>, sqlx::Error> {
    let sql = if guardians {
        "SELECT s.class_name AS class, g.state AS state, COUNT(DISTINCT g.id) AS n \
         FROM accounts s JOIN guardianships l ON l.student_id = s.id \
         JOIN accounts g ON g.id = l.guardian_id \
         WHERE s.establishment_id = $1 AND s.kind = 'student' AND s.state <> 'closed' AND g.state <> 'closed' \
         GROUP BY s.class_name, g.state ORDER BY s.class_name"
    } else {
        "SELECT class_name AS class, state, COUNT(*) AS n FROM accounts \
         WHERE establishment_id = $1 AND kind = 'student' AND state <> 'closed' \
         GROUP BY class_name, state ORDER BY class_name"
    };
    let rows = sqlx::query(sql)
        .bind(establishment_id)
        .fetch_all(db)
        .await?;
    let mut classes: Vec<Funnel> = Vec::new();
    for row in rows {
        let class: Option<String> = row.try_get("class")?;
        let class = class.unwrap_or_default();
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        if classes.last().is_none_or(|last| last.class != class) {
            classes.push(Funnel {
                class,
                ..Funnel::default()
            });
        }
        let entry = classes.last_mut().expect("just pushed");
        match state.as_str() {
            "provisional" => entry.provisional += n,
            "pending_email" => entry.pending_email += n,
            "active" => entry.active += n,
            _ => {}
        }
    }
    Ok(classes)
}
