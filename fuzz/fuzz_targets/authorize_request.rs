//! The authorization request: a query string decoded by `Params::parse`,
//! then read by `authorize::response_mode` and `authorize::parse_rest` (the
//! part of `authorize::validate` that needs no store) for a confidential and
//! a public client. A request taken satisfies its documented constraints and
//! its `authorize_url` reads back as the same request.
#![no_main]

use clef::domain::{Params, RedirectUri};
use clef::oidc::authorize::{self, AuthorizationRequest, RequestingClient, ResponseMode};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://clef.example";

fn check(params: &Params, client: RequestingClient<'_>, redirect_uri: &RedirectUri) {
    let Ok(mode) = authorize::response_mode(params) else {
        assert!(!matches!(params.get("response_mode"), None | Some("query" | "form_post")));
        return;
    };
    let state = params.get("state").map(str::to_owned);
    let request = match authorize::parse_rest(params, client, redirect_uri, mode, state.clone()) {
        Ok(request) => request,
        Err(error) => {
            assert!(!error.description.is_empty());
            return;
        }
    };
    assert!(client.code_flow);
    assert_eq!(request.client_id, client.id);
    assert_eq!(&request.redirect_uri, redirect_uri);
    assert_eq!(request.response_mode, mode);
    assert_eq!(request.state, state);
    assert_eq!(params.get("response_type"), Some("code"));
    assert!(request.scopes.contains("openid"));
    assert!(request.scopes.iter().all(|s| clef::oidc::SUPPORTED_SCOPES.contains(&s)));
    assert!(request.state.as_ref().is_none_or(|s| !s.is_empty() && s.len() <= 2048));
    assert!(request.nonce.as_ref().is_none_or(|n| !n.is_empty() && n.len() <= 512));
    assert!(request.login_hint.as_ref().is_none_or(|h| !h.is_empty() && h.len() <= 256));
    match &request.code_challenge {
        Some(challenge) => {
            assert_eq!(challenge.len(), 43);
            assert!(challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(params.get("code_challenge_method"), Some("S256"));
        }
        None => assert!(!client.is_public, "a public client without PKCE"),
    }
    assert!(!(request.prompt_none && (request.prompt_login || request.prompt_consent)));
    assert!(request.max_age.is_none_or(|age| (0..=9_999_999_999).contains(&age)));
    assert!(request.hint_subject.is_none());

    // Started again from its URL, the request is the same.
    let url = url::Url::parse(&request.authorize_url(ISSUER)).expect("authorize_url is a URL");
    assert_eq!(url.path(), "/authorize");
    let query = url.query().unwrap_or("");
    let params = Params::parse(query.as_bytes()).expect("authorize_url's query parses");
    let mode = authorize::response_mode(&params).expect("authorize_url's response_mode");
    let state = params.get("state").map(str::to_owned);
    let again = authorize::parse_rest(&params, client, redirect_uri, mode, state)
        .unwrap_or_else(|e| panic!("authorize_url {url} refused: {}", e.description));
    assert_eq!(same_parts(&request), same_parts(&again), "{url}");
}

/// What `authorize_url` carries (`prompt`, `max_age` and `login_hint` belong to the moment).
fn same_parts(request: &AuthorizationRequest) -> impl PartialEq + std::fmt::Debug {
    (
        request.client_id.clone(),
        request.redirect_uri.clone(),
        request.response_mode == ResponseMode::FormPost,
        request.scopes.to_wire(),
        request.state.clone(),
        request.nonce.clone(),
        request.code_challenge.clone(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let redirect_uri = RedirectUri::parse("https://ent.example/cb?tenant=a").unwrap();
    for (is_public, code_flow) in [(false, true), (true, true), (false, false)] {
        let client = RequestingClient {
            id: "ent-college",
            is_public,
            code_flow,
            default_max_age: None,
        };
        check(&params, client, &redirect_uri);
    }
});
