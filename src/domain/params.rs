//! Query strings and form bodies, decoded strictly: percent-decoding that is not
//! UTF-8, repeated parameters, control characters and oversized values are
//! refused with the parameter's name, instead of being silently replaced.

use std::collections::HashMap;

use percent_encoding::percent_decode;

use super::{FieldError, Problem};

/// The parameters that carry a signed token (a JWT).
const TOKEN_PARAMS: [&str; 3] = ["id_token_hint", "request", "client_assertion"];

/// Decoded `application/x-www-form-urlencoded` parameters.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Longest value accepted for any parameter; each field has its own, lower, bound.
    pub const MAX_VALUE: usize = 4096;
    /// Longest value of a parameter that carries a signed token
    /// ([`TOKEN_PARAMS`]): Clef's own ID token as `id_token_hint` holds the
    /// `children` of a large family (~300 characters a child).
    pub const MAX_TOKEN: usize = 16384;
    const MAX_PARAMS: usize = 64;

    /// The longest value the parameter `name` may have.
    fn max_value(name: &str) -> usize {
        if TOKEN_PARAMS.contains(&name) {
            Self::MAX_TOKEN
        } else {
            Self::MAX_VALUE
        }
    }

    pub fn parse(input: &[u8]) -> Result<Self, FieldError> {
        Self::parse_with(input, |value| value)
    }

    /// A form a person filled in: as [`parse`](Self::parse), but a tab is a
    /// space. A browser keeps the tabs of text pasted into a field (an
    /// address copied from a spreadsheet's cells), which no one means to type.
    pub fn parse_typed(input: &[u8]) -> Result<Self, FieldError> {
        Self::parse_with(input, |value| match value.contains('\t') {
            true => value.replace('\t', " "),
            false => value,
        })
    }

    fn parse_with(input: &[u8], typed: fn(String) -> String) -> Result<Self, FieldError> {
        let mut map = HashMap::new();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name).map_err(|_| FieldError::new("paramètre", Problem::Invalid))?;
            let field = field_name(&name);
            if name.len() > 64 || name.chars().any(char::is_control) {
                return Err(FieldError::new("paramètre", Problem::Invalid));
            }
            let value = decode(value).map_err(|_| FieldError::new(field, Problem::Invalid))?;
            let value = typed(value);
            let max = Self::max_value(&name);
            if value.chars().count() > max {
                return Err(FieldError::new(field, Problem::TooLong { max }));
            }
            if value.chars().any(char::is_control) {
                return Err(FieldError::new(field, Problem::ControlCharacter));
            }
            // RFC 6749 §3.1: parameters MUST NOT be included more than once.
            if map.insert(name, value).is_some() || map.len() > Self::MAX_PARAMS {
                return Err(FieldError::new(field, Problem::Invalid));
            }
        }
        Ok(Self(map))
    }

    /// What is left of `input` that [`parse`](Self::parse) refused: only the
    /// parameters `names` that appear once, decode and hold a value within
    /// bounds; the rest is ignored. Enough of a bad authorization request to
    /// send its error back to the client (RFC 6749 §4.1.2.1) when its
    /// `client_id` and `redirect_uri` are sound.
    pub fn lenient(input: &[u8], names: &[&str]) -> Self {
        let mut found: HashMap<String, Option<String>> = HashMap::new();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let Ok(name) = decode(name) else { continue };
            if !names.contains(&name.as_str()) {
                continue;
            }
            let value = decode(value).ok().filter(|value| {
                value.chars().count() <= Self::max_value(&name)
                    && !value.chars().any(char::is_control)
            });
            found
                .entry(name)
                .and_modify(|seen| *seen = None)
                .or_insert(value);
        }
        Self(
            found
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?)))
                .collect(),
        )
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A password-like field, empty when absent, wrapped so it never prints.
    pub fn secret(&self, name: &str) -> secrecy::SecretString {
        self.get(name).unwrap_or("").to_owned().into()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every parameter, in no particular order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Parameters decoded elsewhere (a request object's claims, a pushed
    /// request), held to the same bounds as a query string.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, FieldError> {
        let mut map = HashMap::new();
        for (name, value) in pairs {
            let field = field_name(&name);
            if name.len() > 64 || name.chars().any(char::is_control) {
                return Err(FieldError::new("paramètre", Problem::Invalid));
            }
            let max = Self::max_value(&name);
            if value.chars().count() > max {
                return Err(FieldError::new(field, Problem::TooLong { max }));
            }
            if value.chars().any(char::is_control) {
                return Err(FieldError::new(field, Problem::ControlCharacter));
            }
            map.insert(name, value);
            if map.len() > Self::MAX_PARAMS {
                return Err(FieldError::new(field, Problem::Invalid));
            }
        }
        Ok(Self(map))
    }
}

fn decode(raw: &[u8]) -> Result<String, std::str::Utf8Error> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
}

/// Field errors name a `&'static str`; known parameters keep their own name.
fn field_name(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "client_id",
        "redirect_uri",
        "response_type",
        "response_mode",
        "scope",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "login_hint",
        "code_challenge",
        "code_challenge_method",
        "ui_locales",
        "id_token_hint",
        "grant_type",
        "code",
        "code_verifier",
        "client_secret",
        "access_token",
        "identifier",
        "password",
        "request",
        "csrf",
    ];
    KNOWN
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("paramètre")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_of_a_refused_request_is_the_names_asked_each_once_and_sound() {
        let names = ["client_id", "redirect_uri", "state"];
        let input =
            b"client_id=ent&redirect_uri=https%3A%2F%2Frp%2Fcb&state=a&state=b&nonce=%FF&x=1";
        assert!(Params::parse(input).is_err());
        let left = Params::lenient(input, &names);
        assert_eq!(left.get("client_id"), Some("ent"));
        assert_eq!(left.get("redirect_uri"), Some("https://rp/cb"));
        assert_eq!(left.get("state"), None, "repeated: neither");
        assert!(!left.contains("nonce") && !left.contains("x"));
        let bad = Params::lenient(b"client_id=%FF&redirect_uri=a%00b", &names);
        assert!(!bad.contains("client_id") && !bad.contains("redirect_uri"));
    }

    #[test]
    fn decodes_percent_and_plus() {
        let params = Params::parse(b"a=b%20c+d&scope=openid+profile&empty=").unwrap();
        assert_eq!(params.get("a"), Some("b c d"));
        assert_eq!(params.get("scope"), Some("openid profile"));
        assert_eq!(params.get("empty"), None);
    }

    #[test]
    fn refuses_non_utf8_duplicates_control_characters_and_oversize() {
        assert_eq!(Params::parse(b"state=%FF%FE").unwrap_err().field, "state");
        assert_eq!(
            Params::parse(b"state=a&state=b").unwrap_err().problem,
            Problem::Invalid
        );
        assert_eq!(
            Params::parse(b"state=a%00b").unwrap_err().problem,
            Problem::ControlCharacter
        );
        assert_eq!(
            Params::parse(b"state=a%0Ab").unwrap_err().problem,
            Problem::ControlCharacter
        );
        assert_eq!(
            Params::parse(b"state=a%09b").unwrap_err().problem,
            Problem::ControlCharacter
        );
        let typed = Params::parse_typed(b"address=12%09rue+Nationale").unwrap();
        assert_eq!(typed.get("address"), Some("12 rue Nationale"));
        assert_eq!(
            Params::parse_typed(b"address=12%0Arue")
                .unwrap_err()
                .problem,
            Problem::ControlCharacter
        );
        let long = format!("state={}", "a".repeat(Params::MAX_VALUE + 1));
        assert!(matches!(
            Params::parse(long.as_bytes()).unwrap_err().problem,
            Problem::TooLong { .. }
        ));
        assert!(Params::parse(b"%FF=1").is_err());
    }
}
