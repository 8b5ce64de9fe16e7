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
        // A Mac exports `é` as `e` + combining accent: composed, it is one
        // letter. Two spaces, or a no-break one, look like one in a
        // spreadsheet: they are one (« Le  Gall » is « Le Gall »).
        let spaced = raw
            .split([' ', '\u{a0}', '\u{202f}'])
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .replace(['’', '‘', 'ʼ'], "'");
        let value = text(field, &spaced.nfc().collect::<String>(), Self::MAX)?;
        let inner = |c: char| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'');
        let starts_and_ends_with_letters =
            value.starts_with(char::is_alphabetic) && value.ends_with(char::is_alphabetic);
        if !(starts_and_ends_with_letters && value.chars().all(inner)) {
            return Err(FieldError::new(field, Problem::Invalid));
        }
        Ok(Self(value))
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
            return Err(FieldError::new("UAI", Problem::Invalid));
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

/// A birth date, typed as `jj/mm/aaaa` (as on French forms) or ISO `aaaa-mm-jj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate(Date);

impl BirthDate {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = text("date de naissance", raw, 10)?;
        let invalid = || FieldError::new("date de naissance", Problem::Invalid);
        let parts: Vec<&str> = value.split(['/', '-']).collect();
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

    /// Whether `raw`, written as dates are (`31/02/2013`, `2013-02-31`), is
    /// refused because its month has no such day (said so, rather than how
    /// to write a date).
    pub fn no_such_day(raw: &str) -> bool {
        let parts: Vec<&str> = raw.split(['/', '-']).collect();
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
        let Ok(now) = time::OffsetDateTime::from_unix_timestamp(now) else {
            return false;
        };
        let (today, born) = (now.date(), self.0);
        let years = today.year() - born.year();
        years > 18
            || (years == 18
                && (u8::from(today.month()), today.day()) >= (u8::from(born.month()), born.day()))
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
            "a\u{200b}b",
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
        for hostile in [
            "31/02/2012",
            "2012-13-01",
            "1/1/12",
            "aa/bb/cccc",
            "03/09/1850",
            "03.09.2012",
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
