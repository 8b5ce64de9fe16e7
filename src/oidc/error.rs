//! OAuth 2.0 / OpenID Connect errors; `Display` is the wire code.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The `error` codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and OIDC Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §4.1.2.1 / §5.2
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (401 when credentials were sent).
    InvalidClient,
    /// RFC 6749 §5.2: the code is invalid, expired, revoked, or was issued to another client.
    InvalidGrant,
    /// RFC 6749 §4.1.2.1 / §5.2
    UnauthorizedClient,
    /// RFC 6749 §5.2
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1
    InvalidScope,
    /// RFC 6749 §4.1.2.1
    AccessDenied,
    /// RFC 6749 §4.1.2.1
    ServerError,
    /// RFC 6749 §4.1.2.1
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6: `prompt=none` and nobody is logged in.
    LoginRequired,
    /// OIDC Core §3.1.2.6
    InteractionRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` and the client needs consent not yet given.
    ConsentRequired,
    /// OIDC Core §3.1.2.6
    RequestNotSupported,
    /// OIDC Core §3.1.2.6
    RequestUriNotSupported,
    /// OIDC Core §3.1.2.6
    RegistrationNotSupported,
    /// RFC 6750 §3.1: the access token is invalid, expired or revoked.
    InvalidToken,
    /// RFC 6750 §3.1: the access token is good but not for this (a
    /// service's own token at UserInfo).
    InsufficientScope,
    /// OIDC Core §3.1.2.6: the request object is invalid.
    InvalidRequestObject,
    /// OIDC Core §3.1.2.6, RFC 9126: the request_uri is invalid, expired or used.
    InvalidRequestUri,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::InteractionRequired => "interaction_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RegistrationNotSupported => "registration_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::InvalidRequestUri => "invalid_request_uri",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// For `server_error` and `temporarily_unavailable`: what went wrong, for
    /// the log (written once, by the web edge), never for the client.
    pub cause: Option<Arc<anyhow::Error>>,
}

/// RFC 6749 §5.2 (and RFC 7591 §3.2.2, which refers to it): an
/// `error_description` holds only %x20-21 / %x23-5B / %x5D-7E; anything else
/// (a client's own value echoed back, say) becomes `?`.
pub fn ascii_description(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| matches!(c, ' '..='~') && c != '"' && c != '\\';
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if allowed(c) { c } else { '?' })
                .collect(),
        )
    }
}

impl OAuthError {
    /// RFC 6749 §5.2: the description made ASCII ([`ascii_description`]).
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let description = match description.into() {
            Cow::Borrowed(text) => ascii_description(text),
            Cow::Owned(text) => Cow::Owned(ascii_description(&text).into_owned()),
        };
        Self {
            code,
            description,
            cause: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error")
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the service is temporarily unavailable; retry later",
        )
    }

    /// A failure that is not the client's: `temporarily_unavailable` (503 with
    /// Retry-After) when PostgreSQL or Redis is unavailable, so the client
    /// retries, else `server_error`.
    pub fn from_internal(error: anyhow::Error) -> Self {
        let answer = if crate::storage::is_unavailable(&error) {
            Self::temporarily_unavailable()
        } else {
            Self::server_error()
        };
        Self {
            cause: Some(Arc::new(error)),
            ..answer
        }
    }
}

/// `?` on an internal failure answers `server_error` (or
/// `temporarily_unavailable`), keeping the cause for the log.
impl From<anyhow::Error> for OAuthError {
    fn from(error: anyhow::Error) -> Self {
        Self::from_internal(error)
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        Self::from_internal(error.into())
    }
}

/// A batched read or write (`storage::batch`) that failed: the database's
/// error, told apart when it is unavailable (503) as a direct one is.
impl From<crate::storage::batch::Failed> for OAuthError {
    fn from(error: crate::storage::batch::Failed) -> Self {
        Self::from_internal(error.into())
    }
}

impl From<serde_json::Error> for OAuthError {
    fn from(error: serde_json::Error) -> Self {
        Self::from_internal(error.into())
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set() {
        let error = OAuthError::invalid_request("unsupported prompt value \"é\\\n\"");
        assert_eq!(error.description, "unsupported prompt value ?????");
    }
}
