//! Identifiers, names, addresses and dates of the school domain.

use std::fmt;

use serde::Serialize;
use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

use super::{FieldError, Problem, text};

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A login, e.g. `julie.baillet1`: ASCII lower case, digits, `.`, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Identifier(String);
string_newtype!(Identifier);

impl Identifier {
    pub const MAX: usize = 64;

    /// People type identifiers with capitals and stray spaces; both are forgiven.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = text("identifiant", raw, Self::MAX)?.to_ascii_lowercase();
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
        if !value.chars().all(allowed) || !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new("identifiant", Problem::Invalid));
        }
        Ok(Self(value))
    }
}

/// An email address, kept as typed except for the domain, which is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);
string_newtype!(EmailAddress);

impl EmailAddress {
    /// RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address at most 254.
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = text("adresse mail", raw, Self::MAX)?;
        let invalid = || FieldError::new("adresse mail", Problem::Invalid);
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        // RFC 5322 §3.4.1 dot-atom (RFC 6531 lets it be UTF-8): no quoted
        // local parts, comments or brackets, which no school file needs.
        let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let local_ok = local.len() <= 64
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext));
        if !(domain_ok && local_ok) {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }
}

/// A given or family name: letters of any script (accents included), with
/// spaces, hyphens and apostrophes between them. Nothing else: names travel
/// into ID tokens, letters and the spreadsheets schools open. An apostrophe
/// has one spelling, `'`: « N’Diaye » typed in a word processor and
/// « N'Diaye » exported by the school's software are one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PersonName(String);
string_newtype!(PersonName);

impl PersonName {
    pub const MAX: usize = 100;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let value = text(field, &Self::normalized(raw), Self::MAX)?;
        if Self::refused(&value).is_some() {
            return Err(FieldError::new(field, Problem::Invalid));
        }
        Ok(Self(value))
    }

    /// What a name looks like wherever it was typed or exported. A Mac
    /// exports `é` as `e` + combining accent: composed, it is one letter. Two
    /// spaces, or a no-break one, look like one in a spreadsheet: they are
    /// one (« Le  Gall » is « Le Gall »). A word processor's hyphens (`‐`,
    /// the no-break `‑`, the en dash of « Marie–Claire ») are `-`; what
    /// shows nothing (a soft hyphen, a zero-width space, a direction mark
    /// pasted with an Arabic or Hebrew name) is left out.
    fn normalized(raw: &str) -> String {
        raw.split([' ', '\u{a0}', '\u{202f}'])
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .replace(['’', '‘', 'ʼ'], "'")
            .replace(['\u{2010}', '\u{2011}', '\u{2013}', '\u{2212}'], "-")
            .replace(
                [
                    '\u{ad}', '\u{200b}', '\u{200e}', '\u{200f}', '\u{2060}', '\u{feff}',
                ],
                "",
            )
            .nfc()
            .collect()
    }

    /// Why `raw`, not empty, is no name (`None`: it is one), said so that
    /// the one who typed it finds what to change.
    pub fn why_not(raw: &str) -> Option<NotAName> {
        Self::refused(Self::normalized(raw).trim())
    }

    fn refused(value: &str) -> Option<NotAName> {
        let inner = |c: char| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'');
        let mut odd: Vec<char> = Vec::new();
        for c in value.chars().filter(|&c| !inner(c)) {
            if !odd.contains(&c) {
                odd.push(c);
            }
        }
        if !odd.is_empty() {
            return Some(NotAName::Characters(odd));
        }
        let starts_and_ends_with_letters =
            value.starts_with(char::is_alphabetic) && value.ends_with(char::is_alphabetic);
        (!starts_and_ends_with_letters).then_some(NotAName::Ends)
    }
}

/// Why a text is no [`PersonName`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAName {
    /// Characters no name holds (a digit, `@`, a full stop…), each once.
    Characters(Vec<char>),
    /// It starts or ends with a space, a hyphen or an apostrophe.
    Ends,
}

impl NotAName {
    /// In French, for the import's report.
    pub fn french(&self) -> String {
        match self {
            Self::Characters(chars) => {
                let named: Vec<String> = chars.iter().map(|&c| shown(c)).collect();
                match named.len() {
                    1 => format!("{} n'a pas sa place dans un nom", named[0]),
                    _ => format!("{} n'ont pas leur place dans un nom", named.join(", ")),
                }
            }
            Self::Ends => "un nom commence et finit par une lettre".to_owned(),
        }
    }
}

/// Whether `c` shows nothing where it is: spaces other than the space,
/// controls, and Unicode's format characters (joiners, direction marks and
/// overrides, which would turn a report's line around).
pub fn invisible(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || c.is_control()
        || matches!(c, '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Whether `c` shows something: not a space, not [`invisible`], not a
/// combining mark alone, not a filler (Hangul's, Braille's blank), which
/// print as nothing.
pub(crate) fn shows(c: char) -> bool {
    c != ' '
        && !invisible(c)
        && !matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}'
            | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}' | '\u{115f}' | '\u{1160}'
            | '\u{17b4}' | '\u{17b5}' | '\u{2800}' | '\u{3164}' | '\u{ffa0}')
}

/// A character as a report names it: quoted when it shows (« @ »), by its
/// code point when it does not (« le caractère invisible U+200D »).
fn shown(c: char) -> String {
    if invisible(c) {
        format!("le caractère invisible U+{:04X}", u32::from(c))
    } else {
        format!("« {c} »")
    }
}

/// An establishment's UAI: 7 digits and a letter, e.g. `0590001A`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Uai(String);
string_newtype!(Uai);

impl Uai {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = text("UAI", raw, 8)?.to_ascii_uppercase();
        let bytes = value.as_bytes();
        if bytes.len() != 8
            || !bytes[..7].iter().all(u8::is_ascii_digit)
            || !bytes[7].is_ascii_uppercase()
        {
            // Its shape said in the field's name: « Le champ « UAI (…) » n'est pas valide. »
            return Err(FieldError::new(
                "UAI (7 chiffres et une lettre, par exemple 0590001A)",
                Problem::Invalid,
            ));
        }
        Ok(Self(value))
    }
}

/// A class as schools name them: `4 C`, `6EME2`, `TS1`, `2nde 3`, `1re S/2`,
/// `CM1-CM2`, `3°A`: letters (accents included), digits, spaces and a few
/// signs, starting with a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClassName(String);
string_newtype!(ClassName);

impl ClassName {
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = text("classe", &raw.nfc().collect::<String>(), Self::MAX)?;
        let allowed = |c: char| {
            c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '/' | '\'' | '’' | '°' | 'º')
        };
        if !(value.starts_with(char::is_alphanumeric) && value.chars().all(allowed)) {
            return Err(FieldError::new("classe", Problem::Invalid));
        }
        Ok(Self(value))
    }
}

/// Between a date's numbers: French forms' `/`, ISO's `-`, and the dots or
/// spaces people type.
const DATE_SEPARATORS: [char; 4] = ['/', '-', '.', ' '];

/// A birth date, typed as `jj/mm/aaaa` (as on French forms; also `jj.mm.aaaa`,
/// `jj mm aaaa` or `jjmmaaaa`, as a phone's keypad allows) or ISO `aaaa-mm-jj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate(Date);

impl BirthDate {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = text("date de naissance", raw, 10)?;
        let invalid = || FieldError::new("date de naissance", Problem::Invalid);
        let value = Self::separated(value);
        let parts: Vec<&str> = value.split(DATE_SEPARATORS).collect();
        let [a, b, c] = parts.as_slice() else {
            return Err(invalid());
        };
        let (year, month, day) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
        let number = |s: &str, len: std::ops::RangeInclusive<usize>| {
            if len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u16>().ok()
            } else {
                None
            }
        };
        let year = number(year, 4..=4).ok_or_else(invalid)?;
        let month = number(month, 1..=2)
            .and_then(|m| Month::try_from(m as u8).ok())
            .ok_or_else(invalid)?;
        let day = number(day, 1..=2).ok_or_else(invalid)?;
        if !(1900..=2100).contains(&year) {
            return Err(invalid());
        }
        Date::from_calendar_date(i32::from(year), month, day as u8)
            .map(Self)
            .map_err(|_| invalid())
    }

    /// A phone's digit keypad has no slash: `14052013` is `14/05/2013`.
    fn separated(value: String) -> String {
        match value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
            true => format!("{}/{}/{}", &value[..2], &value[2..4], &value[4..]),
            false => value,
        }
    }

    /// Whether `raw`, written as dates are (`31/02/2013`, `2013-02-31`), is
    /// refused because its month has no such day (said so, rather than how
    /// to write a date).
    pub fn no_such_day(raw: &str) -> bool {
        let raw = Self::separated(raw.trim().to_owned());
        let parts: Vec<&str> = raw.split(DATE_SEPARATORS).collect();
        let numbers: Option<Vec<u16>> = parts.iter().map(|p| p.parse().ok()).collect();
        matches!(
            (parts.as_slice(), numbers.as_deref()),
            ([_, _, year], Some(&[day, month, _])) | ([year, _, _], Some(&[_, month, day]))
                if year.len() == 4 && (1..=12).contains(&month) && (29..=31).contains(&day)
        )
    }

    /// Whether the date is after the day of `now` (Unix seconds, UTC).
    pub fn is_after_the_day_of(&self, now: i64) -> bool {
        time::OffsetDateTime::from_unix_timestamp(now).is_ok_and(|now| self.0 > now.date())
    }

    /// Whether the person born that day is 18 or older on the day of `now`
    /// (Unix seconds, UTC); born on 29 February, from 1 March of a common year.
    pub fn is_adult_on(&self, now: i64) -> bool {
        self.age_on(now) >= 18
    }

    /// The person's age in whole years on the day of `now` (Unix seconds,
    /// UTC); born on 29 February, a year older from 1 March of a common year.
    pub fn age_on(&self, now: i64) -> i32 {
        let Ok(now) = time::OffsetDateTime::from_unix_timestamp(now) else {
            return 0;
        };
        let (today, born) = (now.date(), self.0);
        let years = today.year() - born.year();
        let before_birthday =
            (u8::from(today.month()), today.day()) < (u8::from(born.month()), born.day());
        years - i32::from(before_birthday)
    }

    /// As French forms write it: `jj/mm/aaaa`.
    pub fn french(&self) -> String {
        let d = self.0;
        format!("{:02}/{:02}/{:04}", d.day(), u8::from(d.month()), d.year())
    }

    /// ISO 8601, as stored and as the `birthdate` claim (OIDC Core §5.1).
    pub fn iso(&self) -> String {
        let d = self.0;
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

/// The legal rank of a guardian: responsable légal 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rank(u8);

impl Rank {
    pub fn new(rank: u8) -> Result<Self, FieldError> {
        match rank {
            1 | 2 => Ok(Self(rank)),
            _ => Err(FieldError::new("rang", Problem::Invalid)),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_is_of_age_from_their_eighteenth_birthday() {
        let at = |date: &str| {
            time::PrimitiveDateTime::parse(
                &format!("{date}T12:00:00"),
                &time::format_description::well_known::Iso8601::DEFAULT,
            )
            .unwrap()
            .assume_utc()
            .unix_timestamp()
        };
        let born = BirthDate::parse("14/05/2008").unwrap();
        assert!(!born.is_adult_on(at("2026-05-13")));
        assert!(born.is_adult_on(at("2026-05-14")));
        let leap = BirthDate::parse("29/02/2008").unwrap();
        assert!(!leap.is_adult_on(at("2026-02-28")));
        assert!(leap.is_adult_on(at("2026-03-01")));
    }

    #[test]
    fn identifiers_are_lower_case_ascii() {
        assert_eq!(
            Identifier::parse(" Julie.Baillet1 ").unwrap().as_str(),
            "julie.baillet1"
        );
        for hostile in [
            "",
            "julie baillet",
            "jülie",
            "a/b",
            ".julie",
            "a\u{0}",
            &"a".repeat(65),
            "julie@x",
        ] {
            assert!(Identifier::parse(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn email_addresses_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            EmailAddress::parse("Parent@Exemple.FR").unwrap().as_str(),
            "Parent@exemple.fr"
        );
        for address in [
            "marc.baillet+ecole@example.org",
            "o'neil@example.org",
            "zoé@exemple.fr",
        ] {
            assert_eq!(EmailAddress::parse(address).unwrap().as_str(), address);
        }
        for hostile in [
            "",
            "parent",
            "parent@",
            "@exemple.fr",
            "parent@exemple",
            "pa rent@exemple.fr",
            "parent@exe mple.fr",
            "a@b@c.fr",
            "parent@-x.fr",
            "a\n@b.fr",
            "<a>@b.fr",
            "\"<script>\"@b.fr",
            "a(comment)@b.fr",
            "a[1]@b.fr",
            "a\\b@b.fr",
            "a:b@b.fr",
            ".a@b.fr",
            "a.@b.fr",
            "a..b@b.fr",
            "a@b.fr<script>",
            "a@<b>.fr",
        ] {
            assert!(EmailAddress::parse(hostile).is_err(), "{hostile:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@exemple.fr", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_keep_accents_hyphens_and_apostrophes() {
        for name in [
            "N'Diaye-Lefèvre",
            "D'Artagnan",
            "Jean Pierre",
            "Zoé",
            "Ærøskøbing",
            "Łukasz",
            "李",
            "O",
        ] {
            assert_eq!(PersonName::parse("nom", name).unwrap().as_str(), name);
        }
        // A typographic apostrophe is the apostrophe.
        for typographic in ["N’Diaye", "N‘Diaye", "NʼDiaye"] {
            assert_eq!(
                PersonName::parse("nom", typographic).unwrap().as_str(),
                "N'Diaye"
            );
        }
        // Decomposed accents (as a Mac exports them) are composed.
        assert_eq!(
            PersonName::parse("nom", "Zoe\u{301}").unwrap().as_str(),
            "Zoé"
        );
        // Spaces a spreadsheet shows as one are one.
        for spaced in ["Le  Gall", "Le\u{a0}Gall", " Le \u{202f} Gall "] {
            assert_eq!(
                PersonName::parse("nom", spaced).unwrap().as_str(),
                "Le Gall"
            );
        }
        // A word processor's hyphens are the hyphen; what shows nothing is
        // left out (a zero-width space pasted from a web page).
        for pasted in [
            "Marie\u{2013}Claire",
            "Marie\u{2011}Claire",
            "Marie\u{2010}Claire",
            "Ma\u{ad}rie-Cl\u{200b}aire\u{200e}",
            "\u{feff}Marie-Claire",
        ] {
            assert_eq!(
                PersonName::parse("nom", pasted).unwrap().as_str(),
                "Marie-Claire"
            );
        }
        for hostile in [
            "<script>",
            "<script>alert(1)</script>",
            "=1+1",
            "+33 cmd",
            "-cmd|' /C calc'!A0",
            "@SUM(1+1)",
            "Zoé2",
            "a\tb",
            "a\u{0}b",
            "a\u{202e}b",
            "a\u{200d}b",
            "Léa;",
            "Léa\"",
            "{{ 7*7 }}",
            "-Léa",
            "Léa-",
            "'Léa",
            "Léa.",
            "#Léa",
        ] {
            assert_eq!(
                PersonName::parse("nom", hostile).unwrap_err().problem,
                if hostile.chars().any(char::is_control) {
                    Problem::ControlCharacter
                } else {
                    Problem::Invalid
                },
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn a_refused_name_says_what_to_change() {
        let why = |raw| PersonName::why_not(raw).map(|w| w.french());
        assert_eq!(why("Léa-Rose"), None);
        assert_eq!(why("R0ux").unwrap(), "« 0 » n'a pas sa place dans un nom");
        assert_eq!(
            why("J. M@rc.").unwrap(),
            "« . », « @ » n'ont pas leur place dans un nom"
        );
        assert_eq!(
            why("Ro\u{200d}ux").unwrap(),
            "le caractère invisible U+200D n'a pas sa place dans un nom"
        );
        assert_eq!(
            why("-Léa").unwrap(),
            "un nom commence et finit par une lettre"
        );
        assert_eq!(
            why("Léa'").unwrap(),
            "un nom commence et finit par une lettre"
        );
    }

    #[test]
    fn classes_are_letters_digits_spaces_and_a_few_signs() {
        for class in [
            "5 B",
            "6EME2",
            "TS1",
            "2nde 3",
            "6ème 2",
            "1re S/2",
            "CM1-CM2",
            "3°A",
            "PS_MS",
            "Term. G1",
            "4 l'Étoile",
        ] {
            assert_eq!(ClassName::parse(class).unwrap().as_str(), class);
        }
        for hostile in [
            "",
            "<script>alert(1)</script>",
            "@SUM(1+1)",
            "=1+1",
            "+2",
            "-cmd",
            "5 B;",
            "5\tB",
            "5\nB",
            "5 \"B\"",
            "5 B & C",
            "{{ 7*7 }}",
            "°A",
            &"A".repeat(33),
        ] {
            assert!(ClassName::parse(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn uai_is_seven_digits_and_a_letter() {
        assert_eq!(Uai::parse("0590001a").unwrap().as_str(), "0590001A");
        for hostile in ["059001A", "05900011", "A590001A", "0590001AB", "0590001É"] {
            assert!(Uai::parse(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn birth_dates_accept_french_and_iso_forms() {
        assert_eq!(BirthDate::parse("03/09/2012").unwrap().iso(), "2012-09-03");
        assert_eq!(BirthDate::parse("2012-09-03").unwrap().iso(), "2012-09-03");
        for typed in ["03092012", "03.09.2012", "03 09 2012", "3/9/2012"] {
            assert_eq!(
                BirthDate::parse(typed).unwrap().iso(),
                "2012-09-03",
                "{typed}"
            );
        }
        assert!(BirthDate::no_such_day("31022013") && BirthDate::no_such_day("31.02.2013"));
        for hostile in [
            "31/02/2012",
            "2012-13-01",
            "1/1/12",
            "aa/bb/cccc",
            "03/09/1850",
            "03..09.2012",
            "20120903",
            "0309201",
            "+2012-09-03",
        ] {
            assert!(BirthDate::parse(hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn ranks_are_one_or_two() {
        assert!(Rank::new(1).is_ok() && Rank::new(2).is_ok());
        assert!(Rank::new(0).is_err() && Rank::new(3).is_err());
    }
}
