//! Validated values: a raw string from a form, a file or the command line becomes
//! one of these once, at the edge; inside Clef only the types travel.

mod locale;
mod names;
mod params;
mod redirect_uri;
pub mod typography;

pub use locale::Locale;
pub use names::{BirthDate, ClassName, EmailAddress, Identifier, PersonName, Rank, Uai, invisible};
pub use params::Params;
pub use redirect_uri::{RedirectUri, is_loopback, is_loopback_ip};

use std::fmt;

/// Why a field was refused. `Display` is the French sentence shown to people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong {
        max: usize,
    },
    ControlCharacter,
    Invalid,
    /// A character the letters' fonts do not have (an emoji, a Chinese
    /// character), in a text they print.
    NotPrintable(char),
}

impl FieldError {
    pub fn new(field: &'static str, problem: Problem) -> Self {
        Self { field, problem }
    }

    /// The refusal as a client reads it: English and ASCII only, as RFC 6749
    /// §5.2 requires of `error_description` (the French sentence is for pages).
    pub fn wire_description(&self) -> String {
        let field = match self.field {
            name if name.is_ascii() => format!("parameter {name}"),
            _ => "a parameter".to_owned(),
        };
        match self.problem {
            Problem::Empty => format!("{field} is missing or empty"),
            Problem::TooLong { max } => format!("{field} is longer than {max} characters"),
            Problem::ControlCharacter => format!("{field} contains control characters"),
            Problem::Invalid => format!("{field} is invalid (repeated, or not UTF-8)"),
            Problem::NotPrintable(c) => {
                format!(
                    "{field} holds a character letters cannot print (U+{:04X})",
                    u32::from(c)
                )
            }
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field;
        match self.problem {
            Problem::Empty => write!(f, "Le champ « {field} » est obligatoire."),
            Problem::TooLong { max } => {
                write!(
                    f,
                    "Le champ « {field} » ne peut pas dépasser {max} caractères."
                )
            }
            Problem::ControlCharacter => {
                write!(
                    f,
                    "Le champ « {field} » contient des caractères non autorisés."
                )
            }
            Problem::Invalid => write!(f, "Le champ « {field} » n'est pas valide."),
            Problem::NotPrintable(c) => write!(
                f,
                "Le champ « {field} » contient un caractère que les courriers ne peuvent pas imprimer : « {c} »."
            ),
        }
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn client_facing_descriptions_are_ascii() {
        for error in [
            FieldError::new("code", Problem::Invalid),
            FieldError::new("paramètre", Problem::Empty),
            FieldError::new("paramètre", Problem::TooLong { max: 65536 }),
            FieldError::new("state", Problem::ControlCharacter),
        ] {
            let description = error.wire_description();
            assert!(
                description.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "{description}"
            );
            assert_ne!(description, error.to_string());
        }
    }
}

/// The common gate of every text field: trimmed, not empty, at most `max`
/// characters, no control characters (tabs and newlines included).
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    // Nothing that shows (fillers, joiners, marks alone): as empty.
    if !value.chars().any(names::shows) {
        return Err(FieldError::new(field, Problem::Empty));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(field, Problem::TooLong { max }));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, Problem::ControlCharacter));
    }
    Ok(value.to_owned())
}

/// [`text`] that is also shown as it reads (a service's name on the consent
/// page): without Unicode's direction marks, embeddings, overrides and
/// isolates, invisible characters that make a text read otherwise than it
/// is written (`lpP\u{202e}moc.elgoog` shown ending in `google.com`).
/// (People's names explain such a character instead: `PersonName`.)
pub fn shown_text(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    let value = text(field, raw, max)?;
    // (and the line and paragraph separators, which break a line where none shows)
    let turns_around = |c: char| matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if value.chars().any(turns_around) {
        return Err(FieldError::new(field, Problem::ControlCharacter));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_text_has_no_character_that_turns_it_around() {
        assert_eq!(shown_text("nom", "Cantine ✓", 100).unwrap(), "Cantine ✓");
        for blank in [
            "\u{3164}",
            "\u{200b}",
            "\u{115f}\u{3164}",
            "\u{301}\u{302}",
            " \u{a0} ",
        ] {
            assert_eq!(
                shown_text("nom", blank, 100).unwrap_err().problem,
                Problem::Empty,
                "{blank:?}"
            );
        }
        assert_eq!(shown_text("nom", "é", 100).unwrap(), "é");
        assert_eq!(
            shown_text("contact", "a\u{2028}b", 100)
                .unwrap_err()
                .problem,
            Problem::ControlCharacter
        );
        for hostile in ["Cantine \u{202e}sulP", "a\u{2067}b", "a\u{200f}b"] {
            assert_eq!(
                shown_text("nom", hostile, 100).unwrap_err().problem,
                Problem::ControlCharacter,
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn text_refuses_empty_long_and_control_characters() {
        assert_eq!(text("nom", "  Zoé ", 10).unwrap(), "Zoé");
        assert_eq!(text("nom", "   ", 10).unwrap_err().problem, Problem::Empty);
        assert_eq!(
            text("nom", &"é".repeat(11), 10).unwrap_err().problem,
            Problem::TooLong { max: 10 }
        );
        for hostile in ["a\u{0}b", "a\nb", "a\u{1b}[31m", "a\u{7f}", "a\u{85}b"] {
            assert_eq!(
                text("nom", hostile, 10).unwrap_err().problem,
                Problem::ControlCharacter
            );
        }
    }
}
