//! `private_key_jwt` client assertions (`oidc::assertion`), everything that
//! needs no network and no store: `claimed_client`, `signing_header`,
//! `check_signature` against a fixed in-memory client JWKS (one Ed25519 and
//! one P-256 key) and `check_claims`.
//!
//! The first byte chooses what the rest is:
//! - `% 4 == 0`: a whole assertion, as presented (signatures never verify);
//! - `% 4 == 1` or `2`: the claims, signed here with the client's Ed25519 or
//!   P-256 key, so the claim checks behind the signature are reached;
//! - `% 4 == 3`: a header, a newline, then the claims, signed with the
//!   Ed25519 key whatever the header says.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clef::oidc::assertion;
use josekit::jwk::KeyPair;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsSigner};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const CLIENT_ID: &str = "ent-college";
const ISSUER: &str = "https://clef.example";
const TOKEN_ENDPOINT: &str = "https://clef.example/token";
/// 2026-01-01T00:00:00Z, the seeds' `iat`.
const NOW: i64 = 1_767_225_600;
const LEEWAY: i64 = 60;
const MAX_LIFETIME: i64 = 600;

struct Client {
    ed: Box<dyn JwsSigner>,
    es: Box<dyn JwsSigner>,
    jwks: Vec<Map<String, Value>>,
}

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        let es = ES256.generate_key_pair().unwrap();
        let mut ed_public = ed.to_jwk_public_key();
        ed_public.set_key_id("ed-1");
        ed_public.set_key_use("sig");
        let mut es_public = es.to_jwk_public_key();
        es_public.set_key_id("es-1");
        es_public.set_algorithm("ES256");
        Client {
            ed: Box::new(EdDSA.signer_from_jwk(&ed.to_jwk_key_pair()).unwrap()),
            es: Box::new(ES256.signer_from_jwk(&es.to_jwk_key_pair()).unwrap()),
            jwks: vec![ed_public.into(), es_public.into()],
        }
    })
}

fn sign(signer: &dyn JwsSigner, header: &[u8], claims: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = signer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Runs every pure step on `jwt`; the claims when the signature holds.
fn read(jwt: &str) -> Option<Map<String, Value>> {
    let claimed = assertion::claimed_client(jwt);
    assert!(claimed.is_none() || jwt.contains('.'));
    let (alg, kid) = match assertion::signing_header(jwt) {
        Ok(header) => header,
        Err(error) => {
            assert!(!error.description.is_empty());
            return None;
        }
    };
    assert!(assertion::ALGS.contains(&alg.as_str()), "{alg}");
    let claims = assertion::check_signature(jwt, &alg, kid.as_deref(), &client().jwks)?;
    // What signed claims name as issuer is what was claimed unverified.
    assert_eq!(
        claimed.as_deref(),
        claims.get("iss").and_then(Value::as_str),
        "{jwt}"
    );
    match assertion::check_claims(
        &claims,
        CLIENT_ID,
        assertion::Audience::AnyOf(&[ISSUER, TOKEN_ENDPOINT]),
        NOW,
    ) {
        Ok((jti, ttl)) => {
            let text = |name: &str| claims.get(name).and_then(Value::as_str);
            assert_eq!(text("iss"), Some(CLIENT_ID));
            assert_eq!(text("sub"), Some(CLIENT_ID));
            assert!(!jti.is_empty() && jti.len() <= 256, "{jti:?}");
            assert_eq!(text("jti"), Some(jti));
            let exp = claims["exp"].as_i64().unwrap();
            assert!(exp > NOW - LEEWAY && exp <= NOW + MAX_LIFETIME + LEEWAY, "exp {exp}");
            let ttl = ttl.as_secs() as i64;
            assert!((1..=MAX_LIFETIME + 2 * LEEWAY).contains(&ttl), "ttl {ttl}");
        }
        Err(error) => assert!(error.description.starts_with("client assertion refused: ")),
    }
    Some(claims)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let client = client();
    match mode % 4 {
        0 => {
            if let Ok(jwt) = std::str::from_utf8(rest) {
                read(jwt);
            }
        }
        1 | 2 => {
            let (signer, header) = if mode % 4 == 1 {
                (&client.ed, &br#"{"alg":"EdDSA","kid":"ed-1","typ":"JWT"}"#[..])
            } else {
                (&client.es, &br#"{"alg":"ES256","kid":"es-1"}"#[..])
            };
            let jwt = sign(signer.as_ref(), header, rest);
            let object = serde_json::from_slice::<Map<String, Value>>(rest).ok();
            let claims = read(&jwt);
            // The client's own key verifies its JSON object, and only that.
            assert_eq!(claims, object, "{jwt}");
            if claims.is_some() {
                // One flipped bit of the signature and nothing verifies.
                let (signed, signature) = jwt.rsplit_once('.').unwrap();
                let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
                let bit = rest.len() % (signature.len() * 8);
                signature[bit / 8] ^= 1 << (bit % 8);
                let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
                assert!(read(&forged).is_none(), "a forged signature verified");
            }
        }
        _ => {
            let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));
            let jwt = sign(client.ed.as_ref(), header, claims);
            if read(&jwt).is_some() {
                let (alg, kid) = assertion::signing_header(&jwt).unwrap();
                assert!(matches!(alg.as_str(), "EdDSA" | "Ed25519"), "{alg} verified");
                assert!(kid.is_none_or(|kid| kid == "ed-1"), "verified by a foreign kid");
            }
        }
    }
});
