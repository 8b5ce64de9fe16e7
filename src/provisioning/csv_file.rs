//! Reading a school's pupil file (SPEC §3.10) as spreadsheets really export it:
//! UTF-8 with or without BOM, UTF-16, Windows-1252 or Mac Roman, `;` `,` or
//! tab separated, French or English column names, `jj/mm/aaaa` or ISO dates.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::domain::{BirthDate, ClassName, EmailAddress, FieldError, PersonName, Problem, text};

/// One pupil of the file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PupilRow {
    /// Row as the spreadsheet numbers it (the header is row 1), for messages.
    pub line: usize,
    /// The pupil's id in the school's information system.
    pub student_ref: StudentNumber,
    pub family_name: PersonName,
    pub given_name: PersonName,
    pub birthdate: BirthDate,
    pub class: ClassName,
    /// Legal guardians 1 and 2, when the file names them.
    pub guardians: Vec<GuardianRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GuardianRow {
    pub rank: u8,
    pub family_name: PersonName,
    pub given_name: PersonName,
    pub email: Option<EmailAddress>,
    pub phone: Option<Phone>,
}

/// Given and family names compared without case, accents or extra spaces,
/// as a school spells them one year and another.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct FoldedName(String, String);

impl FoldedName {
    pub(super) fn of(given_name: &str, family_name: &str) -> Self {
        let fold = |s: &str| {
            let folded = deunicode::deunicode(s).to_lowercase();
            folded.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        Self(fold(given_name), fold(family_name))
    }
}

/// A phone number for SMS, in E.164 (`+33612345678`) so that one phone has
/// one spelling whatever the export (`06 12 34 56 78`, `+33 (0)6…`,
/// `0033 6…`): the same parent's contact details do not change with the
/// file's format, and the per-phone SMS limit counts one number once.
/// French numbers (ten digits from `0`) get their country code, overseas
/// departments theirs (`0692…` is Réunion's `+262692…`); another number
/// without `+` or `00` cannot be told apart and is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("téléphone", Problem::Invalid);
        let value = text("téléphone", raw, 32)?;
        // `+33 (0)6…`: the trunk `0` written beside the country code.
        let value = value.replacen("(0)", "", 1);
        let digits: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '.' | '-' | '(' | ')' | '/'))
            .collect();
        let (international, body) = match (digits.strip_prefix('+'), digits.strip_prefix("00")) {
            (Some(body), _) | (None, Some(body)) => (true, body),
            (None, None) => (false, digits.as_str()),
        };
        if !body.bytes().all(|b| b.is_ascii_digit()) || body.is_empty() {
            return Err(invalid());
        }
        let e164 = if international {
            match body.strip_prefix("33") {
                // A French number has nine digits after `+33` (`+330612345678`:
                // written with both prefixes).
                Some(national) => match national.strip_prefix('0') {
                    Some(national) if national.len() == 9 => french(national),
                    None if national.len() == 9 => format!("+33{national}"),
                    _ => return Err(invalid()),
                },
                None => format!("+{body}"),
            }
        } else {
            match (body.strip_prefix('0'), body.len()) {
                (Some(national), 10) => french(national),
                // A spreadsheet that took the cell for a number dropped its
                // leading `0` (`612345678`) or its `+` (`33612345678`).
                (None, 9) => french(body),
                (None, 11) if body.starts_with("33") => format!("+{body}"),
                _ => return Err(invalid()),
            }
        };
        if !(8..=15).contains(&(e164.len() - 1)) {
            return Err(invalid());
        }
        Ok(Self(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a stored number can receive an SMS: not a French landline
    /// (`01`–`05`, `09`, or an overseas department's fixed lines), which a
    /// school's « Téléphone » column often holds; any other is taken to.
    pub fn takes_sms(stored: &str) -> bool {
        let e164 = Self::as_stored(stored);
        let mobile = |prefixes: &[&str], rest: &str| prefixes.iter().any(|p| rest.starts_with(p));
        if let Some(rest) = e164.strip_prefix("+33") {
            mobile(&["6", "7"], rest)
        } else if let Some(rest) = e164.strip_prefix("+262") {
            mobile(&["692", "693", "639"], rest)
        } else if let Some(rest) = e164.strip_prefix("+590") {
            mobile(&["690", "691"], rest)
        } else if let Some(rest) = e164.strip_prefix("+594") {
            mobile(&["694"], rest)
        } else if let Some(rest) = e164.strip_prefix("+596") {
            mobile(&["696", "697"], rest)
        } else {
            true
        }
    }

    /// A number as stored, in E.164: one stored before numbers were kept so
    /// (`0612345678`) as it would be read now, else as it is.
    pub fn as_stored(stored: &str) -> String {
        Self::parse(stored).map_or_else(|_| stored.to_owned(), |p| p.0)
    }
}

/// A French number's nine digits after the trunk `0`, in E.164: `+33`, or
/// the overseas department's own code.
fn french(national: &str) -> String {
    let code = match national.get(..3).unwrap_or_default() {
        "262" | "263" | "269" | "639" | "692" | "693" => "262",
        "590" | "690" | "691" => "590",
        "594" | "694" => "594",
        "596" | "696" | "697" => "596",
        _ => "33",
    };
    format!("+{code}{national}")
}

/// A pupil's number in the school's information system: an INE such as
/// `070803070AJ`, or a local number. ASCII letters and digits, with `-`, `_`,
/// `.` or `/` after the first character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StudentNumber(String);

impl StudentNumber {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "identifiant de l'élève";
        let mut value = text(FIELD, raw, Self::MAX)?;
        value.truncate(Self::whole(&value).len());
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
        if !(value.starts_with(|c: char| c.is_ascii_alphanumeric()) && value.chars().all(allowed)) {
            return Err(FieldError::new(FIELD, Problem::Invalid));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A whole number a spreadsheet or a script wrote as a decimal (`123.0`)
    /// without its decimals; any other number as it is.
    fn whole(number: &str) -> &str {
        match number.split_once('.') {
            Some((whole, zeros))
                if !whole.is_empty()
                    && whole.bytes().all(|b| b.is_ascii_digit())
                    && !zeros.is_empty()
                    && zeros.bytes().all(|b| b == b'0') =>
            {
                whole
            }
            _ => number,
        }
    }

    /// What two spellings of one pupil's number share: its letters in upper
    /// case, and a number without the leading zeros a spreadsheet drops
    /// (`00123` taken for the number 123) or a school adds.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    /// [`key`](Self::key) of a number as stored.
    pub fn key_of(number: &str) -> String {
        let number = Self::whole(number);
        if number.bytes().all(|b| b.is_ascii_digit()) {
            let trimmed = number.trim_start_matches('0');
            return if trimmed.is_empty() { "0" } else { trimmed }.to_owned();
        }
        number.to_ascii_uppercase()
    }
}

/// A refused row and why, in French for the secretary reading the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Row as the spreadsheet numbers it (the header is row 1); 0 for the whole file.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "fichier : {}", self.reason)
        } else {
            write!(f, "ligne {} : {}", self.line, self.reason)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    StudentRef,
    FamilyName,
    GivenName,
    Birthdate,
    Class,
    Guardian(u8, GuardianField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GuardianField {
    FamilyName,
    GivenName,
    Email,
    Phone,
}

/// Lower case, accents folded, words split on anything not a letter or digit.
fn words(header: &str) -> Vec<String> {
    // `N°` would fold to `Ndeg`: the degree sign separates words instead.
    let folded = deunicode::deunicode(&header.replace(['°', 'º'], " ")).to_lowercase();
    let mut out = Vec::new();
    let mut current = String::new();
    for c in folded.chars() {
        let boundary = !c.is_ascii_alphanumeric()
            || (c.is_ascii_digit()
                && current
                    .chars()
                    .last()
                    .is_some_and(|p| p.is_ascii_alphabetic()));
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if c.is_ascii_alphanumeric() {
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// How a header is read when another names the same data: the lower first.
/// « Tél. portable » before « Téléphone » before « Tél. domicile » (SMS go
/// to mobiles), « Nom de famille » before « Nom d'usage », « Prénom » or
/// « Prénom 1 » before « Prénom 2 ».
fn preference(header: &str, column: Column) -> u8 {
    let words = words(header);
    let has = |candidates: &[&str]| words.iter().any(|w| candidates.contains(&w.as_str()));
    match column {
        Column::Guardian(_, GuardianField::Phone) => {
            if has(&["portable", "mobile", "gsm", "sms", "cellulaire", "cell"]) {
                0
            } else if has(&[
                "domicile",
                "fixe",
                "professionnel",
                "pro",
                "travail",
                "bureau",
                "home",
                "work",
                "office",
            ]) {
                2
            } else {
                1
            }
        }
        Column::FamilyName | Column::Guardian(_, GuardianField::FamilyName) => {
            u8::from(has(&["usage", "usuel", "marital", "epouse"]))
        }
        Column::GivenName | Column::Guardian(_, GuardianField::GivenName) => {
            let guardian_at = words
                .iter()
                .position(|w| {
                    matches!(
                        w.as_str(),
                        "responsable" | "resp" | "representant" | "parent" | "rl" | "guardian"
                    )
                })
                .unwrap_or(words.len());
            u8::from(
                words[..guardian_at]
                    .iter()
                    .any(|w| matches!(w.as_str(), "2" | "3" | "4" | "autres")),
            )
        }
        _ => 0,
    }
}

/// The words of a header naming an address, and a phone.
const EMAIL_WORDS: &[&str] = &["email", "mail", "courriel", "mel", "electronique"];
const PHONE_WORDS: &[&str] = &[
    "phone",
    "tel",
    "telephone",
    "portable",
    "mobile",
    "sms",
    "gsm",
    "cellulaire",
];

/// Recognises a header by its words: `guardian1_email`, `Courriel responsable 1`,
/// `Nom resp. légal 2`, `Date de naissance`, `Division`, `N° élève`…
fn column(header: &str) -> Option<Column> {
    let words = words(header);
    let has = |candidates: &[&str]| words.iter().any(|w| candidates.contains(&w.as_str()));
    // Not « légal » alone: « Nom légal » is the pupil's; « Nom resp. légal 2 »
    // and « représentant légal » have their own word.
    let guardian_words = [
        "guardian",
        "responsable",
        "resp",
        "representant",
        "parent",
        "rl",
    ];
    // Columns of other data that share a word with one read: « Nom du père »,
    // « Classe précédente », « Ne pas diffuser », « Droit à l'image (O/N) ».
    if has(&[
        "pere",
        "mere",
        "precedente",
        "precedent",
        "ancienne",
        "origine",
        "prochaine",
        "pas",
        "droit",
        "image",
        "autorisation",
    ]) {
        return None;
    }
    let guardian_at = words
        .iter()
        .position(|w| guardian_words.contains(&w.as_str()));
    // The guardian's rank follows its word (« Téléphone 2 responsable 1 » is
    // the first guardian's second phone); else any 1 or 2 in the header.
    let rank_in = |words: &[String]| {
        words.iter().find_map(|w| match w.as_str() {
            "1" => Some(1),
            "2" => Some(2),
            _ => None,
        })
    };
    let rank = guardian_at
        .and_then(|at| rank_in(&words[at..]))
        .or_else(|| rank_in(&words));
    let is_guardian = guardian_at.is_some();
    let field = if has(EMAIL_WORDS) {
        Some(GuardianField::Email)
    } else if has(PHONE_WORDS) {
        Some(GuardianField::Phone)
    } else if has(&["given", "prenom", "prenoms", "firstname", "first"]) {
        Some(GuardianField::GivenName)
    } else if has(&["family", "nom", "lastname", "last", "surname"]) {
        Some(GuardianField::FamilyName)
    } else {
        None
    };
    if is_guardian {
        // A file with one guardian per pupil names them without a rank
        // (« Courriel responsable »): the first. Other guardian columns
        // (« Adresse responsable 1 », « Lien de parenté ») are not read.
        return Some(Column::Guardian(rank.unwrap_or(1), field?));
    }
    if has(&["birthdate", "naissance", "naiss", "birth", "ne", "nee"]) {
        // « Lieu de naissance », « Commune de naissance », « Nom de
        // naissance »: not the date.
        let place = [
            "lieu",
            "place",
            "commune",
            "ville",
            "city",
            "pays",
            "country",
            "departement",
            "dept",
        ];
        // « Né(e) à » is where, « Né(e) le » when.
        let at_a_place = has(&["a"]) && !has(&["le", "date"]);
        if field.is_some() || has(&place) || at_a_place {
            return None;
        }
        return Some(Column::Birthdate);
    }
    if has(&["class", "classe", "division", "div"]) {
        return Some(Column::Class);
    }
    // « N° élève »: a lone « n » names the number only first.
    let first_is_n = words.first().is_some_and(|w| w == "n");
    if (first_is_n
        || has(&[
            "id",
            "ine",
            "numero",
            "num",
            "no",
            "identifiant",
            "ref",
            "matricule",
        ]))
        && field.is_none()
    {
        return Some(Column::StudentRef);
    }
    if words.iter().any(|w| w == "student") && has(&["id"]) {
        return Some(Column::StudentRef);
    }
    match field {
        Some(GuardianField::FamilyName) => Some(Column::FamilyName),
        Some(GuardianField::GivenName) => Some(Column::GivenName),
        _ => None,
    }
}

/// Text as the spreadsheet wrote it: UTF-8 (BOM or not), UTF-16 with its
/// BOM (Excel's « Texte Unicode », tab-separated) or without, else Windows-1252 or, if
/// that reading shows the marks of the wrong code page, Mac Roman (Excel for
/// Mac's « CSV (Macintosh) »), line by line.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes)
        && encoding != encoding_rs::UTF_8
    {
        return encoding.decode_without_bom_handling(&bytes[bom..]).0;
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        return encoding.decode_without_bom_handling(bytes).0;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    // A file pasted together from two exports (rows added by hand in
    // another program) mixes UTF-8 lines with legacy ones: each line is read
    // in its own encoding, the legacy page chosen on the lines not UTF-8.
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let legacy: Vec<u8> = lines
        .iter()
        .filter(|line| std::str::from_utf8(line).is_err())
        .flat_map(|line| line.iter().copied())
        .collect();
    let windows = encoding_rs::WINDOWS_1252
        .decode_without_bom_handling(&legacy)
        .0;
    let mac = encoding_rs::MACINTOSH
        .decode_without_bom_handling(&legacy)
        .0;
    let page = if wrong_page(&windows) > wrong_page(&mac) {
        encoding_rs::MACINTOSH
    } else {
        encoding_rs::WINDOWS_1252
    };
    Cow::Owned(
        lines
            .iter()
            .map(|line| match std::str::from_utf8(line) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => page.decode_without_bom_handling(line).0,
            })
            .collect(),
    )
}

/// UTF-16 written without its BOM (a script's or a database tool's
/// export): the header's ASCII letters each beside a zero byte, after it
/// (little-endian) or before it (big-endian).
pub fn utf16_without_bom(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let start = &bytes[..bytes.len().min(1024) & !1];
    let pairs = start.len() / 2;
    if pairs < 8 {
        return None;
    }
    let zeros = |offset: usize| {
        start
            .iter()
            .skip(offset)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count()
    };
    let (even, odd) = (zeros(0), zeros(1));
    let most = |n: usize| n * 10 >= pairs * 8;
    let few = |n: usize| n * 20 <= pairs;
    if most(odd) && few(even) {
        Some(encoding_rs::UTF_16LE)
    } else if most(even) && few(odd) {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

/// The marks a reading through the wrong code page leaves in a school's
/// file: control characters and symbols no name holds, and accented letters
/// whose case breaks their word's. Mac Roman's « é », « è », « ç », « à »,
/// « ü » read in Windows-1252 as « Ž » (« HŽlne »), a control character,
/// « ˆ », « Ÿ » (« MŸller »); Windows-1252's « é », « è » read in Mac Roman
/// as « È », « Ë » (« HÈlËne »), its « à », « â », « ö » as « ‡ », « ‚ »,
/// « ˆ ». A letter in its place is no sign: « Žagar » and « ÉLODIE » are
/// names, in either page.
fn wrong_page(text: &str) -> usize {
    let symbols = text
        .chars()
        .filter(|c| {
            matches!(
                c,
                '\u{80}'
                    ..='\u{9f}'
                        | 'ˆ'
                        | '˜'
                        | '™'
                        | '‰'
                        | 'ƒ'
                        | '‡'
                        | '‚'
                        | '˚'
                        | '˘'
                        | '˙'
                        | '˝'
                        | '˛'
                        | 'ˇ'
                        | '∑'
                        | '∏'
                        | '∂'
                        | '√'
                        | '∆'
                        | '◊'
                        | '≈'
                        | '≠'
                        | '≤'
                        | '≥'
                        | '∞'
                        | 'Ω'
                        | 'π'
                        | '∫'
                        | '\u{f8ff}'
            )
        })
        .count();
    let chars: Vec<char> = text.chars().collect();
    let letter = |i: Option<usize>| i.and_then(|i| chars.get(i)).filter(|c| c.is_alphabetic());
    let broken_case = (0..chars.len())
        .filter(|&i| {
            let c = chars[i];
            if c.is_ascii() || !c.is_alphabetic() {
                return false;
            }
            let before = letter(i.checked_sub(1));
            let after = letter(Some(i + 1));
            if c.is_uppercase() {
                // « HÈlène », « HŽlne »: a capital inside a lower-case word.
                before.is_some_and(|b| b.is_lowercase())
                    || (before.is_some() && after.is_some_and(|a| a.is_lowercase()))
            } else {
                // « LEFéVRE »: a small letter inside a capitalised word.
                before.is_some_and(|b| b.is_uppercase()) && after.is_some_and(|a| a.is_uppercase())
            }
        })
        .count();
    symbols + broken_case
}

/// Where each line's text lies (its line break aside): `\r\n`, `\n` or a
/// lone `\r` ends a line.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                spans.push((start, i));
                start = i + 1;
            }
            b'\r' => {
                spans.push((start, i));
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    spans.push((start, bytes.len()));
    spans
}

/// The columns a file must have, as the report names them when missing.
const REQUIRED: [(Column, &str); 5] = [
    (Column::StudentRef, "student_id (identifiant de l'élève)"),
    (Column::FamilyName, "family_name (nom)"),
    (Column::GivenName, "given_name (prénom)"),
    (Column::Birthdate, "birthdate (date de naissance)"),
    (Column::Class, "class (classe)"),
];

/// Whether `line` names every column a file must have.
fn names_the_columns(line: &str) -> bool {
    let separator = char::from(delimiter(line));
    let named: Vec<Column> = line
        .split(separator)
        .filter_map(|cell| column(cell.trim().trim_matches('"')))
        .collect();
    REQUIRED.iter().all(|(c, _)| named.contains(c))
}

/// A title above the header (« Liste des élèves — Collège Jean Moulin », the
/// export's date), as school software and spreadsheets put one: its lines,
/// before the first of the file's first six that names the columns, are
/// blanked, so the header is read where it is and every row keeps the number
/// the spreadsheet shows.
fn without_title(text: Cow<'_, str>) -> Cow<'_, str> {
    let spans = line_spans(&text);
    let filled: Vec<&(usize, usize)> = spans
        .iter()
        .filter(|(start, end)| !text[*start..*end].trim().is_empty())
        .take(6)
        .collect();
    let header = filled
        .iter()
        .position(|(start, end)| names_the_columns(&text[*start..*end]));
    let Some(header) = header.filter(|&h| h > 0) else {
        return text;
    };
    let (header_start, _) = *filled[header];
    let mut blanked = String::with_capacity(text.len());
    blanked.extend(
        text[..header_start]
            .chars()
            .filter(|c| matches!(c, '\r' | '\n')),
    );
    blanked.push_str(&text[header_start..]);
    Cow::Owned(blanked)
}

/// The separator of the header line (the first that is not blank): the most
/// frequent of `;`, `,` and tab.
fn delimiter(text: &str) -> u8 {
    let header = text
        .split(['\r', '\n'])
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    [b';', b',', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b';')
}

/// Numbers records as a spreadsheet shows them: the header is row 1, a blank
/// line is a row, and a quoted cell holding line breaks stays in its row.
///
/// The csv crate gives each record's byte offset, but an offset that may still
/// point at the previous record's `\n` (after its `\r`) or at blank lines it
/// skips; and counting every line break before it would count those inside
/// quoted cells. What lies between two records is exactly the run of `\r` and
/// `\n` before the next record's first byte (a quoted cell ends with its
/// quote), so each record's row is the previous one's plus the line breaks in
/// that run.
struct SpreadsheetRows<'a> {
    text: &'a [u8],
    row: usize,
}

impl<'a> SpreadsheetRows<'a> {
    fn new(text: &'a str) -> Self {
        let mut rows = Self {
            text: text.as_bytes(),
            row: 1,
        };
        // The header: row 1, after any blank lines the reader skipped.
        rows.row_at(0);
        rows
    }

    /// The row of the record the reader reported at byte offset `byte`.
    /// Records must be given in order.
    fn row_at(&mut self, byte: u64) -> usize {
        let is_break = |b: &u8| matches!(b, b'\r' | b'\n');
        let mut start = (byte as usize).min(self.text.len());
        start += self.text[start..]
            .iter()
            .take_while(|b| is_break(b))
            .count();
        let run = self.text[..start]
            .iter()
            .rev()
            .take_while(|b| is_break(b))
            .count();
        // `\r\n`, a lone `\n` and a lone `\r` (old Mac files) each end a row.
        let lines = &self.text[start - run..start];
        let crlf = lines.windows(2).filter(|w| w == b"\r\n").count();
        self.row += run - crlf;
        self.row
    }
}

/// Parses and validates the whole file. Either every row is good, or the
/// errors of every bad row come back, each with its line number.
pub fn parse(bytes: &[u8]) -> Result<Vec<PupilRow>, Vec<RowError>> {
    let parsed = read(bytes)?;
    if parsed.refused.is_empty() {
        Ok(parsed.rows)
    } else {
        Err(parsed.refused)
    }
}

/// A readable file: its good rows, and the bad ones with their line numbers.
#[derive(Debug)]
pub struct Parsed {
    pub rows: Vec<PupilRow>,
    pub refused: Vec<RowError>,
    pub contacts: ContactColumns,
    /// Columns of contact details not read, as the header names them: they
    /// do not say which guardian's (see [`unread_contact`]).
    pub unread: Vec<String>,
}

/// Which of the guardians' contact columns the file has (index: rank − 1).
/// A column the file lacks says nothing of what the school knows: its empty
/// cells do not erase an address or a phone already held.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactColumns {
    pub email: [bool; 2],
    pub phone: [bool; 2],
}

/// Parses and validates the whole file, keeping the good rows apart from
/// the bad; `Err` when the file itself cannot be read (its header).
pub fn read(bytes: &[u8]) -> Result<Parsed, Vec<RowError>> {
    let file_error = |reason: String| vec![RowError { line: 0, reason }];
    if let Some(reason) = not_a_text_file(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)) {
        return Err(file_error(reason.into()));
    }
    let text = decode(bytes);
    // An image, an archive, a program: text files hold no NUL.
    if text.contains('\0') {
        return Err(file_error(BINARY.into()));
    }
    let text = without_title(text);
    // An empty sheet's export: blank lines, or separators alone.
    if text
        .chars()
        .all(|c| c.is_whitespace() || matches!(c, ';' | ',' | '"'))
    {
        return Err(file_error(EMPTY.into()));
    }
    let separator = delimiter(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| file_error(format!("en-tête illisible ({e})")))?
        .clone();
    // Two columns for one datum: the preferred one is read (a mobile
    // before a landline); two first choices alike refuse the file.
    let mut columns: HashMap<Column, usize> = HashMap::new();
    let mut unread = Vec::new();
    for (index, header) in headers.iter().enumerate() {
        let Some(column) = column(header) else {
            if unread_contact(header) {
                unread.push(shown(header));
            }
            continue;
        };
        let Some(&first) = columns.get(&column) else {
            columns.insert(column, index);
            continue;
        };
        let first_header = headers.get(first).unwrap_or_default();
        let (this, kept) = (preference(header, column), preference(first_header, column));
        if this < kept {
            columns.insert(column, index);
        } else if (this == 0 && kept == 0) || first_header == header {
            let (first_header, header) = (shown(first_header), shown(header));
            return Err(file_error(if first_header == header {
                format!("la colonne « {header} » apparaît deux fois")
            } else {
                format!(
                    "les colonnes « {first_header} » et « {header} » désignent la même donnée ; gardez-en une"
                )
            }));
        }
        // Else a second choice beside a better one, or two second choices
        // (a home and a work landline): the column kept stays.
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|(c, _)| !columns.contains_key(c))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(file_error(format!(
            "colonnes manquantes : {}",
            missing.join(", ")
        )));
    }

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rows_before = SpreadsheetRows::new(&text);
    let mut last = None;
    // The first row whose birth date can only be month/day/year, and
    // whether one can only be day/month/year.
    let mut month_first = None;
    let mut day_first = false;
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| rows_before.row_at(p.byte()));
                errors.push(RowError {
                    line,
                    reason: format!("ligne illisible ({e})"),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(0, |p| rows_before.row_at(p.byte()));
        let broken = record.iter().any(|cell| cell.contains(['\n', '\r']));
        last = record.position().map(|p| (p.byte() as usize, line, broken));
        // A stray quote closed only by a later quoted cell (Excel quotes a
        // cell holding the separator) swallows the rows between into one
        // cell, and its row still reads well: a line inside a cell with a
        // row's worth of separators is such a swallowed row.
        // So is a record that ends up with more cells than the header: the
        // quote closed early in the next row, whose rest follows as cells.
        let a_row = headers.len().saturating_sub(1).max(2);
        if broken
            && (record.len() > headers.len()
                || record.iter().any(|cell| {
                    cell.lines()
                        .skip(1)
                        .any(|inner| inner.bytes().filter(|&b| b == separator).count() >= a_row)
                }))
        {
            return Err(vec![RowError {
                line,
                reason: "un guillemet (\") ouvert dans cette ligne n'est refermé que plusieurs lignes plus loin : les lignes entre les deux seraient lues comme une seule cellule. Retirez ce guillemet ou refermez-le".into(),
            }]);
        }
        if record.iter().all(str::is_empty) {
            continue; // spreadsheets leave blank lines at the end
        }
        let cell = |column: Column| {
            columns
                .get(&column)
                .and_then(|&i| record.get(i))
                .unwrap_or("")
        };
        let date = spreadsheet_date(cell(Column::Birthdate));
        if month_first.is_none() && month_day_year(&date) {
            month_first = Some(line);
        }
        day_first |= day_month_year(&date);
        // Cells beyond the header's: a cell holding the separator without
        // quotes (« 12, rue de la Gare ») pushed the rest of the row right,
        // each datum into the next column. Empty ones are a spreadsheet's.
        if record
            .iter()
            .skip(headers.len())
            .any(|cell| !cell.is_empty())
        {
            errors.push(RowError {
                line,
                reason: format!(
                    "cette ligne a {} cellules et l'en-tête {} colonnes : une cellule contient sans doute le séparateur « {} » sans guillemets, et les suivantes sont décalées ; corrigez la ligne",
                    record.len(),
                    headers.len(),
                    char::from(separator)
                ),
            });
            continue;
        }
        // A row cut short (its last cells left out, not left empty): the
        // columns it lacks are named, not taken for empty cells.
        let mut cut: Vec<usize> = REQUIRED
            .iter()
            .filter_map(|(column, _)| columns.get(column).copied())
            .filter(|&index| index >= record.len())
            .collect();
        if !cut.is_empty() {
            cut.sort_unstable();
            let named: Vec<String> = cut
                .iter()
                .map(|&index| format!("« {} »", shown(headers.get(index).unwrap_or_default())))
                .collect();
            errors.push(RowError {
                line,
                reason: format!(
                    "cette ligne n'a que {} cellule{} et l'en-tête {} colonnes : il lui manque {} ; complétez-la",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    headers.len(),
                    named.join(", ")
                ),
            });
            continue;
        }
        match row(line, &cell) {
            Ok(row) => {
                if let Some(first) = seen.insert(row.student_ref.key(), line) {
                    errors.push(RowError {
                        line,
                        reason: format!(
                            "l'identifiant d'élève « {} » figure déjà ligne {first}",
                            row.student_ref.as_str()
                        ),
                    });
                } else {
                    rows.push(row);
                }
            }
            Err(reason) => errors.push(RowError { line, reason }),
        }
    }
    // A spreadsheet set to English writes month/day/year: one date that can
    // be read no other way means every other date of the file would be read
    // with its day and month swapped — unless another date can only be
    // day/month/year: then that one is a typo, a bad row of its own.
    if let Some(line) = month_first.filter(|_| !day_first) {
        return Err(vec![RowError {
            line,
            reason: "la date de naissance de cette ligne est écrite mois/jour/année : enregistrez le fichier avec les dates au format jj/mm/aaaa (réglages régionaux français), sinon le jour et le mois des autres dates seraient inversés".into(),
        }]);
    }
    // The file's last record may be a quoted cell never closed, which the
    // csv reader takes to the end of the file without an error: every row
    // after its quote would vanish into it. Such a record holds a line break,
    // and an odd number of quotes from its start (a closed cell has two, and
    // a `""` inside it two more).
    if let Some((byte, line, true)) = last
        && text.as_bytes()[byte.min(text.len())..]
            .iter()
            .filter(|&&b| b == b'"')
            .count()
            % 2
            == 1
    {
        return Err(vec![RowError {
            line,
            reason: "un guillemet (\") ouvert dans cette ligne n'est jamais refermé : la suite du fichier serait lue comme une seule cellule. Retirez ce guillemet ou refermez-le".into(),
        }]);
    }
    // A header alone (the wrong sheet, or an export cut short) imports nothing.
    if rows.is_empty() && errors.is_empty() {
        return Err(file_error(NO_ROWS.into()));
    }
    let has = |rank, field| columns.contains_key(&Column::Guardian(rank, field));
    let contacts = ContactColumns {
        email: [1, 2].map(|rank| has(rank, GuardianField::Email)),
        phone: [1, 2].map(|rank| has(rank, GuardianField::Phone)),
    };
    Ok(Parsed {
        rows,
        refused: errors,
        contacts,
        unread,
    })
}

/// Whether a column Clef does not read holds contact details a parent may
/// need: an address or a phone that does not say whose (« Courriel »,
/// « Tél. portable », « Courriel mère »). The pupil's own are not a parent's.
fn unread_contact(header: &str) -> bool {
    let words = words(header);
    let has = |candidates: &[&str]| words.iter().any(|w| candidates.contains(&w.as_str()));
    (has(EMAIL_WORDS) || has(PHONE_WORDS))
        && !has(&[
            "eleve",
            "student",
            "enfant",
            "child",
            "etablissement",
            "ecole",
            "school",
        ])
}

const EMPTY: &str = "le fichier est vide : exportez à nouveau la liste des élèves depuis le tableur ou le logiciel de scolarité";
const NO_ROWS: &str = "aucune ligne d'élève sous l'en-tête : vérifiez que le tableur a exporté la bonne feuille, en entier";

/// The file's text in a message: its control characters shown as such,
/// never sent to the terminal that prints it.
fn shown(header: &str) -> String {
    header
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// What a file that is not text is, from its first bytes, and what to do:
/// the workbook itself picked instead of its CSV export, or a PDF of the list.
fn not_a_text_file(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"\xd0\xcf\x11\xe0") {
        Some(WORKBOOK)
    } else if bytes.starts_with(b"%PDF") {
        Some(PDF)
    } else {
        None
    }
}

const WORKBOOK: &str = "ce fichier est un classeur (Excel .xlsx ou .xls, LibreOffice .ods), pas un fichier CSV : ouvrez-le dans le tableur, puis « Enregistrer sous » au format CSV (séparateur : point-virgule) et déposez ce fichier-là";
const BINARY: &str = "ce fichier n'est pas un fichier texte : exportez la liste des élèves depuis le tableur ou le logiciel de scolarité au format CSV";
const PDF: &str = "ce fichier est un PDF, pas un fichier CSV : exportez la liste des élèves depuis le tableur ou le logiciel de scolarité au format CSV";

/// A birth date as a spreadsheet may have written it, as a date: a date
/// with a midnight time (`03/09/2012 00:00`, `2012-09-03T00:00:00`), a
/// short date's two-digit year (`03/09/12`: a pupil's, so 2012, or 1998 for
/// `98`, the latest year not to come, within 30 years), or a cell Excel took for a number,
/// its day count from 30/12/1899 (`41155`, within 1950–2100).
fn spreadsheet_date(raw: &str) -> Cow<'_, str> {
    let raw = raw.trim();
    if let Some((date, time)) = raw.split_once([' ', 'T'])
        && matches!(time.trim(), "00:00" | "00:00:00" | "0:00" | "0:00:00")
    {
        return spreadsheet_date(date);
    }
    if let Some((day_month, year)) = raw.rsplit_once('/')
        && year.len() == 2
        && let Ok(year) = year.parse::<i32>()
        && day_month.split('/').count() == 2
    {
        let this_year = time::OffsetDateTime::now_utc().year();
        let year = match (2000 + year, 1900 + year) {
            (recent, _) if recent <= this_year => recent,
            // `98`: an adult back at school, or a typo; an older pupil's
            // year (`27`, 1927) is asked for in full (the hint says how).
            (_, last_century) if last_century >= this_year - SHORT_YEAR_SPAN => last_century,
            _ => return Cow::Borrowed(raw),
        };
        return Cow::Owned(format!("{day_month}/{year}"));
    }
    if raw.len() == 5
        && raw.bytes().all(|b| b.is_ascii_digit())
        && let Ok(days) = raw.parse::<i64>()
        && (18_264..=73_415).contains(&days)
    {
        let date = time::macros::date!(1899 - 12 - 30) + time::Duration::days(days);
        return Cow::Owned(format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        ));
    }
    Cow::Borrowed(raw)
}

/// How far back a two-digit year is read in the last century.
const SHORT_YEAR_SPAN: i32 = 30;

/// Whether `raw` is a date that only month/day/year reads: `9/13/2012`.
fn month_day_year(raw: &str) -> bool {
    matches!(first_two(raw), Some((1..=12, 13..=31)))
}

/// Whether a date can only be read day/month/year (`25/12/2011`).
fn day_month_year(raw: &str) -> bool {
    matches!(first_two(raw), Some((13..=31, 1..=12)))
}

/// The two numbers before the year of `a/b/yyyy` or `a-b-yyyy`.
fn first_two(raw: &str) -> Option<(u8, u8)> {
    let parts: Vec<&str> = raw.trim().split(['/', '-']).collect();
    let number = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [first, second, year] if year.len() == 4 && number(first) && number(second) => {
            Some((first.parse().ok()?, second.parse().ok()?))
        }
        _ => None,
    }
}

/// Keeps a field's value, or records why it was refused: a value that is
/// not valid quoted as the cell holds it, so that the secretary finds it
/// (« 31/02/2014 »), with what is wrong in it (`hint`), and a number a
/// spreadsheet wrote in scientific notation (a column read as numbers:
/// `6.12E+08`) said so, with what to do.
fn keep_shown<T>(
    problems: &mut Vec<String>,
    result: Result<T, FieldError>,
    raw: &str,
    hint: Option<&str>,
) -> Option<T> {
    result
        .map_err(|e| {
            if e.problem != Problem::Invalid {
                return problems.push(e.to_string());
            }
            // What shows nothing is shown by its code point, where it is.
            let value: String = raw
                .trim()
                .chars()
                .take(40)
                .map(|c| match crate::domain::invisible(c) {
                    true => format!("[U+{:04X}]", u32::from(c)),
                    false => c.to_string(),
                })
                .collect();
            let hint = match hint {
                _ if scientific(&value) => Some(SCIENTIFIC),
                hint => hint,
            };
            let hint = hint.map(|h| format!(" ({h})")).unwrap_or_default();
            problems.push(format!(
                "Le champ « {} » n'est pas valide : « {value} »{hint}.",
                e.field
            ));
        })
        .ok()
}

const SCIENTIFIC: &str = "le tableur l'a écrit en notation scientifique : mettez la colonne au format Texte, puis exportez à nouveau";
const NAME_HINT: &str = "seulement des lettres, espaces, traits d'union et apostrophes";
const NO_SUCH_DAY: &str = "ce jour n'existe pas";
const CLASS_HINT: &str =
    "une lettre ou un chiffre d'abord, puis lettres, chiffres, espaces et - _ . / ' °";
const DATE_HINT: &str = "écrivez la date jj/mm/aaaa";

/// What is wrong in a birth date that does not parse: a day its month does
/// not have (31/02), or its shape.
fn date_hint(date: &str) -> &'static str {
    if crate::domain::BirthDate::no_such_day(date) {
        NO_SUCH_DAY
    } else {
        DATE_HINT
    }
}

/// `6.12E+08`, `6,12E+8`: a number as a spreadsheet shows it in scientific notation.
fn scientific(value: &str) -> bool {
    let Some((mantissa, exponent)) = value.split_once(['E', 'e']) else {
        return false;
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit())
}

fn row<'a>(line: usize, cell: &dyn Fn(Column) -> &'a str) -> Result<PupilRow, String> {
    let mut problems = Vec::new();
    let student_ref = keep_shown(
        &mut problems,
        StudentNumber::parse(cell(Column::StudentRef)),
        cell(Column::StudentRef),
        None,
    );
    // Why a name is refused is looked for only when it is.
    let name = |problems: &mut Vec<String>, field, raw: &str| {
        let parsed = PersonName::parse(field, raw);
        let why = parsed.as_ref().err().and_then(|_| PersonName::why_not(raw));
        let hint = why.map_or(Cow::Borrowed(NAME_HINT), |why| {
            Cow::Owned(format!("{} : {NAME_HINT}", why.french()))
        });
        keep_shown(problems, parsed, raw, Some(&hint))
    };
    let family_name = name(&mut problems, "nom", cell(Column::FamilyName));
    let given_name = name(&mut problems, "prénom", cell(Column::GivenName));
    let date = spreadsheet_date(cell(Column::Birthdate));
    let birthdate = keep_shown(
        &mut problems,
        BirthDate::parse(&date),
        cell(Column::Birthdate),
        Some(date_hint(&date)),
    );
    let class = keep_shown(
        &mut problems,
        ClassName::parse(cell(Column::Class)),
        cell(Column::Class),
        Some(CLASS_HINT),
    );
    let mut guardians = Vec::new();
    for (rank, family_label, given_label, email_label, phone_label) in [
        (
            1u8,
            "nom du responsable 1",
            "prénom du responsable 1",
            "adresse mail du responsable 1",
            "téléphone du responsable 1",
        ),
        (
            2,
            "nom du responsable 2",
            "prénom du responsable 2",
            "adresse mail du responsable 2",
            "téléphone du responsable 2",
        ),
    ] {
        // Which guardian's cell is wrong, on a row that has two.
        let relabel = |label| move |e: FieldError| FieldError::new(label, e.problem);
        let field = |f| cell(Column::Guardian(rank, f));
        let [family, given, email, phone] = [
            GuardianField::FamilyName,
            GuardianField::GivenName,
            GuardianField::Email,
            GuardianField::Phone,
        ]
        .map(field);
        if [family, given, email, phone].iter().all(|v| v.is_empty()) {
            continue;
        }
        let family = name(&mut problems, family_label, family);
        let given = name(&mut problems, given_label, given);
        let email = if email.is_empty() {
            None
        } else {
            keep_shown(
                &mut problems,
                EmailAddress::parse(email).map_err(relabel(email_label)),
                email,
                None,
            )
        };
        let phone = if phone.is_empty() {
            None
        } else {
            keep_shown(
                &mut problems,
                Phone::parse(phone).map_err(relabel(phone_label)),
                phone,
                None,
            )
        };
        if let (Some(family_name), Some(given_name)) = (family, given) {
            guardians.push(GuardianRow {
                rank,
                family_name,
                given_name,
                email,
                phone,
            });
        }
    }
    // One parent written as both guardians (the same name, no contact
    // detail that differs): one guardian, not two accounts and two letters.
    if let [first, second] = guardians.as_mut_slice() {
        let same_name = |a: &GuardianRow, b: &GuardianRow| {
            FoldedName::of(a.given_name.as_str(), a.family_name.as_str())
                == FoldedName::of(b.given_name.as_str(), b.family_name.as_str())
        };
        let agree = |a: Option<&str>, b: Option<&str>| a.is_none() || b.is_none() || a == b;
        if same_name(first, second)
            && agree(
                first.email.as_ref().map(EmailAddress::as_str),
                second.email.as_ref().map(EmailAddress::as_str),
            )
            && agree(
                first.phone.as_ref().map(Phone::as_str),
                second.phone.as_ref().map(Phone::as_str),
            )
        {
            first.email = first.email.take().or(second.email.take());
            first.phone = first.phone.take().or(second.phone.take());
            guardians.truncate(1);
        }
    }
    match (student_ref, family_name, given_name, birthdate, class) {
        (Some(student_ref), Some(family_name), Some(given_name), Some(birthdate), Some(class))
            if problems.is_empty() =>
        {
            Ok(PupilRow {
                line,
                student_ref,
                family_name,
                given_name,
                birthdate,
                class,
                guardians,
            })
        }
        _ => Err(problems.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short date's two-digit year (Excel's « jj/mm/aa »): a pupil's, so
    /// this century's unless that is still to come, else within 30 years.
    #[test]
    fn a_short_date_s_year_is_a_pupil_s() {
        assert_eq!(spreadsheet_date("03/09/12"), "03/09/2012");
        assert_eq!(spreadsheet_date("3/9/12 00:00"), "3/9/2012");
        assert_eq!(spreadsheet_date("03/09/98"), "03/09/1998");
        // Next year's two digits are not a pupil's birth 99 years ago: the
        // date stays as written, refused with how to write it.
        let next = (time::OffsetDateTime::now_utc().year() + 1) % 100;
        assert_eq!(
            spreadsheet_date(&format!("01/01/{next:02}")),
            format!("01/01/{next:02}")
        );
        let text = format!(
            "N° élève;Nom;Prénom;Date de naissance;Classe\n1;Roux;Léo;01/01/{next:02};4 A\n"
        );
        assert_eq!(
            read(text.as_bytes()).unwrap().refused[0].reason,
            format!(
                "Le champ « date de naissance » n'est pas valide : « 01/01/{next:02} » (écrivez la date jj/mm/aaaa)."
            )
        );
        assert_eq!(spreadsheet_date("03/09/2012"), "03/09/2012");
        assert_eq!(spreadsheet_date("2012-09-03"), "2012-09-03");
        let text = "N° élève;Nom;Prénom;Date de naissance;Classe\r\n1;Roux;Léo;15/03/12;4 A\r\n";
        assert_eq!(
            parse(text.as_bytes()).unwrap()[0].birthdate.iso(),
            "2012-03-15"
        );
    }

    #[test]
    fn exports_with_two_columns_for_one_datum_read_the_preferred_one() {
        assert_eq!(
            column("Adresse électronique responsable 1"),
            Some(Column::Guardian(1, GuardianField::Email))
        );
        assert_eq!(
            column("GSM responsable 2"),
            Some(Column::Guardian(2, GuardianField::Phone))
        );
        let text = [
            "N° élève;Nom de famille;Nom d'usage;Prénom;Prénom 2;Date de naissance;Classe;\
             Nom responsable 1;Prénom responsable 1;Tél. domicile responsable 1;Tél. portable responsable 1;\
             Tél. professionnel responsable 1",
            "1;Baillet;Martin;Julie;Anne;03/09/2012 00:00;5 B;Baillet;Marc;03 20 00 00 00;06 12 34 56 78;03 20 11 11 11",
            "2;Roux;Roux;Léo;;41155;4 A;;;;;",
            "",
        ]
        .join("\r\n");
        let rows = parse(text.as_bytes()).unwrap();
        assert_eq!(rows[0].family_name.as_str(), "Baillet");
        assert_eq!(rows[0].given_name.as_str(), "Julie");
        assert_eq!(rows[0].birthdate.iso(), "2012-09-03");
        assert_eq!(
            rows[0].guardians[0].phone.as_ref().map(Phone::as_str),
            Some("+33612345678"),
            "the mobile, whatever the column order"
        );
        assert_eq!(rows[1].birthdate.iso(), "2012-09-03", "Excel's day number");
        // Two columns alike still refuse the file, second choices too.
        for twice in [
            "N° élève;Nom;Nom;Prénom;Date de naissance;Classe\r\n",
            "N° élève;Nom;Prénom;Date de naissance;Classe;Téléphone responsable 1;Téléphone responsable 1\r\n",
        ] {
            let errors = parse(twice.as_bytes()).unwrap_err();
            assert!(errors[0].reason.contains("deux fois"), "{twice}");
        }
    }

    #[test]
    fn english_and_french_headers_are_recognised() {
        for (header, expected) in [
            ("student_id", Column::StudentRef),
            ("N° élève", Column::StudentRef),
            ("INE", Column::StudentRef),
            ("family_name", Column::FamilyName),
            ("Nom", Column::FamilyName),
            ("Prénom", Column::GivenName),
            ("Date de naissance", Column::Birthdate),
            ("Né(e) le", Column::Birthdate),
            ("Division", Column::Class),
            (
                "guardian1_family_name",
                Column::Guardian(1, GuardianField::FamilyName),
            ),
            ("guardian2_email", Column::Guardian(2, GuardianField::Email)),
            (
                "Nom responsable 1",
                Column::Guardian(1, GuardianField::FamilyName),
            ),
            (
                "Prénom resp. légal 2",
                Column::Guardian(2, GuardianField::GivenName),
            ),
            (
                "Courriel représentant 1",
                Column::Guardian(1, GuardianField::Email),
            ),
            (
                "Téléphone portable responsable2",
                Column::Guardian(2, GuardianField::Phone),
            ),
            // One guardian per pupil, no rank: the first.
            (
                "Courriel responsable",
                Column::Guardian(1, GuardianField::Email),
            ),
            (
                "Nom représentant légal",
                Column::Guardian(1, GuardianField::FamilyName),
            ),
            ("Prénoms", Column::GivenName),
            ("Nom légal", Column::FamilyName),
            ("Date naiss.", Column::Birthdate),
            ("Né(e) le", Column::Birthdate),
            ("N°", Column::StudentRef),
            // The rank is the guardian's, not the phone's.
            (
                "Téléphone 2 responsable 1",
                Column::Guardian(1, GuardianField::Phone),
            ),
        ] {
            assert_eq!(column(header), Some(expected), "{header}");
        }
        for ignored in [
            "Lieu de naissance",
            "Commune de naissance",
            "Pays de naissance",
            "Nom de naissance",
            "Adresse responsable 1",
            "Lien de parenté responsable 1",
            // Other data that share a word with a column read.
            "Né(e) à",
            "Droit à l'image (O/N)",
            "Ne pas diffuser",
            "Nom du père",
            "Prénom de la mère",
            "Classe précédente",
        ] {
            assert_eq!(column(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn a_place_of_birth_beside_the_date_and_a_guardian_without_rank_are_read() {
        let text = "N° élève;Nom;Prénom;Date de naissance;Lieu de naissance;Classe;\
                    Nom responsable;Prénom responsable;Courriel responsable\n\
                    1;Baillet;Julie;03/09/2012;Lille;5 B;Baillet;Marc;marc@example.org\n";
        let rows = parse(text.as_bytes()).unwrap();
        assert_eq!(rows[0].birthdate.iso(), "2012-09-03");
        assert_eq!(rows[0].guardians.len(), 1);
        assert_eq!(rows[0].guardians[0].rank, 1);
        assert_eq!(
            rows[0].guardians[0].email.as_ref().map(|e| e.to_string()),
            Some("marc@example.org".into())
        );
        // Both a ranked and an unranked column for the same data: named both.
        let text = "N° élève;Nom;Prénom;Né le;Classe;Courriel responsable 1;Courriel responsable\n";
        let errors = parse(text.as_bytes()).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "fichier : les colonnes « Courriel responsable 1 » et « Courriel responsable » désignent la même donnée ; gardez-en une"
        );
    }

    #[test]
    fn windows_1252_is_decoded_when_the_bytes_are_not_utf8() {
        assert_eq!(decode(b"L\xe9a;Fran\xe7ois"), "Léa;François");
        assert_eq!(decode("\u{feff}Léa".as_bytes()), "Léa");
        // Windows-1252 whose bytes also spell letters in Mac Roman (È, Ë,
        // Û, ÿ, î…): no Windows-1252 reading of a real file looks wrong.
        for (bytes, text) in [
            (&b"H\xe9l\xe8ne;LEF\xc8VRE"[..], "Hélène;LEFÈVRE"),
            (b"C\x9cur;l\x92\xe9cole", "Cœur;l’école"),
            (b"J\xe9r\xf4me;Ram\xf3n", "Jérôme;Ramón"),
            (b"L\xe9o;Mu\xf1oz;\x93ENT\x94", "Léo;Muñoz;“ENT”"),
            (b"No\xebl;\xd8rsted;Fran\xe7ois", "Noël;Ørsted;François"),
            (b"Ch\xe2teau;\xe0 \xe9viter", "Château;à éviter"),
        ] {
            assert_eq!(decode(bytes), text);
        }
    }

    /// Excel for Mac's « CSV (Macintosh) »: Mac Roman, whose accents would
    /// read as « Ž » and control characters in Windows-1252.
    /// Rows added by hand in another program: UTF-8 lines and Windows-1252
    /// ones in one file, each read in its own.
    #[test]
    fn a_file_mixing_utf8_and_windows_1252_lines_reads_each_line_in_its_own() {
        let mut bytes = "N° élève;Nom;Prénom;Né(e) le;Classe\r\n1;Roux;Léo;15/03/2012;4 A\r\n"
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(b"2;Lef\xe8vre;H\xe9l\xe8ne;16/03/2012;4 A\r\n");
        let rows = parse(&bytes).unwrap();
        assert_eq!(rows[0].given_name.as_str(), "Léo");
        assert_eq!(rows[1].family_name.as_str(), "Lefèvre");
        assert_eq!(rows[1].given_name.as_str(), "Hélène");
    }

    #[test]
    fn mac_roman_is_decoded_when_its_accents_read_french_only_that_way() {
        assert_eq!(
            decode(b"H\x8el\x8fne;Fran\x8dois;No\x91l;C\x99me;\x83LODIE"),
            "Hélène;François;Noël;Côme;ÉLODIE"
        );
        assert_eq!(decode(b"L\x8ea"), "Léa");
        // German names only: « ü », « ö » are « Ÿ », « š » in Windows-1252.
        assert_eq!(decode(b"M\x9fller;Schr\x9ader"), "Müller;Schröder");
    }

    /// « Ž », « ž » are letters of Windows-1252 too (Croatian, Slovenian,
    /// Czech names): one of them does not turn the file's accents into
    /// Mac Roman's.
    #[test]
    fn a_windows_1252_file_with_z_caron_stays_windows_1252() {
        assert_eq!(
            decode(b"\x8eagar;H\xe9l\xe8ne;LEF\xc8VRE;Lo\xefc;Gar\xe7on;Ko\x9eel"),
            "Žagar;Hélène;LEFÈVRE;Loïc;Garçon;Kožel"
        );
    }

    /// A cell that is not valid is quoted in its reason, and a phone column
    /// a spreadsheet turned into numbers is said so, with what to do.
    #[test]
    fn a_bad_cell_is_quoted_and_a_number_in_scientific_notation_explained() {
        let text = [
            "student_id;family_name;given_name;birthdate;class;guardian1_family_name;guardian1_given_name;guardian1_phone",
            "1;Baillet;Julie;31/02/2012;5 B;Baillet;Marc;6.12E+08",
            "1,23E+11;Baillet;Léo;03/09/2012;5 B;Baillet;Marc;",
        ]
        .join("\n");
        let parsed = read(text.as_bytes()).unwrap();
        // The pupil's number too (a column of numbers: Excel's « 1,23E+11 »).
        assert!(
            parsed.refused[1].reason.contains(
                "« identifiant de l'élève » n'est pas valide : « 1,23E+11 » (le tableur l'a écrit en notation scientifique"
            ),
            "{}",
            parsed.refused[1].reason
        );
        let reason = &parsed.refused[0].reason;
        assert!(
            reason.contains("« 31/02/2012 » (ce jour n'existe pas)"),
            "{reason}"
        );
        assert!(
            reason.contains("« 6.12E+08 » (le tableur l'a écrit en notation scientifique"),
            "{reason}"
        );
        assert!(scientific("6,12E+8") && scientific("6.12e08"));
        assert!(!scientific("0612345678") && !scientific("E+08") && !scientific("6.12E"));
        // A name is quoted with what it may hold; a date with its shape, or
        // the day its month lacks whichever way it is written.
        let text =
            "N° élève;Nom;Prénom;Né le;Classe\n2;R0ux;Léo;2012-02-30;4 A\n3;Roux;Léa;12/2012;4 A\n";
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.refused[0].reason,
            "Le champ « nom » n'est pas valide : « R0ux » (« 0 » n'a pas sa place dans un nom : seulement des lettres, espaces, traits d'union et apostrophes). \
             Le champ « date de naissance » n'est pas valide : « 2012-02-30 » (ce jour n'existe pas)."
        );
        assert_eq!(
            parsed.refused[1].reason,
            "Le champ « date de naissance » n'est pas valide : « 12/2012 » (écrivez la date jj/mm/aaaa)."
        );
        // What shows nothing is shown where it hides; a word processor's
        // en dash is a hyphen.
        let text =
            "N° élève;Nom;Prénom;Né le;Classe\n2;Ro\u{200d}ux;Marie\u{2013}Léa;03/09/2012;4 A\n";
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.refused[0].reason,
            "Le champ « nom » n'est pas valide : « Ro[U+200D]ux » (le caractère invisible U+200D n'a pas sa place dans un nom : seulement des lettres, espaces, traits d'union et apostrophes)."
        );
        assert_eq!(parsed.refused.len(), 1, "Marie–Léa is Marie-Léa");
        assert_eq!(date_hint("29/02/2013"), NO_SUCH_DAY);
        assert_eq!(date_hint("32/01/2013"), DATE_HINT);
    }

    /// A row whose last cells were left out is told by the columns it lacks.
    #[test]
    fn a_row_cut_short_names_the_columns_it_lacks() {
        let text = "N° élève;Nom;Prénom;Né(e) le;Classe;Courriel responsable 1\n\
                    1;Roux;Léo;15/03/2012;4 A\n\
                    2;Roux;Léa\n";
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.rows.len(),
            1,
            "an optional cell left out is an empty one"
        );
        assert_eq!(parsed.refused[0].line, 3);
        assert_eq!(
            parsed.refused[0].reason,
            "cette ligne n'a que 3 cellules et l'en-tête 6 colonnes : il lui manque « Né(e) le », « Classe » ; complétez-la"
        );
        // A footer under the list (« Total : 245 élèves ») is such a row.
        let text =
            "N° élève;Nom;Prénom;Né(e) le;Classe\n1;Roux;Léo;15/03/2012;4 A\nTotal : 1 élève\n";
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.refused[0].reason,
            "cette ligne n'a que 1 cellule et l'en-tête 5 colonnes : il lui manque « Nom », « Prénom », « Né(e) le », « Classe » ; complétez-la"
        );
    }

    /// An empty file, or one of blank lines, is said to be empty.
    #[test]
    fn an_empty_file_is_said_empty() {
        for empty in [&b""[..], b"\r\n\r\n", b"\xEF\xBB\xBF", b" ;\n"] {
            let errors = read(empty).unwrap_err();
            assert_eq!(errors[0].reason, EMPTY, "{empty:?}");
        }
    }

    /// A contact column that does not say whose is named, not read; the
    /// pupil's own is not a parent's and is passed over in silence.
    #[test]
    fn contact_columns_that_do_not_say_whose_are_named() {
        let text = "N° élève;Nom;Prénom;Né(e) le;Classe;Courriel;Tél. portable;Courriel mère;\
                    Courriel élève;Courriel responsable 1;Adresse\n\
                    1;Roux;Léo;15/03/2012;4 A;a@example.org;0612345678;b@example.org;leo@example.org;;\n";
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.unread,
            ["Courriel", "Tél. portable", "Courriel mère"]
        );
        assert!(parsed.contacts.email[0] && !parsed.contacts.phone[0]);
    }

    /// A file whose dates are day/month/year (one says so: `25/12/2011`)
    /// and one month/day/year date: that one is a typo, a bad row of its
    /// own, not a reason to refuse the file.
    #[test]
    fn one_month_first_date_among_day_first_ones_is_a_bad_row() {
        let text = [
            "student_id;family_name;given_name;birthdate;class",
            "1;Baillet;Julie;25/12/2011;5 B",
            "2;Roux;Léo;10/13/2011;4 A",
            "3;Petit;Léa;03/04/2011;4 A",
        ]
        .join("\n");
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.refused.len(), 1);
        assert_eq!(parsed.refused[0].line, 3);
    }

    /// A cell holding the separator without quotes shifts the rest of its
    /// row: a bad row, not a guardian named after a street.
    #[test]
    fn a_row_with_more_cells_than_the_header_is_a_bad_row() {
        let text = [
            "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name",
            "1,Baillet,Julie,03/09/2012,5 B,Baillet,Marc,,,",
            "2,Roux,Léo,04/05/2011,12, rue de la Gare,Roux,Anne",
        ]
        .join("\r\n");
        let parsed = read(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.rows.len(),
            1,
            "trailing empty cells are a spreadsheet's"
        );
        assert_eq!(parsed.refused.len(), 1);
        assert_eq!(parsed.refused[0].line, 3);
        assert!(
            parsed.refused[0]
                .reason
                .contains("8 cellules et l'en-tête 7")
        );
    }

    /// One date only month/day/year reads (an English spreadsheet) refuses
    /// the file: its other dates would be read swapped.
    #[test]
    fn a_file_of_month_first_dates_is_refused_at_the_first_that_shows_it() {
        let header = "student_id;family_name;given_name;birthdate;class";
        let text = [
            header,
            "1;Baillet;Julie;9/3/2012;5 B",
            "2;Roux;Léo;2/13/2011;4 A",
            "3;Petit;Léa;12/13/2011;4 A",
        ]
        .join("\n");
        let errors = parse(text.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].reason.contains("mois/jour/année"));
        assert!(!month_day_year("13/02/2011") && !month_day_year("2011-02-13"));
    }

    #[test]
    fn utf16_text_with_its_bom_is_read() {
        let text = "student_id\tfamily_name\tgiven_name\tbirthdate\tclass\r\n1\tBaillet\tBénédicte\t03/09/2012\t5 B\r\n";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        // Without the BOM too (a script's export).
        let (le_bare, be_bare) = (le[2..].to_vec(), be[2..].to_vec());
        for bytes in [le, be, le_bare, be_bare] {
            let rows = parse(&bytes).unwrap();
            assert_eq!(rows[0].given_name.as_str(), "Bénédicte");
        }
    }

    /// An image or an archive picked by mistake is said to be no text file,
    /// not a file whose columns are missing.
    #[test]
    fn a_binary_file_is_no_text_file() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0\x08\x06\0\0\0";
        let gzip = b"\x1f\x8b\x08\0\0\0\0\0\0\x03\xed\xbd\x07\x60\x1c\x49";
        for bytes in [&png[..], &gzip[..]] {
            let errors = parse(bytes).unwrap_err();
            assert_eq!(errors[0].reason, BINARY, "{bytes:?}");
        }
    }

    /// A stray quote closed by a later quoted cell: the rows between become
    /// one cell of a row that still reads well, and their pupils would
    /// vanish without an error.
    #[test]
    fn a_stray_quote_closed_rows_later_refuses_the_file_at_its_row() {
        let text = [
            "student_id;family_name;given_name;birthdate;class;observations",
            "1;Baillet;Julie;03/09/2012;5 B;\"PAI",
            "2;Roux;Léo;02/02/2011;4 A;",
            "3;Petit;Léa;01/01/2011;4 A;\"Asthme\"",
            "4;Morel;Inès;05/05/2011;4 A;",
            "",
        ]
        .join("\r\n");
        let errors = parse(text.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2, "{}", errors[0]);
        assert!(errors[0].reason.contains("guillemet"));
        // Closed early in the next row by its quoted name: the rest of that
        // row would follow as cells of the first.
        let early = [
            "student_id;family_name;given_name;birthdate;class;observations",
            "1;Baillet;Julie;03/09/2012;5 B;\"PAI",
            "2;\"Le Roux\";Léo;02/02/2011;4 A;",
            "",
        ]
        .join("\r\n");
        let errors = parse(early.as_bytes()).unwrap_err();
        assert_eq!(errors[0].line, 2, "{}", errors[0]);
        assert!(errors[0].reason.contains("guillemet"));
        // A cell of several lines, quoted and closed, with a few separators
        // of its own, is read as it is.
        let address = [
            "student_id;family_name;given_name;birthdate;class;observations",
            "1;Baillet;Julie;03/09/2012;5 B;\"PAI ; voir infirmière\r\nAsthme ; Ventoline\"",
            "2;Roux;Léo;02/02/2011;4 A;",
            "",
        ]
        .join("\r\n");
        assert_eq!(parse(address.as_bytes()).unwrap().len(), 2);
    }

    /// A quote opened in a cell and never closed: the csv reader would take
    /// the rest of the file as that cell, without an error.
    #[test]
    fn a_quote_never_closed_refuses_the_file_at_its_row() {
        let header = "student_id;family_name;given_name;birthdate;class;observations";
        let text = [
            header,
            "1;Baillet;Julie;03/09/2012;5 B;",
            "2;Roux;Léo;02/02/2011;4 A;\"Allergie",
            "3;Petit;Léa;01/01/2011;4 A;",
            "",
        ]
        .join("\r\n");
        let errors = parse(text.as_bytes()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3, "{}", errors[0]);
        assert!(errors[0].reason.contains("guillemet"));
        // A closed multi-line cell, last in the file, is no such thing.
        let closed = [
            header,
            "1;Baillet;Julie;03/09/2012;5 B;\"Allergie\r\n\"\"arachide\"\"\"",
            "",
        ]
        .join("\r\n");
        assert_eq!(parse(closed.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn student_numbers_are_ascii_letters_digits_and_separators() {
        for number in [
            "1001",
            "070803070AJ",
            "INE-0708",
            "2024/17",
            "a_b.c",
            "2024.1",
        ] {
            assert_eq!(StudentNumber::parse(number).unwrap().as_str(), number);
        }
        // A whole number written as a decimal is the number, also as
        // stored by an earlier version.
        for decimal in ["123.0", "00123.00"] {
            assert_eq!(
                StudentNumber::parse(decimal).unwrap().key(),
                StudentNumber::parse("123").unwrap().key()
            );
            assert_eq!(StudentNumber::key_of(decimal), "123");
        }
        for hostile in [
            "",
            "<b>1</b>",
            "=1+1",
            "-1",
            "/1",
            "1 001",
            "1\t2",
            "n°1",
            "1;2",
            "1'2",
            &"1".repeat(65),
        ] {
            assert!(StudentNumber::parse(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn rows_are_numbered_as_spreadsheets_show_them() {
        let lines = |text: &str| match parse(text.as_bytes()) {
            Ok(_) => vec![],
            Err(errors) => errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        };
        let header = "student_id,family_name,given_name,birthdate,class";
        let good = "1,Baillet,Julie,2012-09-03,5 B";
        let bad = "2,Petit,,2011-01-20,4 A";
        for end in ["\n", "\r\n", "\r"] {
            let text = [header, good, bad, "", bad.replace('2', "3").as_str()].join(end);
            assert_eq!(lines(&text), [3, 5], "rows ending with {end:?}");
            // Blank lines before the header are rows too.
            assert_eq!(lines(&format!("{end}{end}{text}")), [5, 7]);
            // A cell holding a line break stays in its row.
            let text = [header, "1,\"Bail\r\nlet\",Julie,2012-09-03,5 B", bad].join(end);
            assert_eq!(lines(&text), [2, 3], "rows ending with {end:?}");
        }
    }

    /// A title above the header, as exports put one: the header is found
    /// below it, and rows keep the numbers the spreadsheet shows.
    #[test]
    fn a_title_above_the_header_is_passed_over() {
        for end in ["\n", "\r\n", "\r"] {
            let text = [
                "Liste des élèves — Collège Jean Moulin;;;;",
                "Extraction du 01/09/2026",
                "",
                "N° élève;Nom;Prénom;Date de naissance;Classe",
                "1;Baillet;Julie;03/09/2012;5 B",
                "2;Petit;;04/05/2011;4 A",
            ]
            .join(end);
            let parsed = read(text.as_bytes()).unwrap();
            assert_eq!(parsed.rows.len(), 1, "{end:?}");
            assert_eq!(parsed.rows[0].line, 5, "{end:?}");
            assert_eq!(parsed.refused[0].line, 6, "{end:?}");
        }
        // A file without its columns is still told which are missing.
        let errors = parse("Liste des élèves\nNom;Prénom\n".as_bytes()).unwrap_err();
        assert!(
            errors[0].reason.contains("colonnes manquantes"),
            "{errors:?}"
        );
    }

    /// A workbook or a PDF picked instead of the CSV export is said so.
    #[test]
    fn a_workbook_or_a_pdf_is_named_for_what_it_is() {
        for (bytes, reason) in [
            (
                &b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml"[..],
                WORKBOOK,
            ),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", WORKBOOK),
            (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", PDF),
        ] {
            let errors = read(bytes).unwrap_err();
            assert_eq!(errors.len(), 1);
            assert_eq!((errors[0].line, errors[0].reason.as_str()), (0, reason));
        }
    }

    /// A header with no row under it (the wrong sheet exported, or blank
    /// lines and empty cells only) is refused, not previewed as « rien à faire ».
    #[test]
    fn a_header_alone_is_refused() {
        for text in [
            "N° élève;Nom;Prénom;Né le;Classe\r\n",
            "N° élève;Nom;Prénom;Né le;Classe\r\n;;;;\r\n\r\n;;;;\r\n",
        ] {
            let errors = read(text.as_bytes()).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].line, 0);
            assert_eq!(errors[0].reason, NO_ROWS);
        }
    }

    /// A header's control characters (a terminal's escape sequences) never
    /// reach the message that names it.
    #[test]
    fn a_header_is_named_without_its_control_characters() {
        let text = "N° élève;Nom\u{1b}[31m;Prénom;Né le;Classe;Nom\u{1b}[31m\n";
        let errors = parse(text.as_bytes()).unwrap_err();
        let message = errors[0].to_string();
        assert!(!message.contains('\u{1b}'), "{message:?}");
        assert!(message.contains("Nom\u{fffd}[31m"), "{message:?}");
    }

    /// One parent in both guardians' columns is one guardian; two parents
    /// of one name with other addresses stay two.
    #[test]
    fn the_same_parent_as_both_guardians_is_one_guardian() {
        let header = "student_id;family_name;given_name;birthdate;class;\
            guardian1_family_name;guardian1_given_name;guardian1_email;guardian1_phone;\
            guardian2_family_name;guardian2_given_name;guardian2_email;guardian2_phone";
        let text = [
            header,
            "1;Roux;Léo;04/05/2011;4 A;Roux;Anne;anne@example.org;;ROUX;Anne;;06 12 34 56 78",
            "2;Roux;Lou;04/05/2013;6 B;Roux;Dominique;d1@example.org;;Roux;Dominique;d2@example.org;",
        ]
        .join("\n");
        let rows = parse(text.as_bytes()).unwrap();
        assert_eq!(rows[0].guardians.len(), 1);
        let anne = &rows[0].guardians[0];
        assert_eq!(
            anne.email.as_ref().map(EmailAddress::as_str),
            Some("anne@example.org")
        );
        assert_eq!(anne.phone.as_ref().map(Phone::as_str), Some("+33612345678"));
        assert_eq!(rows[1].guardians.len(), 2);
    }

    #[test]
    fn one_phone_has_one_spelling_in_e164() {
        for spelling in [
            "06 12 34 56 78",
            "06.12.34.56.78",
            "0612345678",
            "+33 6.12.34.56.78",
            "+33 (0)6 12 34 56 78",
            "0033 6 12 34 56 78",
            "+330612345678",
            // A cell a spreadsheet took for a number lost its `0` or its `+`.
            "612345678",
            "33612345678",
        ] {
            assert_eq!(
                Phone::parse(spelling).unwrap().as_str(),
                "+33612345678",
                "{spelling}"
            );
        }
        assert_eq!(
            Phone::parse("0692 12 34 56").unwrap().as_str(),
            "+262692123456"
        );
        assert_eq!(
            Phone::parse("06 90 12 34 56").unwrap().as_str(),
            "+590690123456"
        );
        assert_eq!(
            Phone::parse("+44 7911 123456").unwrap().as_str(),
            "+447911123456"
        );
        assert_eq!(
            Phone::parse("0032 470 12 34 56").unwrap().as_str(),
            "+32470123456"
        );
        assert!(Phone::parse("appelez-moi").is_err());
        assert!(Phone::parse("12345678").is_err(), "neither 0 nor +");
        assert!(Phone::parse("+33 6 12").is_err(), "too short");
        assert!(Phone::parse("+33 6 12 34 56 7").is_err(), "a digit short");
        // Mobiles take an SMS; French landlines do not.
        for (number, sms) in [
            ("06 12 34 56 78", true),
            ("07 12 34 56 78", true),
            ("01 23 45 67 89", false),
            ("09 70 12 34 56", false),
            ("0692 12 34 56", true),
            ("0262 12 34 56", false),
            ("+44 7911 123456", true),
        ] {
            let stored = Phone::parse(number).unwrap();
            assert_eq!(Phone::takes_sms(stored.as_str()), sms, "{number}");
        }
        assert!(Phone::parse("+33 6 12 34 56 789").is_err(), "a digit long");
        // Spaces a spreadsheet writes as no-break ones.
        assert_eq!(
            Phone::parse("06\u{a0}12\u{a0}34\u{202f}56 78")
                .unwrap()
                .as_str(),
            "+33612345678"
        );
    }
}
