//! A request object's claims merged into the request (RFC 9101 §6.3):
//! `request_object::merge`, then the authorization request read from the
//! result as `authorize::validate` reads it. Input: the query string, a NUL
//! byte, then the object's claims as JSON. The object's claims win, `request`
//! and `request_uri` and the JWT's own claims never become parameters, a
//! member in a shape no parameter has (array, null, object but `claims`) never
//! becomes one, and a refusal describes itself in ASCII.
#![no_main]

use clef::domain::{Params, RedirectUri};
use clef::oidc::authorize::{self, RequestingClient};
use clef::oidc::request_object;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// What `Params::get` answers for a value: an empty one counts as absent.
fn non_empty(value: &str) -> Option<&str> {
    Some(value).filter(|v| !v.is_empty())
}

const JWT_CLAIMS: [&str; 7] = ["iss", "aud", "exp", "iat", "nbf", "jti", "sub"];

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (query, json) = (&data[..split], &data[split + 1..]);
    let Ok(params) = Params::parse(query) else {
        return;
    };
    let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(json) else {
        return;
    };
    let merged = match request_object::merge(&params, claims.clone()) {
        Ok(merged) => merged,
        Err(error) => {
            assert!(!error.description.is_empty());
            assert!(error.description.bytes().all(|b| (0x20..0x7f).contains(&b)));
            return;
        }
    };
    for name in ["request", "request_uri"] {
        assert!(!merged.contains(name), "{name} survived the merge");
    }
    for (name, value) in &claims {
        if JWT_CLAIMS.contains(&name.as_str()) || matches!(name.as_str(), "request" | "request_uri")
        {
            assert!(!merged.contains(name), "{name} became a parameter");
            continue;
        }
        match value {
            Value::String(text) => assert_eq!(merged.get(name), non_empty(text), "{name}"),
            Value::Number(n) => assert_eq!(merged.get(name), non_empty(&n.to_string())),
            Value::Bool(b) => assert_eq!(merged.get(name), non_empty(&b.to_string())),
            Value::Object(_) if name == "claims" => {
                assert_eq!(merged.get(name), non_empty(&value.to_string()))
            }
            // Arrays, null and other objects: a parameter Clef reads refuses
            // the object (the merge failed above); any other is dropped, and
            // the query's value of the same name does not come back.
            _ => assert!(!merged.contains(name), "{name}"),
        }
    }
    for (name, _) in params.pairs() {
        if !claims.contains_key(name) && !matches!(name, "request" | "request_uri") {
            // An empty value counts as absent on both sides (RFC 6749 §3.1).
            assert_eq!(merged.get(name), params.get(name), "{name} from the query");
        }
    }
    // Read as the authorization endpoint reads it (hostile `claims` JSON included).
    let redirect_uri = RedirectUri::parse("https://ent.example/cb").unwrap();
    let client = RequestingClient {
        id: "ent",
        is_public: false,
        code_flow: true,
        default_max_age: None,
    };
    if let Ok(mode) = authorize::response_mode(&merged) {
        let state = merged.get("state").map(str::to_owned);
        if let Err(error) = authorize::parse_rest(&merged, client, &redirect_uri, mode, state) {
            assert!(error.description.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
    }
});
