//! The OpenID Connect protocol, without HTTP: discovery, clients, the
//! authorization request, sessions, the code grant, claims and userinfo.

pub mod assertion;
pub mod authorize;
pub mod backchannel;
pub mod claims;
pub mod clients;
pub mod consent;
pub mod discovery;
mod error;
pub mod grants;
pub mod housekeeping;
pub mod introspection;
pub mod ledger;
pub mod logout;
pub mod outbound;
pub mod refresh;
pub mod registration;
pub mod request_object;
pub mod rotations;
pub mod session;
pub mod token;

pub use error::{ErrorCode, OAuthError};

/// Scopes Clef knows; others are ignored, as OIDC Core §5.4 allows.
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "children",
    "school",
    "offline_access",
];

/// The granted scopes, in `SUPPORTED_SCOPES` order, space-separated on the wire.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Keeps the supported scopes of a request; `openid` is required, since
    /// Clef is an OpenID provider and not a bare OAuth server.
    pub fn parse(raw: Option<&str>) -> Result<Self, OAuthError> {
        let requested: Vec<&str> = raw
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if !requested.contains(&"openid") {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the openid scope is required",
            ));
        }
        Ok(Self(
            SUPPORTED_SCOPES
                .iter()
                .filter(|s| requested.contains(s))
                .map(|s| s.to_string())
                .collect(),
        ))
    }

    /// The supported scopes among `scopes`, in the usual order (stored sets).
    pub fn known<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        let scopes: Vec<&str> = scopes.into_iter().collect();
        Self(
            SUPPORTED_SCOPES
                .iter()
                .filter(|s| scopes.contains(s))
                .map(|s| s.to_string())
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn to_wire(&self) -> String {
        self.0.join(" ")
    }

    /// The same scopes but `scope`.
    pub fn without(&self, scope: &str) -> Self {
        Self(self.0.iter().filter(|s| *s != scope).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_require_openid_and_drop_unknown_ones() {
        assert_eq!(
            Scopes::parse(Some("children  openid offline_access address"))
                .unwrap()
                .to_wire(),
            "openid children offline_access"
        );
        assert_eq!(
            Scopes::parse(Some("profile")).unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            Scopes::parse(None).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }
}
