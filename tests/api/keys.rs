//! Signing keys as relying parties see them: ES256 and EdDSA beside RS256,
//! rotation through a cached JWKS, several instances on one keys folder, and
//! the tokens `verify` refuses. Each test has its own keys folder.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clef::keys::{KeyRing, PUBLICATION_DELAY, RETENTION, SigningAlg};
use josekit::jwk::JwkSet;
use josekit::jws::{ES256, EdDSA, HS256, JwsHeader, JwsVerifier, RS256};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

async fn spawn_on(keys_dir: &Path) -> TestApp {
    let keys_dir = keys_dir.to_owned();
    spawn_app_with(move |config| config.keys_dir = keys_dir).await
}

async fn fetch_jwks(app: &TestApp) -> Value {
    reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn header(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// What a relying party does: the key named by `kid` in the JWKS, used with
/// the algorithm that key is published for, and only that one.
fn verify_with_jwks(jwks: &Value, token: &str) -> Result<Value, String> {
    let set = JwkSet::from_bytes(jwks.to_string()).map_err(|e| e.to_string())?;
    let header = header(token);
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwk = *set.get(kid).first().ok_or("kid not published")?;
    let alg = jwk.algorithm().ok_or("key without alg")?;
    if header["alg"] != alg {
        return Err(format!("{alg} key, {} token", header["alg"]));
    }
    let verifier: Box<dyn JwsVerifier> = match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        other => return Err(format!("unexpected {other}")),
    };
    let (payload, _) =
        josekit::jws::deserialize_compact(token, &*verifier).map_err(|e| e.to_string())?;
    serde_json::from_slice(&payload).map_err(|e| e.to_string())
}

fn sign_all(app: &TestApp, sub: &str) -> Vec<String> {
    SigningAlg::ALL
        .into_iter()
        .map(|alg| {
            app.app
                .keys
                .sign_with(alg, &json!({"sub": sub}), "JWT")
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn es256_and_eddsa_tokens_verify_against_the_served_jwks() {
    let keys = tempfile::tempdir().unwrap();
    let app = spawn_on(keys.path()).await;
    let jwks = fetch_jwks(&app).await;
    let published: Vec<(&str, &str, &str)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert!(k.get("d").is_none(), "no private key in the JWKS");
            (
                k["kty"].as_str().unwrap(),
                k["alg"].as_str().unwrap(),
                k["use"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        published,
        [
            ("RSA", "RS256", "sig"),
            ("EC", "ES256", "sig"),
            ("OKP", "EdDSA", "sig")
        ]
    );
    for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
        let token = app
            .app
            .keys
            .sign_with(alg, &json!({"sub": "1234", "iss": app.address}), "JWT")
            .unwrap();
        let header = header(&token);
        assert_eq!(
            (header["alg"].as_str(), header["typ"].as_str()),
            (Some(alg.as_str()), Some("JWT"))
        );
        assert_eq!(header["kid"], app.app.keys.signing_kid(alg));
        assert_eq!(verify_with_jwks(&jwks, &token).unwrap()["sub"], "1234");
        assert_eq!(app.app.keys.verify(&token).unwrap()["sub"], "1234");
    }
    // sign stays RS256.
    let token = app.app.keys.sign(&json!({})).unwrap();
    assert_eq!(header(&token)["alg"], "RS256");
}

#[tokio::test]
async fn the_jwks_is_cached_for_less_than_a_new_key_waits_before_signing() {
    let keys = tempfile::tempdir().unwrap();
    let app = spawn_on(keys.path()).await;
    let response = reqwest::get(app.url("/jwks.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let cache_control = response.headers()["cache-control"].to_str().unwrap();
    assert_eq!(cache_control, "public, max-age=300");
    let max_age: i64 = cache_control
        .rsplit_once("max-age=")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(max_age < PUBLICATION_DELAY);
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, *app.app.keys.jwks());
}

#[tokio::test]
async fn a_rotation_reaches_cached_jwks_before_its_key_signs_and_old_tokens_still_verify() {
    let keys = tempfile::tempdir().unwrap();
    let app = spawn_on(keys.path()).await;
    let original = fetch_jwks(&app).await;
    let before = sign_all(&app, "before");

    app.clock.advance(60);
    let rotated_at = app.app.now();
    let rotation = clef::keys::rotate(keys.path(), &SigningAlg::ALL, rotated_at).unwrap();
    assert_eq!(rotation.created.len(), 3);
    assert!(app.app.keys.reload(app.app.now()).unwrap());

    // A relying party fetching the JWKS now caches the new keys…
    let cached = fetch_jwks(&app).await;
    let new_kids: Vec<String> = kids(&cached)
        .into_iter()
        .filter(|kid| !kids(&original).contains(kid))
        .collect();
    assert_eq!(new_kids.len(), 3, "{cached}");
    // …which do not sign yet.
    for token in sign_all(&app, "meanwhile") {
        assert!(kids(&original).contains(&header(&token)["kid"].as_str().unwrap().to_owned()));
        assert!(verify_with_jwks(&original, &token).is_ok());
    }
    app.app
        .keys
        .reload(rotated_at + PUBLICATION_DELAY - 1)
        .unwrap();
    for token in sign_all(&app, "still") {
        assert!(!new_kids.contains(&header(&token)["kid"].as_str().unwrap().to_owned()));
    }

    // Past the delay, the new keys sign.
    app.clock.advance(PUBLICATION_DELAY);
    assert!(app.app.keys.reload(app.app.now()).unwrap());
    let after = sign_all(&app, "after");
    for token in &after {
        assert!(new_kids.contains(&header(token)["kid"].as_str().unwrap().to_owned()));
        // The JWKS cached right after the rotation already holds the key.
        assert_eq!(verify_with_jwks(&cached, token).unwrap()["sub"], "after");
    }
    let latest = fetch_jwks(&app).await;
    for token in before.iter().chain(&after) {
        assert!(verify_with_jwks(&latest, token).is_ok());
        assert!(app.app.keys.verify(token).is_ok());
    }

    // The retired keys leave the JWKS after the retention, and the next
    // rotation deletes their files.
    app.clock.advance(RETENTION);
    assert!(app.app.keys.reload(app.app.now()).unwrap());
    let trimmed = fetch_jwks(&app).await;
    assert_eq!(kids(&trimmed).len(), 3);
    for token in &before {
        assert!(verify_with_jwks(&trimmed, token).is_err());
        assert!(app.app.keys.verify(token).is_err());
    }
    let rotation = clef::keys::rotate(keys.path(), &[], app.app.now()).unwrap();
    assert_eq!(rotation.deleted.len(), 3);
}

#[tokio::test]
async fn two_instances_on_one_keys_folder_agree_and_verify_each_other() {
    let keys = tempfile::tempdir().unwrap();
    let (a, b) = tokio::join!(spawn_on(keys.path()), spawn_on(keys.path()));
    let agree = |stage: &'static str| {
        let (a, b) = (&a, &b);
        async move {
            let jwks = fetch_jwks(a).await;
            assert_eq!(jwks, fetch_jwks(b).await, "{stage}");
            for alg in SigningAlg::ALL {
                assert_eq!(
                    a.app.keys.signing_kid(alg),
                    b.app.keys.signing_kid(alg),
                    "{stage}"
                );
            }
            for (signer, verifier) in [(a, b), (b, a)] {
                for token in sign_all(signer, stage) {
                    assert_eq!(verifier.app.keys.verify(&token).unwrap()["sub"], stage);
                    assert!(verify_with_jwks(&fetch_jwks(verifier).await, &token).is_ok());
                }
            }
            jwks
        }
    };
    let started = agree("started").await;

    for app in [&a, &b] {
        app.clock.advance(60);
    }
    clef::keys::rotate(keys.path(), &SigningAlg::ALL, a.app.now()).unwrap();
    for app in [&a, &b] {
        app.app.keys.reload(app.app.now()).unwrap();
    }
    let rotated = agree("rotated").await;
    assert_eq!(kids(&rotated).len(), 6);

    for app in [&a, &b] {
        app.clock.advance(PUBLICATION_DELAY);
        app.app.keys.reload(app.app.now()).unwrap();
    }
    let switched = agree("switched").await;
    assert_eq!(kids(&switched).len(), 6);
    for alg in SigningAlg::ALL {
        assert!(!kids(&started).contains(&a.app.keys.signing_kid(alg)));
    }
}

#[test]
fn instances_starting_together_on_an_empty_folder_create_the_same_keys() {
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path().join("keys");
    let barrier = Arc::new(Barrier::new(8));
    let now = 1_750_000_000;
    let rings: Vec<KeyRing> = (0..8)
        .map(|i| {
            let (dir, barrier) = (dir.clone(), barrier.clone());
            // Some in the next second: names alone would not collide.
            std::thread::spawn(move || {
                barrier.wait();
                KeyRing::load_or_generate(&dir, now + i % 2)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap().expect("every instance starts"))
        .collect();
    let jwks = rings[0].jwks();
    assert_eq!(kids(&jwks).len(), 3);
    for ring in &rings {
        assert_eq!(ring.jwks(), jwks);
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with('.'))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    // The losers' JWKS came from the winner's files: a later start agrees too.
    assert_eq!(
        KeyRing::load_or_generate(&dir, now + 10).unwrap().jwks(),
        jwks
    );
}

#[test]
fn alg_none_and_hmac_with_the_rsa_key_s_kid_are_refused() {
    let keys = tempfile::tempdir().unwrap();
    let ring = KeyRing::load_or_generate(keys.path(), 1).unwrap();
    let rsa_kid = ring.kid();
    let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);

    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": rsa_kid}),
        json!({"alg": "none", "kid": rsa_kid, "typ": "JWT"}),
    ] {
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        assert!(ring.verify(&format!("{header}.{claims}.")).is_err());
    }

    // HS256 keyed with what an attacker has: the published RSA key.
    let jwks = ring.jwks();
    let rsa_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == rsa_kid.as_str())
        .unwrap();
    for secret in [
        rsa_jwk.to_string().into_bytes(),
        URL_SAFE_NO_PAD
            .decode(rsa_jwk["n"].as_str().unwrap())
            .unwrap(),
    ] {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(&rsa_kid);
        let mut signer = HS256.signer_from_bytes(&secret).unwrap();
        signer.set_key_id(&rsa_kid);
        let forged =
            josekit::jws::serialize_compact(br#"{"sub":"admin"}"#, &header, &signer).unwrap();
        assert_eq!(self::header(&forged)["alg"], "HS256");
        assert_eq!(self::header(&forged)["kid"], rsa_kid.as_str());
        assert!(ring.verify(&forged).is_err());
    }

    // A genuine signature relabelled with another algorithm.
    let genuine = ring.sign(&json!({"sub": "admin"})).unwrap();
    let rest = genuine.split_once('.').unwrap().1;
    for alg in ["HS256", "PS256", "ES256", "EdDSA", "none"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": rsa_kid}).to_string());
        assert!(ring.verify(&format!("{header}.{rest}")).is_err(), "{alg}");
    }
    assert!(ring.verify(&genuine).is_ok());
}

#[test]
fn clef_keys_rotate_and_list() {
    let data = tempfile::tempdir().unwrap();
    let keys = data.path().join("keys");
    let clef = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_clef"))
            .args(args)
            .env("CLEF_DATA_DIR", data.path().join("data"))
            .env("CLEF_KEYS_DIR", &keys)
            .env_remove("CLEF_DATABASE_URL")
            .env_remove("CLEF_REDIS_URL")
            .current_dir(data.path())
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let output = clef(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };

    assert!(ok(&["keys", "list"]).starts_with("no signing keys"));
    let rotated = ok(&["keys", "rotate", "--alg", "ES256"]);
    assert!(
        rotated.contains("created ") && rotated.contains("es256-"),
        "{rotated}"
    );
    // The folder's first key of its algorithm signs at once, and says so.
    assert!(
        rotated.lines().next().unwrap().ends_with(": signing"),
        "{rotated}"
    );
    let listed = ok(&["keys", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("ALG    KID ") && lines[0].ends_with("  STATE"));
    assert!(lines[1].starts_with("ES256  ") && lines[1].ends_with("  signing"));

    // An instance starting now adds the missing families, and agrees.
    let ring =
        KeyRing::load_or_generate(&keys, time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let listed = ok(&["keys", "list"]);
    for alg in SigningAlg::ALL {
        let line = listed
            .lines()
            .find(|l| l.starts_with(alg.as_str()))
            .unwrap();
        assert!(line.contains(&ring.signing_kid(alg)), "{listed}");
        assert!(line.ends_with("  signing"), "{listed}");
    }

    let rotated = ok(&["keys", "rotate"]);
    assert_eq!(rotated.matches("created ").count(), 3, "{rotated}");
    assert_eq!(
        rotated.matches(": published (signs from ").count(),
        3,
        "{rotated}"
    );
    let listed = ok(&["keys", "list"]);
    assert_eq!(listed.lines().count(), 7, "a header and six keys: {listed}");
    assert_eq!(listed.matches("  signing").count(), 3, "{listed}");
    assert_eq!(
        listed.matches("  published (signs from ").count(),
        3,
        "{listed}"
    );
    // The new keys are already in the JWKS of a running instance.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(ring.reload(now).unwrap());
    assert_eq!(kids(&ring.jwks()).len(), 6);

    let refused = clef(&["keys", "rotate", "--alg", "HS256"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("RS256, ES256, EdDSA or all"));

    // A database the rotation cannot be recorded in: refused before any key
    // is made (retried, it would have made one more each time).
    let unrecorded = Command::new(env!("CARGO_BIN_EXE_clef"))
        .args(["keys", "rotate"])
        .env("CLEF_DATA_DIR", data.path().join("data"))
        .env("CLEF_KEYS_DIR", &keys)
        .env(
            "CLEF_DATABASE_URL",
            format!(
                "postgres://clef@127.0.0.1:{}/nowhere",
                crate::helpers::free_port()
            ),
        )
        .env_remove("CLEF_REDIS_URL")
        .current_dir(data.path())
        .output()
        .unwrap();
    assert!(!unrecorded.status.success());
    assert_eq!(ok(&["keys", "list"]).lines().count(), 7, "no key made");
}
