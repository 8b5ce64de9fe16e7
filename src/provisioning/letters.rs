//! Notification letters (SPEC §2, seeds' « courrier de notification »): one A4
//! page per provisional account, as PDF, or CSV for mail merges.

use std::borrow::Cow;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};
use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};
use qrcode::{Color, QrCode};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::Row;

use super::provisional::LetterCipher;
use crate::accounts::devices::DeviceKey;
use crate::accounts::store::establishment_by_uai;
use crate::domain::Uai;
use crate::domain::typography::{NARROW_NO_BREAK_SPACE, NO_BREAK_SPACE, french_text};
use crate::storage::Db;

/// Which letters to print.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub class: Option<String>,
    /// An account id or identifier.
    pub account: Option<String>,
}

/// Everything one letter shows.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub account_id: String,
    pub identifier: String,
    #[serde(skip)]
    pub password: String,
    /// `student` or `guardian`.
    pub kind: String,
    pub recipient: String,
    pub rank: Option<i64>,
    pub student_given_name: String,
    pub student_family_name: String,
    pub class: String,
    pub establishment: String,
    /// Its street address and town on one line, as the operator set them
    /// (`clef establishment update`; `Letterhead::postal_address`); empty
    /// when unset.
    pub establishment_address: String,
    /// How families reach the school when they are stuck (« secretariat@…,
    /// 03 20 … »), as the academy set it; empty when unset.
    pub establishment_contact: String,
    pub portal_url: String,
    pub activation_url: String,
    /// The day it was printed (« 28/11/2026 »), in the académie's time zone.
    pub letter_date: String,
    /// Its last day (« 28/02/2027 »).
    pub deadline: String,
    /// How long a letter lasts (`letter_validity_months`), as it tells.
    #[serde(skip)]
    pub validity_months: u8,
}

/// `select` with the server's own cipher, issuer and letter validity: what
/// the back office prints and `clef letters` writes.
pub async fn select_as_configured(
    app: &crate::app::Clef,
    uai: &Uai,
    selection: &Selection,
) -> anyhow::Result<Vec<Letter>> {
    select(
        &app.db,
        &app.letters,
        &app.devices,
        app.config.issuer_str(),
        uai,
        selection,
        &Dating {
            validity_months: app.config.letter_validity_months,
            zone: app.config.zone(),
            issued: app.now(),
        },
    )
    .await
}

/// How letters are dated: how long they last (`letter_validity_months`),
/// the académie's time zone (`time_zone`) their days are counted in, and
/// now, the date of a letter printed for the first time.
pub struct Dating {
    pub validity_months: u8,
    pub zone: TimeZone,
    /// A letter is issued when it is first printed (PDF or CSV): its three
    /// months start then, not at the import, which may come weeks before
    /// the rentrée. Printed again, it keeps that date.
    pub issued: i64,
}

/// The letters of an establishment's provisional accounts, by class, pupil,
/// then the pupil's own letter before the guardians' (rank order).
pub async fn select(
    db: &Db,
    cipher: &LetterCipher,
    devices: &DeviceKey,
    issuer: &str,
    uai: &Uai,
    selection: &Selection,
    dating: &Dating,
) -> anyhow::Result<Vec<Letter>> {
    let (zone, months) = (&dating.zone, i32::from(dating.validity_months));
    let establishment = establishment_by_uai(db, uai)
        .await?
        .ok_or_else(|| anyhow::anyhow!("aucun établissement n'a l'UAI {uai}"))?;
    let head = crate::accounts::store::letterhead(db, &establishment.id).await?;
    let portal_url = establishment
        .portal_url
        .clone()
        .unwrap_or_else(|| format!("{issuer}/login"));
    let rows = selected(db, &establishment.id, selection).await?;
    issue(db, &rows, dating.issued).await?;
    let mut letters = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let identifier: String = row.try_get("identifier")?;
        let class: Option<String> = row.try_get("s_class")?;
        let sealed: String = row.try_get("provisional_password")?;
        let password = cipher.decrypt(&id, &sealed)?;
        let letter_date: Option<i64> = row.try_get("letter_date")?;
        let letter_date = letter_date.unwrap_or(dating.issued);
        let rank: i64 = row.try_get("rank")?;
        let kind: String = row.try_get("kind")?;
        let given: String = row.try_get("given_name")?;
        let family: String = row.try_get("family_name")?;
        letters.push(Letter {
            activation_url: activation_url(
                issuer,
                &identifier,
                &devices.letter_proof(&identifier, &sealed),
            ),
            account_id: id,
            identifier,
            password: password.expose_secret().to_owned(),
            recipient: format!("{given} {family}"),
            rank: (kind == "guardian").then_some(rank),
            kind,
            student_given_name: row.try_get("s_given")?,
            student_family_name: row.try_get("s_family")?,
            class: class.unwrap_or_default(),
            establishment: establishment.name.clone(),
            establishment_address: head.postal_address(),
            establishment_contact: head.contact.clone().unwrap_or_default(),
            portal_url: portal_url.clone(),
            letter_date: french_date(letter_date, zone),
            deadline: french_date(add_months(letter_date, months, zone), zone),
            validity_months: dating.validity_months,
        });
    }
    Ok(letters)
}

/// How many letters [`select`] would give, read without a password.
pub async fn count(
    db: &Db,
    establishment_id: &str,
    selection: &Selection,
) -> anyhow::Result<usize> {
    Ok(selected(db, establishment_id, selection).await?.len())
}

/// Why a selection gives no letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nothing {
    /// No pupil of the establishment is in the class asked for.
    UnknownClass,
    /// No account of the establishment (a pupil or a pupil's parent) has
    /// that identifier.
    UnknownAccount,
    /// The establishment has no pupil: its file was never imported, or its
    /// letters expired unused (their accounts are gone).
    NoPupils,
    /// Every account of the selection is activated.
    AllActivated,
    /// None waits for its letter: activated, or closed (its letter expired,
    /// or the school closed it).
    NoneWaiting,
}

impl Nothing {
    /// The reason, in French (the pages translate it).
    pub fn french(self) -> &'static str {
        match self {
            Self::UnknownClass => {
                "Aucun courrier : aucun élève de l'établissement n'est dans cette classe."
            }
            Self::UnknownAccount => {
                "Aucun courrier : aucun compte de l'établissement n'a cet identifiant."
            }
            Self::NoPupils => {
                "Aucun courrier : l'établissement n'a aucun élève (fichier des élèves pas encore importé, ou courriers expirés sans avoir servi). Importez le fichier des élèves."
            }
            Self::AllActivated => "Aucun courrier à imprimer : ces comptes sont tous activés.",
            Self::NoneWaiting => {
                "Aucun courrier à imprimer : aucun de ces comptes n'attend son activation (ils sont activés, ou fermés à l'expiration de leur courrier ou par l'établissement)."
            }
        }
    }

    /// Whether the selection names what the establishment does not have
    /// (rather than accounts with nothing to print).
    pub fn unknown(self) -> bool {
        matches!(self, Self::UnknownClass | Self::UnknownAccount)
    }
}

/// The class of `classes` (as the pupils' file wrote them) that `typed`
/// names whatever its case and spaces (« 6a » for « 6 A »), when one alone
/// does; else `typed`, as typed.
pub fn class_as_filed(classes: &[String], typed: String) -> String {
    let folded = |class: &str| -> String {
        class
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = folded(&typed);
    let mut matching = classes.iter().filter(|class| folded(class) == wanted);
    match (matching.next(), matching.next()) {
        (Some(class), None) => class.clone(),
        _ => typed,
    }
}

/// Why `selection` names no letter (for a selection [`count`] found empty).
pub async fn why_none(
    db: &Db,
    establishment_id: &str,
    selection: &Selection,
) -> Result<Nothing, sqlx::Error> {
    if let Some(class) = &selection.class {
        let known: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM accounts WHERE establishment_id = $1 AND kind = 'student' AND class_name = $2 LIMIT 1",
        )
        .bind(establishment_id)
        .bind(class)
        .fetch_optional(db)
        .await?;
        if known.is_none() {
            return Ok(Nothing::UnknownClass);
        }
    }
    if let Some(account) = &selection.account {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT a.state FROM accounts a WHERE (a.id = $2 OR a.identifier = $2) AND (a.establishment_id = $1 \
             OR EXISTS (SELECT 1 FROM guardianships g JOIN accounts s ON s.id = g.student_id \
                        WHERE g.guardian_id = a.id AND s.establishment_id = $1)) LIMIT 1",
        )
        .bind(establishment_id)
        .bind(account)
        .fetch_optional(db)
        .await?;
        return Ok(match state.as_deref() {
            None => Nothing::UnknownAccount,
            Some("active") => Nothing::AllActivated,
            Some(_) => Nothing::NoneWaiting,
        });
    }
    // The pupils of the selection, by state (their parents' letters go with theirs).
    let states: Vec<String> = match &selection.class {
        Some(class) => sqlx::query_scalar(
            "SELECT DISTINCT state FROM accounts WHERE establishment_id = $1 AND kind = 'student' AND class_name = $2",
        )
        .bind(establishment_id)
        .bind(class)
        .fetch_all(db)
        .await?,
        None => sqlx::query_scalar(
            "SELECT DISTINCT state FROM accounts WHERE establishment_id = $1 AND kind = 'student'",
        )
        .bind(establishment_id)
        .fetch_all(db)
        .await?,
    };
    Ok(if states.is_empty() {
        Nothing::NoPupils
    } else if states.iter().all(|state| state == "active") {
        Nothing::AllActivated
    } else {
        Nothing::NoneWaiting
    })
}

/// Dates the letters among `rows` never printed before `issued` (see
/// [`Dating::issued`]). Of two printings at once, the first to write wins.
async fn issue(db: &Db, rows: &[sqlx::any::AnyRow], issued: i64) -> anyhow::Result<()> {
    let mut first = Vec::new();
    for row in rows {
        if row.try_get::<Option<i64>, _>("letter_date")?.is_none() {
            first.push(row.try_get::<String, _>("id")?);
        }
    }
    for ids in first.chunks(500) {
        let list = (2..ids.len() + 2)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE accounts SET letter_date = $1 WHERE letter_date IS NULL AND id IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(issued);
        for id in ids {
            query = query.bind(id);
        }
        query.execute(db).await?;
    }
    Ok(())
}

/// The rows of the letters `selection` names, in print order: one per
/// account (a parent's account holding several children, grouped then reset
/// by the school, is printed once, with the first), each with its sealed
/// password.
async fn selected(
    db: &Db,
    establishment_id: &str,
    selection: &Selection,
) -> anyhow::Result<Vec<sqlx::any::AnyRow>> {
    let rows = sqlx::query(
        "SELECT a.id, a.identifier, a.kind, a.given_name, a.family_name, a.letter_date, a.provisional_password, \
                0 AS rank, a.given_name AS s_given, a.family_name AS s_family, a.class_name AS s_class \
         FROM accounts a \
         WHERE a.establishment_id = $1 AND a.kind = 'student' AND a.state = 'provisional' \
         UNION ALL \
         SELECT a.id, a.identifier, a.kind, a.given_name, a.family_name, a.letter_date, a.provisional_password, \
                g.rank AS rank, s.given_name AS s_given, s.family_name AS s_family, s.class_name AS s_class \
         FROM accounts a JOIN guardianships g ON g.guardian_id = a.id JOIN accounts s ON s.id = g.student_id \
         WHERE s.establishment_id = $1 AND s.state <> 'closed' AND a.kind = 'guardian' AND a.state = 'provisional' \
         ORDER BY identifier",
    )
    .bind(establishment_id)
    .fetch_all(db)
    .await?;
    let mut rows = rows
        .into_iter()
        .map(|row| {
            let key = PrintOrder::of(&row)?;
            Ok((key, row))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    rows.sort_by(|(a, _), (b, _)| a.cmp(b));
    let mut printed = std::collections::HashSet::new();
    let mut kept = Vec::new();
    for (_, row) in rows {
        let id: String = row.try_get("id")?;
        if printed.contains(&id) {
            continue;
        }
        let identifier: String = row.try_get("identifier")?;
        let class: Option<String> = row.try_get("s_class")?;
        if selection
            .class
            .as_deref()
            .is_some_and(|c| c != class.as_deref().unwrap_or_default())
        {
            continue;
        }
        if selection
            .account
            .as_deref()
            .is_some_and(|a| a != id && a != identifier)
        {
            continue;
        }
        if row
            .try_get::<Option<String>, _>("provisional_password")?
            .is_none()
        {
            continue;
        }
        printed.insert(id);
        kept.push(row);
    }
    Ok(kept)
}

/// Where a letter goes in the pile: by class, pupil, then the pupil's own
/// letter before the guardians'. Names and classes are compared as a
/// secretary files them, not by their bytes: « Çelik » with the C, « émile »
/// with « Emile », and « 6B » before « 10A » (numbers by their value).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct PrintOrder {
    class: Vec<Filed>,
    family: Vec<Filed>,
    given: Vec<Filed>,
    rank: i64,
    /// The exact spellings, then the identifier: one order for any two rows.
    exact: (String, String, String),
    identifier: String,
}

/// A run of letters (accents and case folded) or a number, by its value.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Filed {
    Number(u64),
    Text(String),
}

impl PrintOrder {
    fn of(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let class: Option<String> = row.try_get("s_class")?;
        let family: String = row.try_get("s_family")?;
        let given: String = row.try_get("s_given")?;
        let class = class.unwrap_or_default();
        Ok(Self {
            class: filed(&class),
            family: filed(&family),
            given: filed(&given),
            rank: row.try_get("rank")?,
            exact: (class, family, given),
            identifier: row.try_get("identifier")?,
        })
    }
}

/// `text` as filed: folded to lower-case ASCII, split into runs of digits
/// (compared as numbers: « 06 » files with « 6 ») and of the rest.
pub(crate) fn filed(text: &str) -> Vec<Filed> {
    let folded = deunicode::deunicode(text).to_lowercase();
    let mut runs = Vec::new();
    let mut rest = folded.as_str();
    while let Some(first) = rest.chars().next() {
        let digits = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, after) = rest.split_at(end);
        runs.push(if digits {
            let value = run.trim_start_matches('0');
            let number = if value.is_empty() {
                Ok(0)
            } else {
                value.parse()
            };
            Filed::Number(number.unwrap_or(u64::MAX))
        } else {
            Filed::Text(run.to_owned())
        });
        rest = after;
    }
    runs
}

/// The activation page with the identifier prefilled (never the password),
/// and the letter's device proof (`DeviceKey::letter_proof`).
pub fn activation_url(issuer: &str, identifier: &str, proof: &str) -> String {
    format!("{issuer}/activation?identifiant={identifier}&appareil={proof}")
}

/// `unix` in `zone`.
fn zoned(unix: i64, zone: &TimeZone) -> Zoned {
    Timestamp::from_second(unix)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(zone.clone())
}

/// `unix` plus (or minus) calendar months in `zone`, the day clamped to the
/// month's end (31/11 → 30/11).
pub fn add_months(unix: i64, months: i32, zone: &TimeZone) -> i64 {
    zoned(unix, zone)
        .checked_add(Span::new().months(months))
        .map_or(unix, |at| at.timestamp().as_second())
}

/// When a letter issued at `letter_date` stops working: at the end of the
/// day it prints as its deadline (« jusqu'au 28/02/2027 »), in the
/// académie's time zone (`time_zone`: midnight in Paris, or in Cayenne).
pub fn letter_deadline(letter_date: i64, validity_months: u8, zone: &TimeZone) -> i64 {
    let last_day = add_months(letter_date, i32::from(validity_months), zone);
    zoned(start_of_day(last_day, zone), zone)
        .checked_add(Span::new().days(1))
        .map_or(last_day, |at| at.timestamp().as_second())
}

/// Midnight, in `zone`, of the day of `unix`.
pub fn start_of_day(unix: i64, zone: &TimeZone) -> i64 {
    zoned(unix, zone)
        .start_of_day()
        .map_or(unix, |at| at.timestamp().as_second())
}

/// The day of `unix` in `zone`, as French letters write it.
pub fn french_date(unix: i64, zone: &TimeZone) -> String {
    date_in(crate::domain::Locale::Fr, unix, zone)
}

/// The day of `unix` in `zone` as `locale` writes it.
pub fn date_in(locale: crate::domain::Locale, unix: i64, zone: &TimeZone) -> String {
    let date = zoned(unix, zone).date();
    locale.date(
        i32::from(date.year()),
        date.month().unsigned_abs(),
        date.day().unsigned_abs(),
    )
}

/// A cell that a spreadsheet shows as text rather than running it as a formula
/// (OWASP, « CSV Injection »): a cell starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'`.
pub fn spreadsheet_text(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// CSV for mail merges: who the letter is for, identifier, provisional password.
/// Secretaries open it in a spreadsheet, so every cell goes through
/// [`spreadsheet_text`].
pub fn csv(letters: &[Letter]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    let mut write = |cells: [&str; 10]| {
        writer.write_record(cells.map(spreadsheet_text).iter().map(|c| c.as_bytes()))
    };
    write([
        "identifiant",
        "mot_de_passe_provisoire",
        "destinataire",
        "type",
        "eleve_prenom",
        "eleve_nom",
        "classe",
        "date_courrier",
        "date_limite",
        "adresse_activation",
    ])?;
    for l in letters {
        let kind = if l.kind == "guardian" {
            format!("responsable {}", l.rank.unwrap_or(1))
        } else {
            "élève".to_owned()
        };
        write([
            l.identifier.as_str(),
            l.password.as_str(),
            l.recipient.as_str(),
            kind.as_str(),
            l.student_given_name.as_str(),
            l.student_family_name.as_str(),
            l.class.as_str(),
            &l.letter_date,
            &l.deadline,
            l.activation_url.as_str(),
        ])?;
    }
    Ok(writer.into_inner()?)
}

const PAGE_WIDTH: f32 = 210.0;
const PAGE_HEIGHT: f32 = 297.0;
const MARGIN: f32 = 20.0;

/// Whether the builtin fonts print `content` as written: they hold
/// Windows-1252 only (French's accents, « Œuvray-Müller »), and print `?`
/// for anything else. Windows-1252 has no narrow no-break space: the
/// no-break space stands for it.
fn fits_builtin(content: &str) -> bool {
    content.chars().all(|c| {
        let mut buffer = [0u8; 4];
        c == NARROW_NO_BREAK_SPACE
            || !encoding_rs::WINDOWS_1252
                .encode(c.encode_utf8(&mut buffer))
                .2
    })
}

/// Clef Sans: Liberation Sans (metric-compatible with Helvetica, SIL Open
/// Font License) cut down to the Latin, Greek and Cyrillic alphabets, for
/// the lines the builtin fonts cannot print: « Łukasz Wiśniewski »,
/// « Nguyễn Thị », « Şahin », « Дарья » print as written. Embedded in a
/// document only when one of its lines needs it.
const FACES: [(BuiltinFont, &str, &[u8]); 3] = [
    (
        BuiltinFont::Helvetica,
        "ClefSansRegular",
        include_bytes!("../../templates/fonts/ClefSans-Regular.ttf"),
    ),
    (
        BuiltinFont::HelveticaBold,
        "ClefSansBold",
        include_bytes!("../../templates/fonts/ClefSans-Bold.ttf"),
    ),
    (
        BuiltinFont::HelveticaOblique,
        "ClefSansItalic",
        include_bytes!("../../templates/fonts/ClefSans-Italic.ttf"),
    ),
];

/// Clef Sans's face standing for `font`, parsed once: its name in the
/// document's resources and its glyphs.
fn face(font: BuiltinFont) -> Option<(&'static str, &'static printpdf::ParsedFont)> {
    static PARSED: [std::sync::OnceLock<Option<printpdf::ParsedFont>>; 3] =
        [const { std::sync::OnceLock::new() }; 3];
    let index = FACES.iter().position(|(builtin, ..)| *builtin == font)?;
    let (_, name, bytes) = FACES[index];
    let parsed = PARSED[index]
        .get_or_init(|| printpdf::ParsedFont::from_bytes(bytes, 0, &mut Vec::new()))
        .as_ref()?;
    Some((name, parsed))
}

/// How a line prints: in the builtin `font` when it holds every character,
/// else in Clef Sans's face for it; a character neither has (a Chinese or
/// Arabic name) with the nearest Latin letters (deunicode: « 王芳 » as
/// « Wang Fang »).
struct Shown {
    font: PdfFontHandle,
    metrics: Option<&'static printpdf::ParsedFont>,
    content: String,
}

fn shown(font: BuiltinFont, content: &str) -> Shown {
    let nearest = |c: char| deunicode::deunicode_char(c).unwrap_or("?").to_owned();
    match face(font).filter(|_| !fits_builtin(content)) {
        None => Shown {
            font: PdfFontHandle::Builtin(font),
            metrics: font_metrics(font),
            content: content
                .chars()
                .map(|c| match c {
                    NARROW_NO_BREAK_SPACE => NO_BREAK_SPACE.to_string(),
                    c if fits_builtin(c.encode_utf8(&mut [0; 4])) => c.to_string(),
                    c => nearest(c),
                })
                .collect(),
        },
        Some((name, parsed)) => Shown {
            font: PdfFontHandle::External(printpdf::FontId(name.to_owned())),
            metrics: Some(parsed),
            content: content
                .chars()
                .map(|c| match parsed.lookup_glyph_index(u32::from(c)) {
                    Some(_) => c.to_string(),
                    None => nearest(c),
                })
                .collect(),
        },
    }
}

/// The first character of `content` that letters cannot print as written
/// (neither the builtin fonts nor Clef Sans have it: an emoji, a Chinese
/// character), if any: what an operator types for them is held to it.
pub fn unprintable(content: &str) -> Option<char> {
    use BuiltinFont::{Helvetica, HelveticaBold};
    content.chars().find(|&c| {
        !c.is_whitespace()
            && !fits_builtin(c.encode_utf8(&mut [0; 4]))
            && [Helvetica, HelveticaBold].iter().any(|&font| {
                face(font)
                    .is_none_or(|(_, parsed)| parsed.lookup_glyph_index(u32::from(c)).is_none())
            })
    })
}

fn text(ops: &mut Vec<Op>, font: BuiltinFont, size: f32, x: f32, y: f32, content: &str) {
    let shown = shown(font, &french_text(content));
    ops.extend([
        Op::StartTextSection,
        Op::SetFont {
            font: shown.font,
            size: Pt(size),
        },
        Op::SetTextCursor {
            pos: Point::new(Mm(x), Mm(y)),
        },
        Op::ShowText {
            items: vec![TextItem::Text(shown.content)],
        },
        Op::EndTextSection,
    ]);
}

/// The advance widths of a builtin font, from printpdf's copy of it
/// (metric-compatible with the PDF's standard font), read once.
fn font_metrics(font: BuiltinFont) -> Option<&'static printpdf::ParsedFont> {
    static PARSED: [std::sync::OnceLock<Option<printpdf::ParsedFont>>; 14] =
        [const { std::sync::OnceLock::new() }; 14];
    PARSED
        .get(font.get_num())?
        .get_or_init(|| font.get_parsed_font())
        .as_ref()
}

/// How wide `content` prints in `font` at `size` points, in millimetres
/// (as printed: in the face that prints it, with the letters it has).
fn width(font: BuiltinFont, size: f32, content: &str) -> f32 {
    let shown = shown(font, content);
    let Some(metrics) = shown.metrics else {
        // Unreadable metrics: a generous average, wider than Helvetica's.
        return shown.content.chars().count() as f32 * size * 0.6 * PT;
    };
    let em = f32::from(metrics.units_per_em.max(1));
    let units: f32 = shown
        .content
        .chars()
        .map(|c| {
            metrics
                .lookup_glyph_index(u32::from(c))
                .and_then(|glyph| metrics.get_glyph_width(glyph))
                .map_or(em * 0.6, f32::from)
        })
        .sum();
    units / em * size * PT
}

/// One point, in millimetres.
const PT: f32 = 25.4 / 72.0;

/// Splits a paragraph into lines no wider than `max` millimetres in `font`
/// at `size`, never at a space French typography keeps (« élève de 6 A : »
/// keeps its colon); a word wider than a line (« Lévêque-Saint-Rémy-en-… »)
/// is broken after a hyphen that fits, else where it stops fitting.
fn wrap(paragraph: &str, font: BuiltinFont, size: f32, max: f32) -> Vec<String> {
    let fits = |line: &str| width(font, size, line) <= max;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in french_text(paragraph).split(' ').filter(|w| !w.is_empty()) {
        let joined = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if fits(&joined) || line.is_empty() {
            line = joined;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_owned()));
        }
        while !fits(&line) {
            let chars: Vec<char> = line.chars().collect();
            // The most characters that fit, at least one.
            let fitting = (1..chars.len())
                .take_while(|&n| fits(&chars[..n].iter().collect::<String>()))
                .last()
                .unwrap_or(1);
            let cut = chars[..fitting]
                .iter()
                .rposition(|&c| c == '-')
                .map_or(fitting, |hyphen| hyphen + 1);
            lines.push(chars[..cut].iter().collect());
            line = chars[cut..].iter().collect();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The largest size from `size` down to `smallest` at which `content`
/// fits in `max` millimetres (`smallest` if none does).
fn fitting_size(font: BuiltinFont, size: f32, smallest: f32, content: &str, max: f32) -> f32 {
    let mut size = size;
    while size > smallest && width(font, size, content) > max {
        size -= 0.5;
    }
    size.max(smallest)
}

/// Where a letter's QR code goes (mm from the page's bottom left).
#[derive(Debug, Clone, Copy)]
struct QrPlace {
    x: f32,
    top: f32,
    size: f32,
    /// The lowest mark of the code and of the lines beside it.
    lowest: f32,
}

/// The QR code of `url` at `place`, drawn as a form of its own: one
/// rectangle per run of dark modules in a row, written as the PDF's own
/// operators. As printpdf operations a code held ~45 KB per page until the
/// document was written (a whole school's letters, hundreds of megabytes);
/// as a stream, a few kilobytes.
fn qr_form(url: &str, place: QrPlace) -> anyhow::Result<printpdf::ExternalXObject> {
    use printpdf::DictItem;
    use std::fmt::Write as _;
    let code = QrCode::new(url.as_bytes())?;
    let width = code.width();
    let colors = code.to_colors();
    let pt = |mm: f32| mm / PT;
    let module = place.size / width as f32;
    let mut content = String::from("0 g\n");
    for row in 0..width {
        let mut col = 0;
        while col < width {
            if colors[row * width + col] == Color::Dark {
                let start = col;
                while col < width && colors[row * width + col] == Color::Dark {
                    col += 1;
                }
                let x = place.x + start as f32 * module;
                let y = place.top - (row + 1) as f32 * module;
                let w = (col - start) as f32 * module;
                writeln!(
                    content,
                    "{:.3} {:.3} {:.3} {:.3} re",
                    pt(x),
                    pt(y),
                    pt(w),
                    pt(module)
                )?;
            } else {
                col += 1;
            }
        }
    }
    content.push_str("f\n");
    let name = |n: &str| DictItem::Name(n.as_bytes().to_vec());
    let page = [0.0, 0.0, pt(PAGE_WIDTH), pt(PAGE_HEIGHT)];
    let dict = [
        ("Type".to_owned(), name("XObject")),
        ("Subtype".to_owned(), name("Form")),
        (
            "BBox".to_owned(),
            DictItem::Array(page.into_iter().map(DictItem::Real).collect()),
        ),
    ];
    Ok(printpdf::ExternalXObject {
        stream: printpdf::ExternalStream {
            dict: dict.into_iter().collect(),
            content: content.into_bytes(),
            compress: true,
        },
        width: None,
        height: None,
        dpi: None,
    })
}

/// Draws the form `id` where it was drawn (its content is in page units).
fn use_form(ops: &mut Vec<Op>, id: printpdf::XObjectId) {
    ops.push(Op::UseXobject {
        id,
        transform: printpdf::XObjectTransform {
            no_auto_scale: true,
            ..Default::default()
        },
    });
}

/// How tightly a letter is set: its blank space (1: as designed) and its
/// QR code's side. A long school name, addressee or pupil's name takes
/// lines; the blank space between the blocks gives them up first, then the
/// QR code shrinks, so that nothing runs into the footer.
const SETTINGS: [(f32, f32); 7] = [
    (1.0, 40.0),
    (0.75, 40.0),
    (0.5, 40.0),
    (0.5, 34.0),
    (0.3, 30.0),
    (0.2, 26.0),
    (0.0, 24.0),
];

/// Where the footer's line stands, and the space kept above it.
const FOOTER: f32 = MARGIN;
const ABOVE_FOOTER: f32 = 6.0;

/// A letter's page, its QR code drawn from the form `qr` (see [`qr_form`]),
/// and where that code goes.
fn page(letter: &Letter, qr: printpdf::XObjectId) -> anyhow::Result<(PdfPage, QrPlace)> {
    let mut laid = None;
    for (space, qr) in SETTINGS {
        let (ops, place) = layout(letter, space, qr);
        let fits = place.lowest >= FOOTER + ABOVE_FOOTER;
        laid = Some((ops, place));
        if fits {
            break;
        }
    }
    let (mut ops, place) = laid.expect("SETTINGS is not empty");
    use_form(&mut ops, qr);
    Ok((PdfPage::new(Mm(PAGE_WIDTH), Mm(PAGE_HEIGHT), ops), place))
}

/// The letter's drawing with `space` times its blank space, and where its
/// QR code of side `qr` (mm) goes: its lowest mark above the footer.
fn layout(letter: &Letter, space: f32, qr: f32) -> (Vec<Op>, QrPlace) {
    use BuiltinFont::{Helvetica, HelveticaBold, HelveticaOblique};
    let mut ops = Vec::new();
    let full = PAGE_WIDTH - 2.0 * MARGIN;
    let date_x = PAGE_WIDTH - MARGIN - 45.0;
    let mut y = PAGE_HEIGHT - MARGIN - 5.0;
    text(
        &mut ops,
        Helvetica,
        11.0,
        date_x,
        y,
        &format!("Le {}", letter.letter_date),
    );
    // Long names wrap within their column (the school's left of the date,
    // the addressee's the right half of the page), as long as names may be.
    for line in wrap(
        &letter.establishment,
        HelveticaBold,
        14.0,
        date_x - 5.0 - MARGIN,
    ) {
        text(&mut ops, HelveticaBold, 14.0, MARGIN, y, &line);
        y -= 7.0;
    }
    // Its address under its name (below the date), on one line when it fits.
    for line in wrap(&letter.establishment_address, Helvetica, 10.0, full) {
        text(&mut ops, Helvetica, 10.0, MARGIN, y + 1.0, &line);
        y -= 5.0;
    }
    y -= 13.0 * space;
    let to = match letter.rank {
        Some(rank) => format!(
            "À l'attention {}, responsable légal\u{a0}{rank}",
            of_name(&letter.recipient)
        ),
        None => format!("À l'attention {}", of_name(&letter.recipient)),
    };
    let half = PAGE_WIDTH / 2.0;
    for line in wrap(&to, Helvetica, 11.0, PAGE_WIDTH - MARGIN - half) {
        text(&mut ops, Helvetica, 11.0, half, y, &line);
        y -= 6.0;
    }
    y -= 14.0 * space;
    text(
        &mut ops,
        HelveticaBold,
        12.0,
        MARGIN,
        y,
        "En ce qui concerne votre compte d'accès aux services en ligne :",
    );
    y -= 6.0 + 4.0 * space;
    let intro = format!(
        "Vous trouverez ci-dessous l'identifiant et le mot de passe de votre compte internet pour accéder aux services \
         proposés par l'établissement {} pour {} {}, élève de {} :",
        letter.establishment, letter.student_given_name, letter.student_family_name, letter.class
    );
    for line in wrap(&intro, Helvetica, 11.0, full) {
        text(&mut ops, Helvetica, 11.0, MARGIN, y, &line);
        y -= 6.0;
    }
    y -= 8.0 * space;
    // The identifier on one line, smaller if it must be: it is typed as printed.
    let value_x = MARGIN + 50.0;
    let value_width = PAGE_WIDTH - MARGIN - value_x;
    text(&mut ops, Helvetica, 12.0, MARGIN + 10.0, y, "Identifiant :");
    let size = fitting_size(HelveticaBold, 14.0, 8.0, &letter.identifier, value_width);
    text(
        &mut ops,
        HelveticaBold,
        size,
        value_x,
        y,
        &letter.identifier,
    );
    y -= 9.0;
    text(
        &mut ops,
        Helvetica,
        12.0,
        MARGIN + 10.0,
        y,
        "Mot de passe * :",
    );
    text(&mut ops, HelveticaBold, 14.0, value_x, y, &letter.password);
    y -= 8.0;
    text(
        &mut ops,
        HelveticaOblique,
        10.0,
        MARGIN + 10.0,
        y,
        "* Mot de passe provisoire, à modifier lors de la première connexion.",
    );
    y -= 6.0 + 8.0 * space;
    text(
        &mut ops,
        Helvetica,
        11.0,
        MARGIN,
        y,
        "Pour activer votre compte, connectez-vous à l'adresse :",
    );
    y -= 7.0;
    // The address on one line if it can be, else cut where it stops fitting.
    let url_width = full - 10.0;
    let size = fitting_size(HelveticaBold, 11.0, 8.0, &letter.portal_url, url_width);
    for line in wrap(&letter.portal_url, HelveticaBold, size, url_width) {
        text(&mut ops, HelveticaBold, size, MARGIN + 10.0, y, &line);
        y -= size * PT + 1.5;
    }
    y -= 8.0 * space;
    let deadline = format!(
        "Vous disposez d'un délai de {} mois pour activer votre compte, soit jusqu'au {}. Au-delà, votre compte sera \
         supprimé et vous ne pourrez plus accéder aux services en ligne.",
        letter.validity_months, letter.deadline
    );
    for line in wrap(&deadline, Helvetica, 11.0, full) {
        text(&mut ops, Helvetica, 11.0, MARGIN, y, &line);
        y -= 6.0;
    }

    y -= 10.0 * space;
    // Beside the code, centred on it: what it does, then who to ask when
    // nothing works (the guides: « signalez le problème à l'établissement qui
    // vous a remis la notification »), each line with the space above it.
    let beside = MARGIN + qr + 8.0;
    let mut lines = vec![
        (
            0.0,
            10.0,
            "Ou scannez ce code avec votre téléphone :".to_owned(),
        ),
        (
            6.0,
            10.0,
            "il ouvre la page d'activation, identifiant déjà saisi.".to_owned(),
        ),
    ];
    if !letter.establishment_contact.is_empty() {
        let help = format!(
            "En cas de difficulté, adressez-vous à l'établissement : {}",
            letter.establishment_contact
        );
        let wrapped = wrap(&help, Helvetica, 9.0, PAGE_WIDTH - MARGIN - beside);
        for (n, line) in wrapped.into_iter().enumerate() {
            lines.push((if n == 0 { 8.0 } else { 4.5 }, 9.0, line));
        }
    }
    let span: f32 = lines.iter().map(|(above, _, _)| above).sum();
    let mut line_y = y - qr / 2.0 - 1.0 + span / 2.0;
    for (above, size, line) in &lines {
        line_y -= above;
        text(&mut ops, Helvetica, *size, beside, line_y, line);
    }
    let place = QrPlace {
        x: MARGIN,
        top: y,
        size: qr,
        // A line's descenders reach ~2 mm under it.
        lowest: (y - qr).min(line_y - 2.0),
    };
    text(
        &mut ops,
        HelveticaOblique,
        9.0,
        MARGIN,
        FOOTER,
        "Ce courrier est personnel : conservez-le et ne communiquez votre mot de passe à personne.",
    );
    (ops, place)
}

/// The most letters one PDF holds when the server makes it (the back
/// office): laying a document out holds about 100 KB per letter until it is
/// written, a thousand about 100 MB. A whole lycée prints class by class, or
/// with `clef letters`, which runs on its own.
pub const MOST_IN_A_SERVED_PDF: usize = 1000;

/// One A4 page per letter; the file is dated `printed_at` (a reprint is told
/// from the earlier print by its properties).
pub fn pdf(letters: &[Letter], printed_at: i64) -> anyhow::Result<Vec<u8>> {
    let mut doc = PdfDocument::new("Courriers de notification");
    let mut pages = Vec::with_capacity(letters.len());
    for (n, letter) in letters.iter().enumerate() {
        let id = printpdf::XObjectId(format!("Qr{n}"));
        let (page, place) = page(letter, id.clone())?;
        let form = qr_form(&letter.activation_url, place)?;
        doc.resources
            .xobjects
            .map
            .insert(id, printpdf::XObject::External(form));
        pages.push(page);
    }
    let info = &mut doc.metadata.info;
    // What a print shop's or a reader's « Properties » show: who made it, for whom.
    (info.creator, info.producer) = ("Clef".into(), "Clef (printpdf)".into());
    info.author = letters
        .first()
        .map(|l| l.establishment.clone())
        .unwrap_or_default();
    info.subject = "Identifiants et mots de passe provisoires des comptes".into();
    if let Ok(at) = printpdf::OffsetDateTime::from_unix_timestamp(printed_at) {
        (
            info.creation_date,
            info.modification_date,
            info.metadata_date,
        ) = (at, at, at);
    }
    // Clef Sans's faces are in the resources; only those a line uses are
    // embedded.
    for (font, ..) in FACES {
        if let Some((name, parsed)) = face(font) {
            let font = printpdf::PdfFont::new(parsed.clone());
            doc.resources
                .fonts
                .map
                .insert(printpdf::FontId(name.to_owned()), font);
        }
    }
    let mut warnings = Vec::new();
    Ok(doc
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings))
}

/// « de » before a name, elided as French writes it before a vowel or a
/// mute h: « d'Hélène Lefèvre », « d'Anne Martin », « de Marc Baillet ».
pub fn of_name(name: &str) -> String {
    // As said: « Ελένη » reads « Elene », and takes « d' ».
    let elided = deunicode::deunicode(name)
        .chars()
        .next()
        .is_some_and(|first| {
            let first = first.to_lowercase().next().unwrap_or(first);
            "aàâäeéèêëiîïoôöuùûüyh".contains(first)
        });
    if elided {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_typed_in_another_case_or_spacing_is_the_one_filed() {
        let classes: Vec<String> = ["5 B", "6 A", "2nde 3", "TS1", "ts 1"]
            .map(str::to_owned)
            .into();
        let filed = |typed: &str| class_as_filed(&classes, typed.to_owned());
        assert_eq!(filed("5b"), "5 B");
        assert_eq!(filed("6 a"), "6 A");
        assert_eq!(filed("2NDE3"), "2nde 3");
        assert_eq!(
            filed("ts1"),
            "ts1",
            "two classes read alike: neither is guessed"
        );
        assert_eq!(filed("3 C"), "3 C", "unknown: as typed");
    }

    #[test]
    fn de_is_elided_before_a_vowel_or_a_mute_h() {
        assert_eq!(of_name("Hélène Lefèvre"), "d'Hélène Lefèvre");
        assert_eq!(of_name("Anne Martin"), "d'Anne Martin");
        assert_eq!(of_name("Éric Durand"), "d'Éric Durand");
        assert_eq!(of_name("Marc Baillet"), "de Marc Baillet");
        assert_eq!(of_name("Ελένη Παπαδοπούλου"), "d'Ελένη Παπαδοπούλου");
    }

    #[test]
    fn letters_are_filed_as_a_secretary_files_them() {
        let mut names = vec!["Zola", "Çelik", "émile", "Dupont", "Emile", "Éric"];
        names.sort_by_key(|n| filed(n));
        assert_eq!(names, ["Çelik", "Dupont", "émile", "Emile", "Éric", "Zola"]);
        let mut classes = vec!["10A", "6B", "6A", "5 C", "6a2", "6a10", "3e", "06A"];
        classes.sort_by_key(|c| filed(c));
        assert_eq!(
            classes,
            ["3e", "5 C", "6A", "06A", "6a2", "6a10", "6B", "10A"]
        );
    }

    fn letter(recipient: &str, establishment: &str) -> Letter {
        Letter {
            account_id: "a".into(),
            identifier: "lukasz.wisniewski".into(),
            password: "abcd2345".into(),
            kind: "guardian".into(),
            recipient: recipient.into(),
            rank: Some(1),
            student_given_name: "Zofia".into(),
            student_family_name: "Wiśniewska".into(),
            class: "6 A".into(),
            establishment: establishment.into(),
            establishment_address: String::new(),
            establishment_contact: String::new(),
            portal_url: "https://ent.example".into(),
            activation_url: "https://clef.example/activation?identifiant=lukasz.wisniewski".into(),
            letter_date: "30/11/2026".into(),
            deadline: "28/02/2027".into(),
            validity_months: 3,
        }
    }

    /// Lines the builtin fonts print as written stay in them; others print
    /// in Clef Sans, as written, and what it lacks with the nearest Latin
    /// letters.
    #[test]
    fn names_print_as_written_in_the_face_that_has_their_letters() {
        use BuiltinFont::{Helvetica, HelveticaBold};
        let builtin = shown(Helvetica, "Bénédicte Œuvray-Müller");
        assert_eq!(builtin.font, PdfFontHandle::Builtin(Helvetica));
        assert_eq!(builtin.content, "Bénédicte Œuvray-Müller");
        for name in [
            "Łukasz Wiśniewski",
            "Nguyễn Thị",
            "Şahin Yılmaz",
            "Дарья Ελένη",
        ] {
            let written = shown(HelveticaBold, name);
            let external = PdfFontHandle::External(printpdf::FontId("ClefSansBold".into()));
            assert_eq!(written.font, external, "{name}");
            assert_eq!(written.content, name);
        }
        assert_eq!(shown(Helvetica, "王芳").content.trim_end(), "Wang Fang");
        // Measured with the face's own widths, like Helvetica's for its letters.
        let (a, b) = (
            width(Helvetica, 11.0, "Lukasz"),
            width(Helvetica, 11.0, "Łukasz"),
        );
        assert!((a - b).abs() < 0.01 && a > 5.0, "{a} {b}");
        let (page, _) = page(&letter("Łukasz Wiśniewski", "Collège Jean Moulin"), qr()).unwrap();
        let drawn: Vec<String> = placed(&page).into_iter().map(|line| line.4).collect();
        assert!(drawn.iter().any(|t| t.contains("Łukasz Wiśniewski")));
        assert!(drawn.iter().all(|t| !t.contains('?')), "{drawn:?}");
    }

    /// A line never starts with the colon that ends the line before, nor
    /// splits a class « 6 A » (the builtin fonts print the no-break space,
    /// Windows-1252's 0xA0).
    #[test]
    fn lines_do_not_break_before_french_punctuation() {
        use BuiltinFont::Helvetica;
        // With breakable spaces, the colon alone would go to the next line.
        let first = format!("{}élève de", "mot ".repeat(19));
        let max = width(Helvetica, 11.0, &first) + 0.5;
        let lines = wrap(&format!("{first} 6 A :"), Helvetica, 11.0, max);
        assert_eq!(lines, [first, "6\u{a0}A\u{a0}:".into()]);
        assert_eq!(
            shown(Helvetica, &french_text("Identifiant : x ; y ?")).content,
            "Identifiant\u{a0}: x\u{a0}; y\u{a0}?"
        );
    }

    /// A name longer than a line breaks after a hyphen, or where it stops
    /// fitting; widths are the font's own (« W » is wider than « i »).
    #[test]
    fn a_word_longer_than_the_line_is_broken() {
        use BuiltinFont::Helvetica;
        let max = width(Helvetica, 11.0, "Lévêque-Saint-Rémy-en-Bouzemont-Saint-") + 0.1;
        let name = "À l'attention de Lévêque-Saint-Rémy-en-Bouzemont-Saint-Genest-et-Isson-Laval";
        assert_eq!(
            wrap(name, Helvetica, 11.0, max),
            [
                "À l'attention de",
                "Lévêque-Saint-Rémy-en-Bouzemont-Saint-",
                "Genest-et-Isson-Laval"
            ]
        );
        let max = width(Helvetica, 11.0, &"x".repeat(40)) + 0.01;
        let lines = wrap(&"x".repeat(99), Helvetica, 11.0, max);
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [40, 40, 19]
        );
        assert!(width(Helvetica, 11.0, "WWWW") > 2.0 * width(Helvetica, 11.0, "iiii"));
        // Helvetica's own widths: 556 thousandths of an em for « a ».
        assert!((width(Helvetica, 10.0, "a") - 5.56 * PT).abs() < 0.01);
    }

    /// Each line drawn: where it starts and its baseline (mm), its font and size.
    fn placed(page: &PdfPage) -> Vec<(f32, f32, BuiltinFont, f32, String)> {
        let (mut x, mut y, mut size, mut font) = (0.0, 0.0, 0.0, BuiltinFont::Helvetica);
        let mut drawn = Vec::new();
        for op in &page.ops {
            match op {
                Op::SetFont {
                    size: Pt(pt),
                    font: f,
                } => {
                    size = *pt;
                    font = match f {
                        PdfFontHandle::Builtin(f) => *f,
                        PdfFontHandle::External(id) => FACES
                            .iter()
                            .find(|(_, name, _)| *name == id.0)
                            .map_or(font, |(builtin, ..)| *builtin),
                    };
                }
                Op::SetTextCursor { pos } => (x, y) = (Mm::from(pos.x).0, Mm::from(pos.y).0),
                Op::ShowText { items } => {
                    for item in items {
                        if let TextItem::Text(t) = item {
                            drawn.push((x, y, font, size, t.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        drawn
    }

    /// The QR code's lowest and highest marks (mm).
    /// The form draws the code's dark modules, and only them, where the
    /// layout put the code (read back from its rectangles).
    #[test]
    fn the_qr_form_draws_the_code_where_it_was_placed() {
        let url = "https://clef.example/activation?identifiant=julie.baillet&appareil=abc";
        let place = QrPlace {
            x: 20.0,
            top: 120.0,
            size: 40.0,
            lowest: 80.0,
        };
        let form = qr_form(url, place).unwrap();
        let content = String::from_utf8(form.stream.content).unwrap();
        let code = QrCode::new(url.as_bytes()).unwrap();
        let (width, colors) = (code.width(), code.to_colors());
        let module = place.size / width as f32 / PT;
        let mut drawn = vec![Color::Light; width * width];
        for line in content.lines().filter(|l| l.ends_with(" re")) {
            let n: Vec<f32> = line
                .split(' ')
                .take(4)
                .map(|v| v.parse().unwrap())
                .collect();
            let col = ((n[0] - place.x / PT) / module).round() as usize;
            let row = ((place.top / PT - n[1]) / module).round() as usize - 1;
            let run = (n[2] / module).round() as usize;
            assert!((n[3] - module).abs() < 0.01);
            for c in col..col + run {
                drawn[row * width + c] = Color::Dark;
            }
        }
        assert!(drawn == colors, "the form draws the code");
        assert!(content.starts_with("0 g\n") && content.ends_with("f\n"));
    }

    fn qr() -> printpdf::XObjectId {
        printpdf::XObjectId("Qr0".into())
    }

    /// Long names stay on the page whatever their letters: no line runs past
    /// the right margin, the school's name stops before the date beside it,
    /// and the longest names the forms take (a school of 200 characters,
    /// names of 100, capitals, the longest identifier) push nothing into the
    /// footer nor under the QR code.
    #[test]
    fn long_names_stay_within_the_page() {
        let long = |word: &str, n: usize| {
            let mut name = word.repeat(n / word.len() + 1);
            name.truncate(n);
            name.trim_end().to_owned()
        };
        let mut worst = letter(
            &format!(
                "{} {}",
                long("MARIE-WILHELMINE ", 100),
                long("DUPONT-LEFÈVRE ", 100)
            ),
            &long("LYCÉE POLYVALENT RÉGIONAL MAXIMILIEN-WOLFGANG ", 200),
        );
        worst.student_given_name = long("WILHELMINE-MAXIMILIENNE ", 100);
        worst.student_family_name = long("WOLFSWINKEL ", 100);
        worst.class = "W".repeat(32);
        worst.identifier = format!("{}.{}99", "w".repeat(24), "w".repeat(24));
        worst.portal_url = format!("https://{}.example.fr/", "w".repeat(120));
        use crate::accounts::Letterhead;
        worst.establishment_address = Letterhead {
            address: Some(long("WOLFGANG-AMADEUS BOULEVARD ", Letterhead::MAX_ADDRESS)),
            city: Some(long("WWWWW SAINT-WOLFGANG ", Letterhead::MAX_CITY)),
            contact: None,
        }
        .postal_address();
        worst.establishment_contact = long("WWW.SECRETARIAT@WOLFGANG ", Letterhead::MAX_CONTACT);
        let (_, loose) = layout(&worst, 1.0, 40.0);
        assert!(
            loose.top - loose.size < FOOTER + ABOVE_FOOTER,
            "set loosely, it would not fit"
        );
        for letter in [
            letter(
                "Marie-Christine Dupont-Lefèvre de la Tour d'Auvergne",
                "Lycée polyvalent régional Jean-Baptiste de La Salle et Saint-Exupéry",
            ),
            worst,
        ] {
            let (page, place) = page(&letter, qr()).unwrap();
            let (qr_bottom, qr_top) = (place.top - place.size, place.top);
            assert!(
                qr_bottom >= FOOTER + ABOVE_FOOTER,
                "the QR code ends at {qr_bottom} mm"
            );
            for (x, y, font, size, line) in placed(&page) {
                let end = x + width(font, size, &line);
                assert!(
                    end <= PAGE_WIDTH - MARGIN + 0.01,
                    "{line:?} ends at {end} mm"
                );
                if size == 14.0 && x == MARGIN {
                    assert!(
                        end < PAGE_WIDTH - MARGIN - 45.0,
                        "{line:?} runs into the date"
                    );
                }
                if y > FOOTER + 0.5 {
                    assert!(
                        y >= FOOTER + ABOVE_FOOTER,
                        "{line:?} at {y} mm, in the footer"
                    );
                }
                let beside = x > MARGIN + 20.0;
                assert!(
                    beside || y > qr_top + 1.0 || y < qr_bottom,
                    "{line:?} at {y} mm, on the QR code ({qr_bottom}–{qr_top})"
                );
            }
        }
    }

    /// A letter works through the whole day it prints as its deadline, in the
    /// académie's time zone, and the expiry job closes it only after that day.
    #[test]
    fn a_letter_works_through_its_printed_last_day() {
        let printed = 1_796_050_800; // 2026-11-30 15:00 UTC
        for (zone, end) in [
            ("Europe/Paris", "2027-02-28T23:00:00Z"),
            ("America/Cayenne", "2027-03-01T03:00:00Z"),
            ("Pacific/Tahiti", "2027-03-01T10:00:00Z"),
            ("UTC", "2027-03-01T00:00:00Z"),
        ] {
            let zone = &TimeZone::get(zone).unwrap();
            let deadline = letter_deadline(printed, 3, zone);
            assert_eq!(french_date(deadline - 1, zone), "28/02/2027", "{zone:?}");
            assert_eq!(
                french_date(add_months(printed, 3, zone), zone),
                "28/02/2027",
                "as printed"
            );
            let end: Timestamp = end.parse().unwrap();
            assert_eq!(deadline, end.as_second(), "{zone:?}");
            let cutoff = |now: i64| add_months(start_of_day(now, zone), -3, zone);
            assert!(
                printed >= cutoff(deadline - 1),
                "not closed on its last day"
            );
            assert!(printed < cutoff(deadline), "closed once it is over");
        }
    }

    /// A letter printed at 00:30 in Paris (23:30 UTC the day before) is dated
    /// by the Paris day.
    #[test]
    fn letters_are_dated_by_the_academie_s_day() {
        let paris = &TimeZone::get("Europe/Paris").unwrap();
        let after_midnight: Timestamp = "2026-11-28T23:30:00Z".parse().unwrap();
        assert_eq!(french_date(after_midnight.as_second(), paris), "29/11/2026");
        assert_eq!(
            french_date(after_midnight.as_second(), &TimeZone::UTC),
            "28/11/2026"
        );
    }

    #[test]
    fn three_months_later_clamps_the_day() {
        let utc = &TimeZone::UTC;
        let nov_30: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        assert_eq!(
            french_date(add_months(nov_30.as_second(), 3, utc), utc),
            "28/02/2027"
        );
        let jan_15: Timestamp = "2027-01-15T10:00:00Z".parse().unwrap();
        assert_eq!(
            french_date(add_months(jan_15.as_second(), 3, utc), utc),
            "15/04/2027"
        );
    }

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_are_quoted() {
        for (cell, shown) in [
            ("=1+1", "'=1+1"),
            ("+33 cmd", "'+33 cmd"),
            ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("Baillet", "Baillet"),
            ("Jean-Pierre", "Jean-Pierre"),
            ("5 B", "5 B"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_text(cell), shown, "{cell:?}");
        }
    }

    #[test]
    fn the_letters_csv_holds_no_formula() {
        let letter = Letter {
            account_id: "a".into(),
            identifier: "cmd.calc".into(),
            password: "ABCD2345".into(),
            kind: "guardian".into(),
            recipient: "=1+1 -cmd|' /C calc'!A0".into(),
            rank: Some(1),
            student_given_name: "+33 cmd".into(),
            student_family_name: "-cmd|' /C calc'!A0".into(),
            class: "@SUM(1+1)".into(),
            establishment: "Collège".into(),
            establishment_address: String::new(),
            establishment_contact: String::new(),
            portal_url: "https://ent.example.fr".into(),
            activation_url: "https://clef.example.fr/activation".into(),
            letter_date: "01/01/1970".into(),
            deadline: "01/04/1970".into(),
            validity_months: 3,
        };
        let bytes = csv(&[letter]).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(&bytes[3..]);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(
            row.iter().collect::<Vec<_>>()[2..7],
            [
                "'=1+1 -cmd|' /C calc'!A0",
                "responsable 1",
                "'+33 cmd",
                "'-cmd|' /C calc'!A0",
                "'@SUM(1+1)"
            ]
        );
    }

    #[test]
    fn paragraphs_wrap_on_words() {
        let max = width(BuiltinFont::Helvetica, 11.0, "un deux") + 0.1;
        assert_eq!(
            wrap("un deux trois quatre", BuiltinFont::Helvetica, 11.0, max),
            vec!["un deux", "trois", "quatre"]
        );
    }
}
