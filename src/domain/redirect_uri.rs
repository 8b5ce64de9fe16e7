//! Redirect URIs as clients register them (RFC 6749 §3.1.2, RFC 8252 §7, OIDC Core §3.1.2.1).

use std::fmt;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::{FieldError, Problem, text};

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
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let field = "redirect_uri";
        let value = text(field, raw, Self::MAX)?;
        let invalid = || FieldError::new(field, Problem::Invalid);
        if value != raw {
            return Err(invalid());
        }
        let url = Url::parse(&value).map_err(|_| invalid())?;
        if url.fragment().is_some()
            || value.contains('#')
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(invalid());
        }
        // A `*` names no host: no wildcard is ever meant (they are compared
        // as strings, OAuth 2.1 §2.3.1), and a reader would think one was.
        let wildcard = url.host_str().is_some_and(|host| host.contains('*'));
        let allowed = match url.scheme() {
            "https" => url.host().is_some() && !wildcard,
            "http" => is_loopback(&url),
            scheme => scheme.contains('.') && !matches!(scheme, "javascript" | "data" | "file"),
        };
        if !allowed {
            return Err(invalid());
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
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad:?}");
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
