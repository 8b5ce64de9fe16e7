//! OpenID Provider metadata (OIDC Discovery §3).

use serde_json::{Value, json};

use super::{SUPPORTED_SCOPES, assertion, clients};

/// Client authentication at the token and revocation endpoints.
const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
/// At introspection, a client that authenticates (RFC 7662 §2.1).
const INTROSPECTION_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
use crate::config::Config;

pub fn document(config: &Config) -> Value {
    json!({
        "issuer": config.issuer_str(),
        "authorization_endpoint": config.endpoint("/authorize"),
        "token_endpoint": config.endpoint("/token"),
        "userinfo_endpoint": config.endpoint("/userinfo"),
        "end_session_endpoint": config.endpoint("/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "jwks_uri": config.endpoint("/jwks.json"),
        "registration_endpoint": config.endpoint("/register"),
        "revocation_endpoint": config.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion::ALGS,
        "introspection_endpoint": config.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": INTROSPECTION_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion::ALGS,
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": clients::SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": clients::SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": assertion::ALGS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash", "amr",
            "name", "given_name", "family_name", "preferred_username", "birthdate",
            "email", "email_verified", "phone_number", "phone_number_verified", "children", "school"
        ],
        "claims_parameter_supported": true,
        "display_values_supported": ["page", "popup", "touch", "wap"],
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": false,
        "request_object_signing_alg_values_supported": assertion::ALGS,
        "pushed_authorization_request_endpoint": config.endpoint("/par"),
        "require_pushed_authorization_requests": false,
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["fr-FR", "en"],
        "claims_locales_supported": ["fr-FR"],
    })
}
