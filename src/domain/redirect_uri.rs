//! Redirect URIs as clients register them (RFC 6749 §3.1.2, RFC 8252 §7, OIDC Core §3.1.2.1).

use std::fmt;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::{FieldError, Problem, text};

/// Why [`RedirectUri::check`] refused a URI; said in English and ASCII.
enum Refusal {
    /// Empty, too long, or with control characters.
    Field(FieldError),
    NotAbsolute,
    Fragment,
    UserInfo,
    Wildcard,
    HttpOffLoopback,
    Scheme,
    NotReverseDomain,
    /// Not as the browser will be sent back to it, which is this URL.
    NotAsWritten(Url),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(error) => f.write_str(&error.wire_description()),
            Self::NotAbsolute => f.write_str(
                "not an absolute URI (a scheme, then the rest: https://ent.example.fr/cb)",
            ),
            Self::Fragment => f.write_str("a redirect URI has no fragment (#)"),
            Self::UserInfo => f.write_str("a redirect URI holds no user name nor password"),
            Self::Wildcard => {
                f.write_str("no wildcard: redirect URIs are compared as whole strings")
            }
            Self::HttpOffLoopback => f.write_str(
                "plain http is for loopback only (127.0.0.1, [::1], localhost): use https",
            ),
            Self::Scheme => f.write_str("this scheme cannot be a redirect URI"),
            Self::NotReverseDomain => f.write_str(
                "a native app's own scheme is in reverse-domain form (fr.example.app:/cb)",
            ),
            Self::NotAsWritten(url) => write!(
                f,
                "not written as the URL Standard writes it (lower-case host, no default port, no \
                 dot segments, spaces and non-ASCII characters percent-encoded): register it as \
                 the browser will be sent back to it, {url}"
            ),
        }
    }
}

/// A URL on this machine (RFC 8252 §7.3, RFC 6761 §6.3): `localhost`, or an
/// IP address of 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    is_loopback_ip(url) || matches!(url.host(), Some(Host::Domain("localhost")))
}

/// A URL on a loopback IP address (not `localhost`, which DNS could name
/// elsewhere).
pub fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// A registered redirect URI. Matching is by exact string comparison (RFC 6749
/// §3.1.2.3 as tightened by the OAuth 2.0 Security BCP §4.1.3), so the string is
/// kept exactly as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub const MAX: usize = 2000;

    /// https anywhere; plain http only on the loopback interface (RFC 8252 §7.3);
    /// a private-use scheme in reverse-domain form for native apps (RFC 8252 §7.1).
    /// Written as the URL is sent back, so that the browser goes to the very
    /// string registered (OIDC Core §3.1.2.1): an absolute URI of RFC 3986
    /// in the URL Standard's own writing (lower-case scheme and host, no
    /// default port, no `..`, every other character escaped; `https:///cb`,
    /// which a parser reads as `https://cb/`, a space or an `é` are refused).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::check(raw).map_err(|refusal| match refusal {
            Refusal::Field(error) => error,
            _ => FieldError::new("redirect_uri", Problem::Invalid),
        })
    }

    /// [`Self::parse`], a refusal said in English and ASCII (the command
    /// line's message, a registration's `error_description`): what an
    /// integrator changes to have it taken.
    pub fn parse_or_why(raw: &str) -> Result<Self, String> {
        Self::check(raw).map_err(|refusal| refusal.to_string())
    }

    /// [`Self::parse`]'s rules, each refusal named.
    fn check(raw: &str) -> Result<Self, Refusal> {
        let value = text("redirect_uri", raw, Self::MAX).map_err(Refusal::Field)?;
        let url = Url::parse(&value).map_err(|_| Refusal::NotAbsolute)?;
        if url.fragment().is_some() || value.contains('#') {
            return Err(Refusal::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::UserInfo);
        }
        match url.scheme() {
            // A `*` names no host: no wildcard is ever meant (they are compared
            // as strings, OAuth 2.1 §2.3.1), and a reader would think one was.
            "https" if url.host_str().is_some_and(|host| host.contains('*')) => {
                return Err(Refusal::Wildcard);
            }
            "https" if url.host().is_none() => return Err(Refusal::NotAbsolute),
            "http" if !is_loopback(&url) => return Err(Refusal::HttpOffLoopback),
            "https" | "http" => {}
            "javascript" | "data" | "file" => return Err(Refusal::Scheme),
            scheme if !scheme.contains('.') => return Err(Refusal::NotReverseDomain),
            _ => {}
        }
        // `https://ent.example` is sent back as `https://ent.example/`, the same URL.
        let as_written = url.as_str() == value
            || (url.path() == "/"
                && url.query().is_none()
                && url.as_str().strip_suffix('/') == Some(&value));
        if value != raw || !escapes_are_whole(&value) || !as_written {
            return Err(Refusal::NotAsWritten(url));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with response parameters appended to its query (RFC 6749 §4.1.2).
    pub fn with_params(&self, params: &[(&str, &str)]) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) => {
                url.query_pairs_mut().extend_pairs(params);
                url.into()
            }
            Err(_) => self.0.clone(),
        }
    }
}

/// Every `%` opens an escape of two hexadecimal digits (RFC 3986 §2.1).
fn escapes_are_whole(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
    })
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_loopback_http_and_native_schemes_are_accepted() {
        for ok in [
            "https://ent.example/cb",
            "http://127.0.0.1:8000/cb",
            "http://localhost/cb",
            "http://[::1]/cb",
            "fr.academie.app:/cb",
            "https://ent.example",
            "https://ent.example/cb?tenant=a&x=%C3%A9",
            "https://ent.example:8443/cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn fragments_plain_http_and_dangerous_schemes_are_refused() {
        for bad in [
            "https://ent.example/cb#x",
            "http://ent.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:pw@ent.example/cb",
            "/cb",
            "",
            " https://ent.example/cb",
            "https://ent.example/\ncb",
            "https://*.ent.example/cb",
            // Not sent back as written (OIDC Core §3.1.2.1).
            "https:///cb",
            "https://ent.example/c b",
            "https://ent.example/c<x>b",
            "https://ent.example/cé",
            "https://ent.example/c\"b",
            "https://ent.example/%zz",
            "https://ent.example/cb%2",
            "HTTPS://ent.example/cb",
            "https://ENT.example/cb",
            "https://ent.example:443/cb",
            "https://ent.example/a/../cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad:?}");
            let why = RedirectUri::parse_or_why(bad).unwrap_err();
            assert!(why.is_ascii(), "{why}");
        }
    }

    #[test]
    fn response_parameters_join_an_existing_query() {
        let uri = RedirectUri::parse("https://ent.example/cb?tenant=a").unwrap();
        assert_eq!(
            uri.with_params(&[("code", "x y"), ("state", "s")]),
            "https://ent.example/cb?tenant=a&code=x+y&state=s"
        );
    }
}
