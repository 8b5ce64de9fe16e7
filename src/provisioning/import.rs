//! Importing a school's pupil file (SPEC §3.10): one provisional student account
//! per pupil, one provisional guardian account per (guardian, pupil) pair.
//! Idempotent, all-or-nothing, and fast enough for 100k pupils in a minute.

use std::collections::HashMap;

use secrecy::SecretString;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::Any;

use super::csv_file::{self, FoldedName, GuardianRow, Phone, PupilRow, RowError, StudentNumber};
use super::identifiers;
use super::provisional::{self, LetterCipher};
use crate::accounts::store::establishment_by_uai;
use crate::audit;
use crate::delivery::mail::{Mail, Subject};
use crate::domain::{BirthDate, EmailAddress, Uai};
use crate::storage::Db;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("aucun établissement n'a l'UAI {0}")]
    UnknownEstablishment(String),
    /// The file cannot be read as a whole (its header, its encoding, a
    /// quote left open across rows); nothing was written.
    #[error("fichier refusé")]
    File(Vec<RowError>),
    /// The file has bad rows (`BadRows::Refuse`); nothing was written. `good`
    /// rows would go in with `BadRows::Skip`.
    #[error("{} lignes refusées", refused.len())]
    Rows { refused: Vec<RowError>, good: usize },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The largest school file taken, from the back office or `clef import`
/// (a 2,000-pupil file is about 300 KiB).
pub const MAX_FILE: usize = 8 * 1024 * 1024;

/// The ages a pupil may have: from the toute petite section of a nursery
/// school to adults back at school (evening classes, apprentices).
const MIN_AGE: i32 = 2;
const MAX_AGE: i32 = 99;

/// What becomes of a file with bad rows (SPEC §3.10: nothing of it is
/// written « unless asked »).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRows {
    /// The whole file is refused.
    Refuse,
    /// The good rows are imported; the bad ones are left out, and said so.
    Skip,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ImportReport {
    pub dry_run: bool,
    /// The bad rows left out (`BadRows::Skip`), « ligne N : pourquoi ».
    #[serde(default)]
    pub skipped: Vec<String>,
    pub students_created: usize,
    pub students_updated: usize,
    pub students_unchanged: usize,
    pub guardians_created: usize,
    pub guardians_updated: usize,
    pub guardians_unchanged: usize,
    /// Open pupils of the school the file does not name.
    #[serde(default)]
    pub students_absent: usize,
    /// One line per change, for `--dry-run` and the back office: every one
    /// the school has to look at, and the first [`LISTED_CHANGES`] others.
    pub changes: Vec<String>,
    /// The other changes, counted: a whole académie's file would make a
    /// report of hundreds of thousands of lines, kept with the import's job.
    #[serde(default)]
    pub unlisted_changes: usize,
    /// The changes the school has to look at (rows left aside, accounts
    /// kept as they were, columns not read): listed whatever their number.
    #[serde(default)]
    pub attention: Vec<String>,
    /// The existing accounts the file changed, for their own trails
    /// (`tell_the_accounts`).
    #[serde(skip)]
    pub touched: Vec<Touched>,
}

/// An existing account an import changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    pub account_id: String,
    /// The report's line, « ligne N : … ».
    pub change: String,
    /// An activated parent's phone, which recovers the account by SMS,
    /// replaced by the file's.
    pub phone_replaced: bool,
}

struct ExistingStudent {
    id: String,
    /// Closed by the school (back office): the file does not reopen it.
    closed: bool,
    class: String,
    given_name: String,
    family_name: String,
    birthdate: Option<String>,
}

impl ExistingStudent {
    /// Whether `row`, under this pupil's number, is another child: another
    /// birth date and another name (accents and case aside). A corrected
    /// date alone, or a name alone, is the same pupil.
    fn is_another_pupil(&self, row: &PupilRow) -> bool {
        let other_date = self
            .birthdate
            .as_deref()
            .is_some_and(|date| date != row.birthdate.iso());
        let other_name = FoldedName::of(&self.given_name, &self.family_name)
            != FoldedName::of(row.given_name.as_str(), row.family_name.as_str());
        other_date && other_name
    }
}

/// `2012-09-03` as the report says it: `né(e) le 03/09/2012`.
fn born_on(iso: &str) -> String {
    let mut parts = iso.splitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(year), Some(month), Some(day)) => format!("né(e) le {day}/{month}/{year}"),
        _ => iso.to_owned(),
    }
}

/// A guardian account attached to one of the school's pupils.
struct ExistingGuardian {
    id: String,
    student_id: String,
    rank: u8,
    given_name: String,
    family_name: String,
    name: FoldedName,
    /// The names of the accounts grouped into this one (SPEC §3.8): the
    /// parent who grouped them is each of those guardians in the file.
    grouped: Vec<FoldedName>,
    email: Option<String>,
    phone: Option<String>,
    /// Never activated: its letter not used yet. One the school reset after
    /// its owner used it (provisional again) keeps its owner's contact details
    /// and is never detached by a file.
    unused: bool,
    /// Closed by the school in the back office: the file does not open a
    /// new account in its place.
    closed: bool,
    /// A parent of an open pupil of another establishment too: this
    /// school's file does not change how the account is recovered (its
    /// phone), which only the academy may (as a reset or an address, see
    /// `accounts::staff`).
    shared: bool,
}

/// Of a name in the file and the same name held (equal once folded), the
/// one to keep: the file's, unless it is in capitals alone and the held one
/// is not (« LE GALL » says less than « Le Gall »).
fn spelling<'a>(file: &'a str, held: &'a str) -> &'a str {
    let capitals_only =
        |name: &str| name.chars().any(char::is_alphabetic) && !name.chars().any(char::is_lowercase);
    match capitals_only(file) && !capitals_only(held) {
        true => held,
        false => file,
    }
}

impl ExistingGuardian {
    /// « Marc Baillet », for the report.
    fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    fn answers_to(&self, name: &FoldedName) -> bool {
        self.name == *name || self.grouped.contains(name)
    }
}

/// A cell of a multi-row insert.
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

/// Imports `bytes` for the establishment `uai`. With `dry_run` (a preview),
/// the report is computed from the same reads and writes nothing: no write
/// lock is taken, so a preview of a large file holds up no sign-in (SQLite
/// has one writer) and no other import of the school (PostgreSQL); the new
/// accounts get their identifiers only when the import is applied.
pub async fn import(
    db: &Db,
    cipher: &LetterCipher,
    uai: &Uai,
    bytes: &[u8],
    now: i64,
    dry_run: bool,
    bad_rows: BadRows,
) -> Result<ImportReport, ImportError> {
    let parsed = csv_file::read(bytes).map_err(ImportError::File)?;
    let contacts = parsed.contacts;
    let unread = parsed.unread;
    let mut refused = parsed.refused;
    let mut rows = parsed.rows;
    // A birth date to come, or one no pupil has, is a typo (the year: 2021
    // for 2012, 1912), and the one the family would have to type at the
    // first connection.
    rows.retain(|row| {
        let (date, age) = (row.birthdate.french(), row.birthdate.age_on(now));
        let reason = if row.birthdate.is_after_the_day_of(now) {
            format!("la date de naissance ({date}) est dans le futur")
        } else if age < MIN_AGE {
            format!("la date de naissance ({date}) donnerait à l'élève moins de {MIN_AGE} ans : vérifiez l'année")
        } else if age > MAX_AGE {
            format!("la date de naissance ({date}) donnerait à l'élève {age} ans : vérifiez l'année")
        } else {
            return true;
        };
        refused.push(RowError {
            line: row.line,
            reason,
        });
        false
    });
    let establishment = establishment_by_uai(db, uai)
        .await?
        .ok_or_else(|| ImportError::UnknownEstablishment(uai.to_string()))?;
    let mut tx = db.begin().await?;
    crate::storage::wait_for_locks(&mut tx).await?;
    // A write first: SQLite takes its write lock now, rather than at the first
    // insert after seconds of reads, when a login committed meanwhile would
    // refuse the upgrade (SQLITE_BUSY_SNAPSHOT); PostgreSQL locks the
    // establishment's row, so two imports of one school run one after the other.
    if !dry_run {
        sqlx::query("UPDATE establishments SET name = name WHERE id = $1")
            .bind(&establishment.id)
            .execute(&mut *tx)
            .await?;
    }

    let students = existing_students(&mut tx, &establishment.id).await?;
    // A pupil's number that now names another child (a column shifted,
    // rows sorted apart, two siblings' numbers swapped) would rewrite that
    // pupil's account in place, and their parents would see the other
    // child: such a row is a bad row.
    let conflicts: Vec<RowError> = rows
        .iter()
        .filter_map(|row| {
            let existing = students.get(&row.student_ref.key())?;
            (!existing.closed && existing.is_another_pupil(row)).then(|| RowError {
                line: row.line,
                reason: format!(
                    "le n° élève {} est celui de {} {} ({}), qui n'a ni ce nom ni cette date de naissance : même numéro, autre élève ? Vérifiez le fichier",
                    row.student_ref.as_str(),
                    existing.given_name,
                    existing.family_name,
                    existing.birthdate.as_deref().map(born_on).unwrap_or_default()
                ),
            })
        })
        .collect();
    rows.retain(|row| conflicts.iter().all(|c| c.line != row.line));
    refused.extend(conflicts);
    // Every bad row at once, in the file's order.
    refused.sort_by_key(|e| e.line);
    if bad_rows == BadRows::Refuse && !refused.is_empty() {
        return Err(ImportError::Rows {
            refused,
            good: rows.len(),
        });
    }
    let mut report = ImportReport {
        dry_run,
        skipped: refused.iter().map(ToString::to_string).collect(),
        ..ImportReport::default()
    };
    for header in unread {
        report.warn(format!(
            "fichier : la colonne « {header} » n'est pas lue : elle ne dit pas de quel responsable légal elle est ; ajoutez « responsable 1 » ou « responsable 2 » à son nom pour qu'elle le soit"
        ));
    }
    let guardians = existing_guardians(&mut tx, &establishment.id).await?;

    let mut new_accounts: Vec<NewProvisional<'_>> = Vec::new();
    // (new guardian, rank, student) for each guardianship to create.
    let mut new_links: Vec<(usize, u8, StudentRef)> = Vec::new();
    let mut detach: Vec<(String, String)> = Vec::new();
    for row in &rows {
        let student = match students.get(&row.student_ref.key()) {
            Some(existing) if existing.closed => {
                // Its number stays taken: the row is left out, and said so.
                report.warn(format!(
                    "ligne {} : {} {} a un compte fermé par l'établissement ; ligne ignorée",
                    row.line, row.given_name, row.family_name
                ));
                continue;
            }
            Some(existing) => {
                let birthdate = row.birthdate.iso();
                let changed = existing.class != row.class.as_str()
                    || existing.given_name != row.given_name.as_str()
                    || existing.family_name != row.family_name.as_str()
                    || existing.birthdate.as_deref() != Some(birthdate.as_str());
                if changed {
                    if !dry_run {
                        sqlx::query(
                            "UPDATE accounts SET class_name = $1, given_name = $2, family_name = $3, birthdate = $4, updated_at = $5 WHERE id = $6",
                        )
                        .bind(row.class.as_str())
                        .bind(row.given_name.as_str())
                        .bind(row.family_name.as_str())
                        .bind(&birthdate)
                        .bind(now)
                        .bind(&existing.id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    report.students_updated += 1;
                    // A name or a birth date the file changes, old → new:
                    // the birth date is the letter's second secret, and a
                    // day read as the month must not pass unseen.
                    let class_changed = existing.class != row.class.as_str();
                    let mut looked_at = Vec::new();
                    let name = format!("{} {}", row.given_name, row.family_name);
                    let old_name = format!("{} {}", existing.given_name, existing.family_name);
                    if old_name != name {
                        looked_at.push(format!("nom {old_name} → {name}"));
                    }
                    if existing.birthdate.as_deref() != Some(birthdate.as_str()) {
                        // Kept as ISO, shown as the file writes it.
                        let old = existing
                            .birthdate
                            .as_deref()
                            .map_or("aucune".into(), |iso| {
                                BirthDate::parse(iso)
                                    .map_or_else(|_| iso.to_owned(), |d| d.french())
                            });
                        looked_at.push(format!(
                            "date de naissance {old} → {}",
                            row.birthdate.french()
                        ));
                    }
                    let mut change = if class_changed {
                        format!(
                            "ligne {} : {name} change de classe ({} → {})",
                            row.line, existing.class, row.class
                        )
                    } else {
                        format!("ligne {} : {name} mis à jour", row.line)
                    };
                    if looked_at.is_empty() {
                        report.touch(&existing.id, change, false);
                    } else {
                        change.push_str(if class_changed { " ; " } else { " : " });
                        change.push_str(&looked_at.join(" ; "));
                        report.touch_noted(&existing.id, change, false);
                    }
                } else {
                    report.students_unchanged += 1;
                }
                StudentRef::Existing(existing.id.clone())
            }
            None => {
                new_accounts.push(NewProvisional::new(Newcomer::Student(row)));
                report.students_created += 1;
                report.change(format!(
                    "ligne {} : nouvel élève {} {} ({})",
                    row.line, row.given_name, row.family_name, row.class
                ));
                StudentRef::New(new_accounts.len() - 1)
            }
        };
        let links: &[ExistingGuardian] = match &student {
            StudentRef::Existing(id) => guardians.get(id).map_or(&[], Vec::as_slice),
            StudentRef::New(_) => &[],
        };
        // The file's guardians are matched by name first, among all the
        // pupil's guardians and the accounts grouped into them, whatever
        // their rank: a grouping or a change of rank is not a new guardian.
        let names: Vec<FoldedName> = row
            .guardians
            .iter()
            .map(|guardian| {
                FoldedName::of(guardian.given_name.as_str(), guardian.family_name.as_str())
            })
            .collect();
        let matches: Vec<Option<&ExistingGuardian>> = row
            .guardians
            .iter()
            .zip(&names)
            .map(|(guardian, name)| {
                links
                    .iter()
                    .filter(|current| current.answers_to(name))
                    .min_by_key(|current| (current.closed, current.rank != guardian.rank))
            })
            .collect();
        let claimed =
            |current: &ExistingGuardian| matches.iter().flatten().any(|m| m.id == current.id);
        let detached_before = detach.len();
        for ((guardian, name), matched) in row.guardians.iter().zip(&names).zip(&matches) {
            if let Some(current) = matched
                && current.closed
            {
                report.warn(format!(
                    "ligne {} : {} {} (responsable {} de {}) a un compte fermé par l'établissement ; il n'est pas recréé",
                    row.line, guardian.given_name, guardian.family_name, guardian.rank, row.given_name
                ));
                continue;
            }
            if let Some(current) = matched {
                // A contact column the file lacks keeps what is held.
                let column = usize::from(guardian.rank - 1);
                let email = match contacts.email[column] {
                    true => guardian.email.as_ref().map(|e| e.to_string()),
                    false => current.email.clone(),
                };
                let phone = match contacts.phone[column] {
                    true => guardian.phone.as_ref().map(|p| p.as_str().to_owned()),
                    false => current.phone.clone(),
                };
                let mut changed = false;
                // An activated account's address the file would change is
                // said kept, so that the school does not believe it changed:
                // it writes to the parent, who changes it in « Mon compte ».
                if !current.unused
                    && current.name == *name
                    && let Some(new) = email
                        .as_ref()
                        .filter(|&new| Some(new) != current.email.as_ref())
                {
                    report.warn(format!(
                        "ligne {} : l'adresse mail de {} {} n'est pas modifiée ({new} dans le fichier) : son compte est activé, l'adresse est la sienne ; le parent la change dans « Mon compte »",
                        row.line, guardian.given_name, guardian.family_name
                    ));
                }
                // An unused account takes the file's contact details. An
                // activated one's address is its owner's: the file does not
                // overwrite it. Its phone, which no page lets the owner
                // change, is the one the family gave the school (the seeds'
                // « fiche de renseignement » of the rentrée): a new one in
                // the file replaces it, for the account's own name only (a
                // grouped account answers to two parents, each their phone),
                // unless the parent has children in another school too: one
                // school's file must not be a way into the account for
                // whoever holds the new number (SMS recovery).
                let (email, phone) = if current.unused {
                    (email, phone)
                } else if current.name == *name && phone.is_some() && !current.shared {
                    (current.email.clone(), phone)
                } else {
                    if current.name == *name
                        && current.shared
                        && phone.is_some()
                        && phone != current.phone
                    {
                        report.warn(format!(
                            "ligne {} : le téléphone de {} {} n'est pas modifié : ce parent a des enfants dans un autre établissement ; adressez-vous au rectorat",
                            row.line, guardian.given_name, guardian.family_name
                        ));
                    }
                    (current.email.clone(), current.phone.clone())
                };
                if current.email != email || current.phone != phone {
                    if !dry_run {
                        sqlx::query(
                            "UPDATE accounts SET email = $1, phone = $2, updated_at = $3 WHERE id = $4",
                        )
                        .bind(&email)
                        .bind(&phone)
                        .bind(now)
                        .bind(&current.id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    changed = true;
                    let phone_replaced =
                        !current.unused && phone.is_some() && current.phone != phone;
                    // What changes, old → new: a secretary sees in the
                    // preview an address she corrected by hand that the
                    // file would undo.
                    let shown = |value: &Option<String>, none: &str| {
                        value.clone().unwrap_or_else(|| none.to_owned())
                    };
                    let mut changes = Vec::new();
                    if current.email != email {
                        changes.push(format!(
                            "adresse {} → {}",
                            shown(&current.email, "aucune"),
                            shown(&email, "aucune")
                        ));
                    }
                    if current.phone != phone {
                        changes.push(format!(
                            "téléphone {} → {}",
                            shown(&current.phone, "aucun"),
                            shown(&phone, "aucun")
                        ));
                    }
                    let change = format!(
                        "ligne {} : coordonnées {} mises à jour : {}",
                        row.line,
                        super::letters::of_name(&format!(
                            "{} {}",
                            guardian.given_name, guardian.family_name
                        )),
                        changes.join(" ; ")
                    );
                    // To look at: an address (a correction made by hand may
                    // be undone), an activated account's details; a letter
                    // account's new phone is an ordinary change.
                    if current.email != email || !current.unused {
                        report.touch_noted(&current.id, change, phone_replaced);
                    } else {
                        report.touch(&current.id, change, phone_replaced);
                    }
                }
                // The school's spelling of the guardian's own name (accents,
                // capitals, an apostrophe the first file lacked): what the
                // letter prints and the services read — but not a name in
                // capitals alone where one is held in small letters too (an
                // export that writes names in capitals says less). Not for a
                // parent of a pupil of another school either, whose file may
                // spell it otherwise: each import would undo the other's.
                let held = (current.given_name.as_str(), current.family_name.as_str());
                let spelled = (
                    spelling(guardian.given_name.as_str(), held.0),
                    spelling(guardian.family_name.as_str(), held.1),
                );
                if current.name == *name && held != spelled {
                    let change = format!(
                        "ligne {} : nom de responsable {} → {} {}",
                        row.line,
                        current.display_name(),
                        spelled.0,
                        spelled.1
                    );
                    if current.shared {
                        report.warn(format!(
                            "ligne {} : le nom de {} n'est pas modifié ({} {} dans le fichier) : ce parent a des enfants dans un autre établissement ; adressez-vous au rectorat",
                            row.line, current.display_name(), guardian.given_name, guardian.family_name
                        ));
                    } else {
                        if !dry_run {
                            sqlx::query(
                                "UPDATE accounts SET given_name = $1, family_name = $2, updated_at = $3 WHERE id = $4",
                            )
                            .bind(spelled.0)
                            .bind(spelled.1)
                            .bind(now)
                            .bind(&current.id)
                            .execute(&mut *tx)
                            .await?;
                        }
                        changed = true;
                        report.touch_noted(&current.id, change, false);
                    }
                }
                // A new rank is the account's own (not that of an account grouped into it).
                if current.name == *name && current.rank != guardian.rank {
                    if !dry_run {
                        sqlx::query(
                            "UPDATE guardianships SET rank = $1 WHERE guardian_id = $2 AND student_id = $3",
                        )
                        .bind(i64::from(guardian.rank))
                        .bind(&current.id)
                        .bind(&current.student_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    changed = true;
                    let change = format!(
                        "ligne {} : {} {} devient responsable {} de {}",
                        row.line,
                        guardian.given_name,
                        guardian.family_name,
                        guardian.rank,
                        row.given_name
                    );
                    report.touch(&current.id, change, false);
                }
                if changed {
                    report.guardians_updated += 1;
                } else {
                    report.guardians_unchanged += 1;
                }
                continue;
            }
            // A new guardian at this rank: the account the file no longer
            // names there is detached if its letter was never used.
            let replaced = links.iter().find(|current| {
                current.rank == guardian.rank && current.unused && !claimed(current)
            });
            if let Some(old) = replaced {
                detach.push((old.id.clone(), old.student_id.clone()));
                let change = format!(
                    "ligne {} : le compte non activé de {} est détaché de {}",
                    row.line,
                    old.display_name(),
                    row.given_name
                );
                report.touch(&old.id, change, false);
            }
            new_accounts.push(NewProvisional::new(Newcomer::Guardian(guardian)));
            report.guardians_created += 1;
            report.change(format!(
                "ligne {} : nouveau responsable {} {} (responsable {}) pour {}",
                row.line, guardian.given_name, guardian.family_name, guardian.rank, row.given_name
            ));
            new_links.push((new_accounts.len() - 1, guardian.rank, student.clone()));
        }
        // An account the file no longer names, and not replaced above, stays:
        // an activated one is never detached by a file (nor one whose
        // column the export left empty). The school decides, and is told.
        let detached = &detach[detached_before..];
        for left in links.iter().filter(|current| {
            !current.closed
                && !claimed(current)
                && !detached.iter().any(|(id, _)| *id == current.id)
        }) {
            report.warn(format!(
                "ligne {} : {} n'est plus dans le fichier comme responsable {} ; son compte reste rattaché, \
                 détachez-le depuis l'administration s'il n'est plus responsable",
                row.line,
                left.display_name(),
                super::letters::of_name(row.given_name.as_str())
            ));
        }
    }
    // Pupils of the school the file does not name (left, changed school, or
    // a file of one class): their accounts stay open, the school decides.
    // Not when rows were left out: their pupils would be named as absent.
    let named: std::collections::HashSet<String> =
        rows.iter().map(|row| row.student_ref.key()).collect();
    let mut absent: Vec<&ExistingStudent> = students
        .iter()
        .filter(|(key, student)| !student.closed && !named.contains(*key))
        .map(|(_, student)| student)
        .filter(|_| report.skipped.is_empty())
        .collect();
    if !absent.is_empty() {
        absent.sort_by(|a, b| {
            (&a.class, &a.family_name, &a.given_name).cmp(&(
                &b.class,
                &b.family_name,
                &b.given_name,
            ))
        });
        const NAMED: usize = 10;
        let mut names: Vec<String> = absent
            .iter()
            .take(NAMED)
            .map(|s| format!("{} {} ({})", s.given_name, s.family_name, s.class))
            .collect();
        if absent.len() > NAMED {
            names.push(format!("et {} autres", absent.len() - NAMED));
        }
        let names = names.join(", ");
        report.warn(match absent.len() {
            1 => format!(
                "1 élève de l'établissement ne figure pas dans ce fichier : {names} ; son compte reste ouvert, \
                 fermez-le depuis l'administration si l'élève a quitté l'établissement"
            ),
            n => format!(
                "{n} élèves de l'établissement ne figurent pas dans ce fichier : {names} ; leurs comptes restent ouverts, \
                 fermez depuis l'administration ceux des élèves qui ont quitté l'établissement"
            ),
        });
    }
    report.students_absent = absent.len();

    if dry_run {
        // The report is complete: nothing to write, no lock was taken.
        tx.rollback().await?;
        return Ok(report);
    }
    let bases: Vec<String> = new_accounts.iter().map(NewProvisional::base).collect();
    let identifiers = identifiers::assign(&mut tx, &bases).await?;
    drop(bases);
    // The rows made and written a thousand at a time: a whole académie's
    // file would hold every new account's cells in memory at once.
    for (accounts, identifiers) in new_accounts.chunks(1000).zip(identifiers.chunks(1000)) {
        let mut account_rows = Vec::with_capacity(accounts.len());
        for (account, identifier) in accounts.iter().zip(identifiers) {
            let id = account.id.to_string();
            let sealed = seal(cipher, &id, &provisional::generate())?;
            account_rows.push(account.cells(id, identifier, &establishment.id, sealed, now));
        }
        insert_rows(&mut tx, "accounts", &NewProvisional::COLUMNS, account_rows).await?;
    }
    for (guardian_id, student_id) in &detach {
        sqlx::query("DELETE FROM guardianships WHERE guardian_id = $1 AND student_id = $2")
            .bind(guardian_id)
            .bind(student_id)
            .execute(&mut *tx)
            .await?;
        crate::oidc::consent::forget_child(&mut *tx, guardian_id, student_id).await?;
    }
    for links in new_links.chunks(1000) {
        let link_rows = links
            .iter()
            .map(|(guardian, rank, student)| {
                let student_id = match student {
                    StudentRef::New(i) => new_accounts[*i].id.to_string(),
                    StudentRef::Existing(id) => id.clone(),
                };
                vec![
                    Cell::from(new_accounts[*guardian].id.to_string()),
                    Cell::from(student_id),
                    Cell::from(i64::from(*rank)),
                    Cell::from(now),
                ]
            })
            .collect();
        insert_rows(
            &mut tx,
            "guardianships",
            &["guardian_id", "student_id", "rank", "created_at"],
            link_rows,
        )
        .await?;
    }

    tx.commit().await?;
    tracing::info!(
        uai = %uai,
        students_created = report.students_created,
        students_updated = report.students_updated,
        guardians_created = report.guardians_created,
        guardians_updated = report.guardians_updated,
        rows_skipped = report.skipped.len(),
        "import"
    );
    Ok(report)
}

/// Ordinary changes a report lists (see [`ImportReport::changes`]).
pub const LISTED_CHANGES: usize = 300;

impl ImportReport {
    /// An ordinary change: listed, or counted once enough are.
    fn change(&mut self, line: String) {
        if self.changes.len() - self.attention.len() < LISTED_CHANGES {
            self.changes.push(line);
        } else {
            self.unlisted_changes += 1;
        }
    }

    /// A change the school has to look at.
    fn warn(&mut self, line: String) {
        self.changes.push(line.clone());
        self.attention.push(line);
    }

    /// A change of an existing account: in the report, and on its trail.
    fn touch(&mut self, account_id: &str, change: String, phone_replaced: bool) {
        self.change(change.clone());
        self.touch_quietly(account_id, change, phone_replaced);
    }

    /// [`Self::touch`] for a change the school has to look at: a parent's
    /// contact details (the file may undo a correction made by hand).
    fn touch_noted(&mut self, account_id: &str, change: String, phone_replaced: bool) {
        self.warn(change.clone());
        self.touch_quietly(account_id, change, phone_replaced);
    }

    /// On the account's trail only.
    fn touch_quietly(&mut self, account_id: &str, change: String, phone_replaced: bool) {
        self.touched.push(Touched {
            account_id: account_id.to_owned(),
            change,
            phone_replaced,
        });
    }
}

/// After a committed import (`actor`: the staff member of the back office,
/// none for the command line): each existing account it changed has the
/// change on its own trail, and an activated parent whose phone the file
/// replaced is told at their confirmed address, in their language — the
/// phone is how the account is recovered by SMS, and the parent is the one
/// who knows whether the number is theirs. Failures are logged.
pub async fn tell_the_accounts(
    app: &crate::app::Clef,
    report: &ImportReport,
    establishment: &str,
    uai: &Uai,
    actor: Option<&str>,
) {
    if report.dry_run {
        return;
    }
    let now = app.now();
    let details: Vec<String> = report
        .touched
        .iter()
        .map(|t| format!("import {uai}: {}", t.change))
        .collect();
    let entries = report
        .touched
        .iter()
        .zip(&details)
        .map(|(touched, detail)| {
            let entry = audit::Entry::new(audit::Event::StaffAction, audit::Outcome::Ok)
                .account(&touched.account_id)
                .detail(detail);
            match actor {
                Some(actor) => entry.actor(actor),
                None => entry,
            }
        })
        .collect();
    audit::record_all(&app.db, entries, now).await;
    for touched in report.touched.iter().filter(|t| t.phone_replaced) {
        if let Err(e) = tell_of_new_phone(app, &touched.account_id, establishment).await {
            tracing::error!(account = %touched.account_id, error = %e, "new phone notice not sent");
        }
    }
}

async fn tell_of_new_phone(
    app: &crate::app::Clef,
    account_id: &str,
    establishment: &str,
) -> anyhow::Result<()> {
    let Some(account) = crate::accounts::store::account_by_id(&app.db, account_id).await? else {
        return Ok(());
    };
    let (Some(email), Some(_), Some(phone)) = (
        account.email.as_deref(),
        account.email_verified_at,
        account.phone.as_deref(),
    ) else {
        return Ok(());
    };
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let ending: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    let context = minijinja::context! {
        name => format!("{} {}", account.given_name, account.family_name),
        identifier => &account.identifier,
        establishment, ending,
    };
    let locale = crate::accounts::store::locale_of(&app.db, account_id)
        .await?
        .unwrap_or_default();
    let notice = locale.sync_scope(|| {
        Mail::render(
            EmailAddress::parse(email)?,
            Subject {
                french: "Nouveau numéro de téléphone sur votre compte",
                english: "New phone number on your account",
            },
            "phone_change_notice",
            context,
        )
    })?;
    // `send` logs and counts a failure.
    let _ = app.mailer.send(notice).await;
    Ok(())
}

fn seal(
    cipher: &LetterCipher,
    account_id: &str,
    password: &SecretString,
) -> anyhow::Result<String> {
    cipher.encrypt(account_id, password)
}

#[derive(Clone)]
enum StudentRef {
    Existing(String),
    New(usize),
}

/// An account the file makes. Its cells are read from the file's row when
/// they are written: a whole académie's file makes hundreds of thousands.
struct NewProvisional<'a> {
    id: uuid::Uuid,
    of: Newcomer<'a>,
}

enum Newcomer<'a> {
    Student(&'a PupilRow),
    Guardian(&'a GuardianRow),
}

impl<'a> NewProvisional<'a> {
    const COLUMNS: [&'static str; 16] = [
        "id",
        "identifier",
        "kind",
        "state",
        "given_name",
        "family_name",
        "birthdate",
        "email",
        "phone",
        "establishment_id",
        "class_name",
        "student_ref",
        "letter_date",
        "provisional_password",
        "created_at",
        "updated_at",
    ];

    fn new(of: Newcomer<'a>) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            of,
        }
    }

    /// What its identifier is made of (`identifiers::assign`).
    fn base(&self) -> String {
        let (given_name, family_name) = match self.of {
            Newcomer::Student(row) => (&row.given_name, &row.family_name),
            Newcomer::Guardian(row) => (&row.given_name, &row.family_name),
        };
        identifiers::base(given_name.as_str(), family_name.as_str())
    }

    /// Its row of the accounts table, in [`Self::COLUMNS`]' order.
    fn cells(
        &self,
        id: String,
        identifier: &str,
        establishment_id: &str,
        sealed_password: String,
        now: i64,
    ) -> Vec<Cell> {
        let none = || None::<String>;
        let (kind, given_name, family_name, birthdate, email, phone, school, class, number) =
            match self.of {
                Newcomer::Student(row) => (
                    "student",
                    &row.given_name,
                    &row.family_name,
                    Some(row.birthdate.iso()),
                    none(),
                    none(),
                    Some(establishment_id.to_owned()),
                    Some(row.class.to_string()),
                    Some(row.student_ref.as_str().to_owned()),
                ),
                Newcomer::Guardian(row) => (
                    "guardian",
                    &row.given_name,
                    &row.family_name,
                    none(),
                    row.email.as_ref().map(ToString::to_string),
                    row.phone.as_ref().map(|phone| phone.as_str().to_owned()),
                    none(),
                    none(),
                    none(),
                ),
            };
        vec![
            Cell::from(id),
            Cell::from(identifier),
            Cell::from(kind),
            Cell::from("provisional"),
            Cell::from(given_name.to_string()),
            Cell::from(family_name.to_string()),
            Cell::from(birthdate),
            Cell::from(email),
            Cell::from(phone),
            Cell::from(school),
            Cell::from(class),
            Cell::from(number),
            // Its letter is dated when first printed (`letters::Dating::issued`).
            Cell::Int(None),
            Cell::from(sealed_password),
            Cell::from(now),
            Cell::from(now),
        ]
    }
}

type Tx = sqlx::Transaction<'static, Any>;

/// The school's pupils, by the key of their number (`StudentNumber::key`).
async fn existing_students(
    tx: &mut Tx,
    establishment_id: &str,
) -> Result<HashMap<String, ExistingStudent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, student_ref, state, class_name, given_name, family_name, birthdate FROM accounts \
         WHERE establishment_id = $1 AND student_ref IS NOT NULL",
    )
    .bind(establishment_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let number: String = row.try_get("student_ref")?;
            Ok((
                StudentNumber::key_of(&number),
                ExistingStudent {
                    id: row.try_get("id")?,
                    closed: row.try_get::<String, _>("state")? == "closed",
                    class: row
                        .try_get::<Option<String>, _>("class_name")?
                        .unwrap_or_default(),
                    given_name: row.try_get("given_name")?,
                    family_name: row.try_get("family_name")?,
                    birthdate: row.try_get("birthdate")?,
                },
            ))
        })
        .collect()
}

/// The guardians of the school's pupils, by pupil, each with the names of
/// the accounts grouped into it (through every grouping since: an account
/// grouped into one later grouped into another answers to both).
async fn existing_guardians(
    tx: &mut Tx,
    establishment_id: &str,
) -> Result<HashMap<String, Vec<ExistingGuardian>>, sqlx::Error> {
    let mut grouped: HashMap<String, Vec<FoldedName>> = HashMap::new();
    for row in sqlx::query(
        "WITH RECURSIVE grouped (root, id) AS ( \
             SELECT DISTINCT g.guardian_id, g.guardian_id FROM guardianships g \
             JOIN accounts s ON s.id = g.student_id \
             WHERE s.establishment_id = $1 AND s.student_ref IS NOT NULL \
           UNION \
             SELECT grouped.root, a.id FROM grouped JOIN accounts a ON a.merged_into = grouped.id \
         ) \
         SELECT grouped.root, a.given_name, a.family_name FROM grouped \
         JOIN accounts a ON a.id = grouped.id WHERE grouped.id <> grouped.root",
    )
    .bind(establishment_id)
    .fetch_all(&mut **tx)
    .await?
    {
        grouped
            .entry(row.try_get("root")?)
            .or_default()
            .push(FoldedName::of(
                row.try_get("given_name")?,
                row.try_get("family_name")?,
            ));
    }
    let rows = sqlx::query(
        "SELECT g.student_id, g.rank, a.id, a.given_name, a.family_name, a.email, a.phone, a.state, a.activated_at, \
         CASE WHEN EXISTS (SELECT 1 FROM guardianships o JOIN accounts os ON os.id = o.student_id \
           WHERE o.guardian_id = a.id AND os.establishment_id <> $1 AND os.state <> 'closed') \
           THEN 1 ELSE 0 END AS shared \
         FROM guardianships g JOIN accounts a ON a.id = g.guardian_id JOIN accounts s ON s.id = g.student_id \
         WHERE s.establishment_id = $1 AND s.student_ref IS NOT NULL \
         AND (a.state <> 'closed' OR a.closed_by_school_at IS NOT NULL)",
    )
    .bind(establishment_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_student: HashMap<String, Vec<ExistingGuardian>> = HashMap::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let student_id: String = row.try_get("student_id")?;
        let rank: i64 = row.try_get("rank")?;
        let state: String = row.try_get("state")?;
        let activated_at: Option<i64> = row.try_get("activated_at")?;
        let given_name: String = row.try_get("given_name")?;
        let family_name: String = row.try_get("family_name")?;
        let guardian = ExistingGuardian {
            grouped: grouped
                .get(&id)
                .map(|names| names.to_vec())
                .unwrap_or_default(),
            id,
            student_id: student_id.clone(),
            rank: rank as u8,
            name: FoldedName::of(&given_name, &family_name),
            given_name,
            family_name,
            email: row.try_get("email")?,
            // As the file's are read: one stored before numbers were kept
            // in E.164 (`0612345678`) is the same number, not a change.
            phone: row
                .try_get::<Option<String>, _>("phone")?
                .map(|stored| Phone::as_stored(&stored)),
            unused: state == "provisional" && activated_at.is_none(),
            closed: state == "closed",
            shared: row.try_get::<i64, _>("shared")? != 0,
        };
        by_student.entry(student_id).or_default().push(guardian);
    }
    Ok(by_student)
}

/// Bound parameters per multi-row INSERT. Far below SQLite's and PostgreSQL's
/// limits: measured (benches/provisioning.rs), statements of a few hundred
/// parameters import ten times faster than statements of tens of thousands.
pub(super) const CHUNK_PARAMS: usize = 600;

async fn insert_rows(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Cell>>,
) -> Result<(), sqlx::Error> {
    let per_chunk = (CHUNK_PARAMS / columns.len()).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Cell>> = rows.by_ref().take(per_chunk).collect();
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for cell in chunk.into_iter().flatten() {
            query = match cell {
                Cell::Text(v) => query.bind(v),
                Cell::Int(v) => query.bind(v),
            };
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
