//! SQL for accounts, establishments and guardianships: small functions over the pool.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Account, AccountError, AccountKind, AccountState, Child, Establishment, EstablishmentChange,
    EstablishmentInput, Guardian, Letterhead,
};
use crate::domain::{
    BirthDate, ClassName, EmailAddress, FieldError, Identifier, Locale, PersonName, Problem, Rank,
    Uai,
};
use crate::provisioning::csv_file::Phone;
use crate::storage::{Db, violated_constraint};

/// Creates an establishment with the name and details `new` gives, in one
/// statement: checked by the caller (`EstablishmentChange::checked`), or a
/// name of its own (the demo, tests).
pub async fn create_establishment(
    db: &Db,
    uai: &Uai,
    new: &EstablishmentChange,
    now: i64,
) -> Result<Establishment, AccountError> {
    let id = uuid::Uuid::new_v4().to_string();
    let name = new.name.clone().unwrap_or_default();
    let given = |detail: &Option<Option<String>>| detail.clone().flatten();
    sqlx::query(
        "INSERT INTO establishments (id, uai, name, address, city, contact, portal_url, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(uai.as_str())
    .bind(&name)
    .bind(given(&new.address))
    .bind(given(&new.city))
    .bind(given(&new.contact))
    .bind(given(&new.portal_url))
    .bind(now)
    .execute(db)
    .await
    .map_err(|e| match violated_constraint(&e).as_deref() {
        Some("establishments_uai_key") => AccountError::UaiTaken(uai.to_string()),
        _ => e.into(),
    })?;
    Ok(Establishment {
        id,
        uai: uai.to_string(),
        name,
        portal_url: given(&new.portal_url),
    })
}

/// Changes an establishment's name and details (see [`EstablishmentChange`])
/// where they differ from what it holds, read in the same transaction once
/// its row is taken: another operator's change made meanwhile is what this
/// one replaces, and is kept where this one changes nothing. Answers what it
/// changed (nothing written when that is empty) and what it replaced, for the
/// trail.
pub async fn update_establishment(
    db: &Db,
    uai: &Uai,
    change: EstablishmentChange,
) -> Result<(EstablishmentChange, Establishment, Letterhead), AccountError> {
    let mut tx = db.begin().await?;
    // The row taken before it is read (PostgreSQL's row lock, SQLite's write
    // lock): two saves at once are one after the other.
    let taken = sqlx::query("UPDATE establishments SET name = name WHERE uai = $1")
        .bind(uai.as_str())
        .execute(&mut *tx)
        .await?;
    if taken.rows_affected() == 0 {
        return Err(AccountError::UnknownEstablishment(uai.to_string()));
    }
    let row = sqlx::query(
        "SELECT id, uai, name, portal_url, address, city, contact FROM establishments WHERE uai = $1",
    )
    .bind(uai.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let held = Establishment {
        id: row.try_get("id")?,
        uai: row.try_get("uai")?,
        name: row.try_get("name")?,
        portal_url: row.try_get("portal_url")?,
    };
    let head = Letterhead {
        address: row.try_get("address")?,
        city: row.try_get("city")?,
        contact: row.try_get("contact")?,
    };
    let change = change.beyond(&EstablishmentInput::held(&held, &head));
    if change.is_empty() {
        return Ok((change, held, head));
    }
    let pick = |changed: &Option<Option<String>>, held: &Option<String>| match changed {
        Some(value) => value.clone(),
        None => held.clone(),
    };
    sqlx::query(
        "UPDATE establishments SET name = $1, address = $2, city = $3, contact = $4, portal_url = $5 \
         WHERE uai = $6",
    )
    .bind(change.name.as_ref().unwrap_or(&held.name))
    .bind(pick(&change.address, &head.address))
    .bind(pick(&change.city, &head.city))
    .bind(pick(&change.contact, &head.contact))
    .bind(pick(&change.portal_url, &held.portal_url))
    .bind(uai.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((change, held, head))
}

/// Who changed an establishment, for its trail.
pub struct ChangedBy<'a> {
    /// The staff member's account, if it was one.
    pub actor: Option<&'a str>,
    /// Who, in words: « from the command line by … ».
    pub by: String,
    /// The browser's address and user agent, from the back office.
    pub from: Option<(std::net::IpAddr, &'a str)>,
}

/// On the audit trail: what was set on an establishment (its letters send
/// families to its portal), what it replaced (`before`, for an update), and
/// by whom.
pub async fn record_establishment(
    db: &Db,
    (uai, verb): (&Uai, &str),
    change: &EstablishmentChange,
    before: Option<&EstablishmentInput<'_>>,
    who: ChangedBy<'_>,
    now: i64,
) {
    let detail = format!("{verb} {uai}: {}, {}", change.described(before), who.by);
    let mut entry = crate::audit::Entry::new(
        crate::audit::Event::EstablishmentChanged,
        crate::audit::Outcome::Ok,
    )
    .detail(&detail);
    if let Some(actor) = who.actor {
        entry = entry.actor(actor);
    }
    if let Some((address, user_agent)) = who.from {
        entry = entry.from(address, user_agent);
    }
    crate::audit::record(db, entry, now).await;
}

/// An establishment's address and contact.
pub async fn letterhead(db: &Db, establishment_id: &str) -> Result<Letterhead, sqlx::Error> {
    let row = sqlx::query("SELECT address, city, contact FROM establishments WHERE id = $1")
        .bind(establishment_id)
        .fetch_one(db)
        .await?;
    Ok(Letterhead {
        address: row.try_get("address")?,
        city: row.try_get("city")?,
        contact: row.try_get("contact")?,
    })
}

/// An establishment's portal as an operator gives it: an absolute https URL
/// without credentials; on this machine itself (loopback, http allowed) only
/// when Clef runs there too (`local`: its issuer is on loopback, a demo or a
/// test), for families are sent to it from their own devices.
pub fn portal_url(raw: &str, local: bool) -> Result<String, FieldError> {
    const FIELD: &str = "adresse du portail";
    let value = crate::domain::shown_text(FIELD, raw, 300)?;
    let url = url::Url::parse(&value).map_err(|_| FieldError::new(FIELD, Problem::Invalid))?;
    let loopback = crate::domain::is_loopback(&url);
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => loopback,
        _ => false,
    };
    if !scheme_ok
        || (loopback && !local)
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(FieldError::new(FIELD, Problem::Invalid));
    }
    // As letters print it: an accented path or host is written out
    // (`%C3%A9`, `xn--`), and must still fit where families read it.
    let url = url.to_string();
    if url.chars().count() > 300 {
        return Err(FieldError::new(FIELD, Problem::TooLong { max: 300 }));
    }
    Ok(url)
}

pub async fn establishment_by_uai(
    db: &Db,
    uai: &Uai,
) -> Result<Option<Establishment>, sqlx::Error> {
    sqlx::query("SELECT id, uai, name, portal_url FROM establishments WHERE uai = $1")
        .bind(uai.as_str())
        .fetch_optional(db)
        .await?
        .map(|row| establishment_from(&row, ""))
        .transpose()
}

fn establishment_from(row: &AnyRow, prefix: &str) -> Result<Establishment, sqlx::Error> {
    Ok(Establishment {
        id: row.try_get(format!("{prefix}id").as_str())?,
        uai: row.try_get(format!("{prefix}uai").as_str())?,
        name: row.try_get(format!("{prefix}name").as_str())?,
        portal_url: row.try_get(format!("{prefix}portal_url").as_str())?,
    })
}

/// What the CLI (and later the import) gives to create an account.
pub struct NewAccount {
    pub identifier: Identifier,
    pub kind: AccountKind,
    pub state: AccountState,
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub birthdate: Option<BirthDate>,
    pub email: Option<EmailAddress>,
    pub email_verified: bool,
    pub establishment: Option<(Uai, ClassName)>,
    pub password_hash: Option<String>,
}

pub async fn create_account(db: &Db, new: NewAccount, now: i64) -> Result<Account, AccountError> {
    let school = match (&new.establishment, new.kind) {
        (Some(_), AccountKind::Guardian | AccountKind::Staff) => {
            return Err(AccountError::SchoolForNonStudent);
        }
        (None, AccountKind::Student) => return Err(AccountError::StudentWithoutSchool),
        (Some((uai, class)), AccountKind::Student) => {
            let establishment = establishment_by_uai(db, uai)
                .await?
                .ok_or_else(|| AccountError::UnknownEstablishment(uai.to_string()))?;
            Some((establishment.id, class.to_string()))
        }
        (None, _) => None,
    };
    let account = Account {
        id: uuid::Uuid::new_v4().to_string(),
        identifier: new.identifier.to_string(),
        kind: new.kind,
        state: new.state,
        given_name: new.given_name.to_string(),
        family_name: new.family_name.to_string(),
        birthdate: new.birthdate.map(|d| d.iso()),
        email: new.email.map(|e| e.to_string()),
        email_verified_at: new.email_verified.then_some(now),
        pending_email: None,
        phone: None,
        password_hash: new.password_hash,
        establishment_id: school.as_ref().map(|(id, _)| id.clone()),
        class_name: school.map(|(_, class)| class),
        merged_into: None,
        last_login_at: None,
        previous_login_at: None,
        created_at: now,
        letter_date: None,
        provisional_password: None,
    };
    sqlx::query(
        "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, birthdate, email, \
         email_verified_at, password_hash, establishment_id, class_name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&account.id)
    .bind(&account.identifier)
    .bind(account.kind.as_str())
    .bind(account.state.as_str())
    .bind(&account.given_name)
    .bind(&account.family_name)
    .bind(&account.birthdate)
    .bind(&account.email)
    .bind(account.email_verified_at)
    .bind(&account.password_hash)
    .bind(&account.establishment_id)
    .bind(&account.class_name)
    .bind(now)
    .execute(db)
    .await
    .map_err(|e| match violated_constraint(&e).as_deref() {
        Some("accounts_identifier_key") => AccountError::IdentifierTaken(account.identifier.clone()),
        _ => e.into(),
    })?;
    Ok(account)
}

const ACCOUNT_COLUMNS: &str = "id, identifier, kind, state, given_name, family_name, birthdate, email, \
     email_verified_at, pending_email, phone, password_hash, establishment_id, class_name, merged_into, last_login_at, previous_login_at, created_at, \
     letter_date, provisional_password";

fn account_from(row: &AnyRow) -> Result<Account, sqlx::Error> {
    let decode = |column: &str, e: &str| sqlx::Error::ColumnDecode {
        index: column.into(),
        source: format!("unexpected value {e:?}").into(),
    };
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    Ok(Account {
        id: row.try_get("id")?,
        identifier: row.try_get("identifier")?,
        kind: AccountKind::parse(&kind).ok_or_else(|| decode("kind", &kind))?,
        state: AccountState::parse(&state).ok_or_else(|| decode("state", &state))?,
        given_name: row.try_get("given_name")?,
        family_name: row.try_get("family_name")?,
        birthdate: row.try_get("birthdate")?,
        email: row.try_get("email")?,
        email_verified_at: row.try_get("email_verified_at")?,
        pending_email: row.try_get("pending_email")?,
        phone: row.try_get("phone")?,
        password_hash: row.try_get("password_hash")?,
        establishment_id: row.try_get("establishment_id")?,
        class_name: row.try_get("class_name")?,
        merged_into: row.try_get("merged_into")?,
        last_login_at: row.try_get("last_login_at")?,
        previous_login_at: row.try_get("previous_login_at")?,
        created_at: row.try_get("created_at")?,
        letter_date: row.try_get("letter_date")?,
        provisional_password: row.try_get("provisional_password")?,
    })
}

pub async fn account_by_identifier(
    db: &Db,
    identifier: &Identifier,
) -> Result<Option<Account>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE identifier = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(identifier.as_str())
        .fetch_optional(db)
        .await?
        .map(|row| account_from(&row))
        .transpose()
}

pub async fn account_by_id<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<Account>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(|row| account_from(&row))
        .transpose()
}

/// The accounts among `ids` (each once), in no particular order: a few
/// statements whatever their number (`storage::in_prepared_sizes`).
pub async fn accounts_by_ids(
    db: &mut sqlx::AnyConnection,
    ids: &[&str],
) -> Result<Vec<Account>, sqlx::Error> {
    let mut accounts = Vec::with_capacity(ids.len());
    for run in crate::storage::in_prepared_sizes(ids) {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN {}",
            crate::storage::values_list(1, run.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in run {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *db).await? {
            accounts.push(account_from(&row)?);
        }
    }
    Ok(accounts)
}

/// The accounts whose confirmed address is `email` (whatever its case),
/// oldest first: a parent may hold several, one per letter, until grouping them.
pub async fn accounts_by_confirmed_email(
    db: &Db,
    email: &EmailAddress,
) -> Result<Vec<Account>, sqlx::Error> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts \
         WHERE LOWER(email) = LOWER($1) AND email_verified_at IS NOT NULL AND state <> 'closed' \
         ORDER BY created_at, identifier"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email.as_str())
        .fetch_all(db)
        .await?
        .iter()
        .map(account_from)
        .collect()
}

/// Records the mobile number recovery codes go to (`None` removes it).
pub async fn set_phone(
    db: &Db,
    account_id: &str,
    phone: Option<&Phone>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET phone = $1, updated_at = $2 WHERE id = $3")
        .bind(phone.map(Phone::as_str))
        .bind(now)
        .bind(account_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records a login (the last one becomes the previous one, which « Mon
/// compte » shows) and answers the account's session epoch, which the new
/// session carries; `None` if the credentials checked (the account's
/// [`Account::credential_stamp`] then) have changed since: a password reset
/// or change landed between the check and now, and moved the epoch on with
/// it, or is about to. One statement, so the two cannot cross: the login
/// gets the epoch that the change's sign-out ends, or nothing.
/// Also records the language of the sign-in (see [`locale_of`]).
pub async fn record_login(
    db: &Db,
    account: &Account,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE accounts SET previous_login_at = last_login_at, last_login_at = $1, locale = $3 \
         WHERE id = $2 AND COALESCE(password_hash, provisional_password, '') = $4 \
         RETURNING session_epoch",
    )
    .bind(now)
    .bind(&account.id)
    .bind(Locale::current().code())
    .bind(account.credential_stamp())
    .fetch_optional(db)
    .await
}

/// The language the person last signed in with, or chose with the language
/// link while signed in: the one to write to them in when someone else's
/// action mails them. `None` if never known (an account that never signed in).
pub async fn locale_of(db: &Db, account_id: &str) -> Result<Option<Locale>, sqlx::Error> {
    let tag: Option<String> = sqlx::query_scalar("SELECT locale FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(db)
        .await?
        .flatten();
    Ok(tag.as_deref().and_then(Locale::from_tag))
}

/// Remembers `locale` as the person's language (the language link used
/// while signed in).
pub async fn set_locale(db: &Db, account_id: &str, locale: Locale) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET locale = $1 WHERE id = $2")
        .bind(locale.code())
        .bind(account_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The account's session epoch: sessions opened in an earlier one are over.
pub async fn session_epoch(db: &Db, account_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT session_epoch FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(db)
        .await
}

/// Moves the account into a new session epoch, ending at once every session
/// opened before (they carry the old one); answers the new epoch.
pub async fn next_session_epoch(db: &Db, account_id: &str, now: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE accounts SET session_epoch = session_epoch + 1, updated_at = $1 \
         WHERE id = $2 RETURNING session_epoch",
    )
    .bind(now)
    .bind(account_id)
    .fetch_one(db)
    .await
}

/// Attaches a student to a guardian with a legal rank; linking again updates the rank.
pub async fn link_guardian(
    db: &Db,
    guardian_id: &str,
    student_id: &str,
    rank: Rank,
    now: i64,
) -> Result<(), AccountError> {
    let mut tx = db.begin().await?;
    // Each row is taken (written) before it is read, in the order grouping
    // takes them, so a concurrent grouping of this guardian applies wholly
    // before (the guardian is then closed) or after (the link then moves).
    let mut ids = [guardian_id, student_id];
    ids.sort_unstable();
    for id in ids {
        sqlx::query("UPDATE accounts SET updated_at = updated_at WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    for (id, kind) in [
        (guardian_id, AccountKind::Guardian),
        (student_id, AccountKind::Student),
    ] {
        let found: Option<String> =
            sqlx::query_scalar("SELECT kind FROM accounts WHERE id = $1 AND state <> 'closed'")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match found {
            None => return Err(AccountError::UnknownAccount(id.to_owned())),
            Some(found) if found != kind.as_str() => {
                return Err(AccountError::WrongKind(id.to_owned(), kind.as_str()));
            }
            Some(_) => {}
        }
    }
    sqlx::query(
        "INSERT INTO guardianships (guardian_id, student_id, rank, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (guardian_id, student_id) DO UPDATE SET rank = excluded.rank",
    )
    .bind(guardian_id)
    .bind(student_id)
    .bind(i64::from(rank.get()))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The students attached to a guardian, oldest link first, with their schools.
pub async fn children<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    guardian_id: &str,
) -> Result<Vec<Child>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.id, s.given_name, s.family_name, s.birthdate, s.class_name, g.rank, \
                e.id AS e_id, e.uai AS e_uai, e.name AS e_name, e.portal_url AS e_portal_url \
         FROM guardianships g \
         JOIN accounts s ON s.id = g.student_id \
         LEFT JOIN establishments e ON e.id = s.establishment_id \
         WHERE g.guardian_id = $1 AND s.state <> 'closed' \
         ORDER BY g.created_at, s.family_name, s.given_name, s.id",
    )
    .bind(guardian_id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let establishment_id: Option<String> = row.try_get("e_id")?;
            Ok(Child {
                id: row.try_get("id")?,
                given_name: row.try_get("given_name")?,
                family_name: row.try_get("family_name")?,
                birthdate: row.try_get("birthdate")?,
                rank: row.try_get("rank")?,
                class_name: row.try_get("class_name")?,
                establishment: establishment_id
                    .map(|_| establishment_from(row, "e_"))
                    .transpose()?,
            })
        })
        .collect()
}

/// The open guardian accounts of the pupil `student_id`, by rank.
pub async fn guardians<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    student_id: &str,
) -> Result<Vec<Guardian>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.id, a.given_name, a.family_name, a.state, g.rank FROM guardianships g \
         JOIN accounts a ON a.id = g.guardian_id \
         WHERE g.student_id = $1 AND a.state <> 'closed' ORDER BY g.rank, a.family_name, a.id",
    )
    .bind(student_id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            Ok(Guardian {
                id: row.try_get("id")?,
                given_name: row.try_get("given_name")?,
                family_name: row.try_get("family_name")?,
                state: AccountState::parse(&state).unwrap_or(AccountState::Closed),
                rank: row.try_get("rank")?,
            })
        })
        .collect()
}

pub async fn establishment_by_id<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<Establishment>, sqlx::Error> {
    sqlx::query("SELECT id, uai, name, portal_url FROM establishments WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(|row| establishment_from(&row, ""))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Families open an establishment's portal from their own devices: one on
    /// this machine (loopback) only for a Clef on it too, a demo or a test.
    #[test]
    fn a_portal_on_this_machine_only_for_a_clef_on_it() {
        for local in [
            "http://127.0.0.1:9000/",
            "https://localhost/ent",
            "http://[::1]/",
        ] {
            assert!(portal_url(local, true).is_ok(), "{local}");
            assert_eq!(
                portal_url(local, false).unwrap_err().problem,
                Problem::Invalid,
                "{local}"
            );
        }
        assert_eq!(
            portal_url("https://ent.example.fr", false).unwrap(),
            "https://ent.example.fr/"
        );
        for refused in [
            "http://ent.example.fr/",
            "https://u:p@ent.example.fr/",
            "javascript:x",
        ] {
            assert!(portal_url(refused, true).is_err(), "{refused}");
        }
        // Counted as letters print it: written out, an accented path is longer.
        let accented = format!("https://ent.example.fr/{}", "é".repeat(60));
        assert_eq!(
            portal_url(&accented, false).unwrap_err().problem,
            Problem::TooLong { max: 300 }
        );
    }
}
