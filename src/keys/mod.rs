//! Signing keys: RS256, ES256 and EdDSA keys under `keys/` (generated on first
//! start, mode 0600), the JWKS that publishes them, JWT signing and
//! verification, and their rotation without a restart.
//!
//! The folder is the only shared state: every instance mounts it and re-reads
//! it every [`RELOAD_INTERVAL`]. Which key signs and which are published
//! follows from the keys' creation times (in their file names) and the time
//! alone (see [`KeyState`]), so instances agree without talking to each other:
//!
//! - a key is published (in the JWKS) as soon as its file exists;
//! - it signs once older than [`PUBLICATION_DELAY`], so relying parties that
//!   cache the JWKS ([`JWKS_MAX_AGE`]) hold it before any token carries it;
//!   the signer of an algorithm is its newest key past the delay, or its
//!   oldest key when none is (a first start signs at once);
//! - a key that stopped signing stays published for [`RETENTION`], longer than
//!   any token it signed lives; then it is neither published nor accepted, and
//!   `clef keys rotate` deletes its file.

mod files;
mod schedule;

pub mod cli;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use josekit::jws::{JwsHeader, JwsVerifier};
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use files::{KeyFile, LoadedKey, Taken};
pub use schedule::KeyState;

/// How long a new key is published before it signs: more than a relying
/// party may cache the JWKS plus how long instances take to notice the key.
pub const PUBLICATION_DELAY: i64 = 10 * 60;
/// How long a key stays published after its successor took over: more than
/// the lifetime of any token it signed (ID tokens live `id_token_ttl`, one
/// hour by default; logout tokens two minutes), with room for clock skew.
pub const RETENTION: i64 = 2 * 24 * 3600;
/// How often each instance re-reads the keys folder.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// How long relying parties may cache the JWKS (its `Cache-Control`).
pub const JWKS_MAX_AGE: i64 = 5 * 60;
/// The JWKS response's `Cache-Control` header.
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

// A relying party that fetched the JWKS just before an instance noticed a new
// key still refreshes it before the key signs.
const _: () = assert!(JWKS_MAX_AGE + RELOAD_INTERVAL.as_secs() as i64 * 2 < PUBLICATION_DELAY);

/// The algorithms Clef signs with, each with its own key family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048: every client's default.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// EdDSA on Ed25519 (RFC 8037).
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    /// The JOSE name (`alg`), exactly: names are case-sensitive.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The key files' name prefix.
    fn family(self) -> &'static str {
        match self {
            Self::RS256 => "rs256",
            Self::ES256 => "es256",
            Self::EdDSA => "ed25519",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keys Clef signs with and publishes. Cheap to clone: clones share the
/// key set, which [`KeyRing::reload`] replaces as the folder changes.
#[derive(Clone)]
pub struct KeyRing {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    current: RwLock<Arc<KeySet>>,
    /// One reload at a time, so a slower one cannot put back an older set.
    reloading: Mutex<()>,
}

/// The published keys at one moment, and the JWKS serialised once for them.
struct KeySet {
    /// For each algorithm in turn: its signer, then its other published keys,
    /// newest first.
    keys: Vec<Arc<LoadedKey>>,
    /// Index in `keys` of each algorithm's signer.
    signers: [usize; 3],
    jwks: Arc<Value>,
    body: Bytes,
}

impl KeySet {
    fn signer(&self, alg: SigningAlg) -> &LoadedKey {
        &self.keys[self.signers[alg.index()]]
    }

    /// The same keys in the same order with the same signers.
    fn same_as(&self, names: &[&str], signers: &[usize; 3]) -> bool {
        self.signers == *signers
            && self.keys.len() == names.len()
            && self.keys.iter().zip(names).all(|(k, n)| k.name == *n)
    }
}

impl KeyRing {
    /// Loads `dir`'s keys, first generating a key for each algorithm that has
    /// none. Instances starting together on an empty folder agree: the first
    /// keys are created under the folder's lock and linked into place.
    pub fn load_or_generate(dir: &Path, now: i64) -> anyhow::Result<Self> {
        let present = files::list(dir)?;
        let missing = |present: &[KeyFile]| {
            SigningAlg::ALL
                .into_iter()
                .filter(|alg| !present.iter().any(|f| f.alg == *alg))
                .collect::<Vec<_>>()
        };
        if !missing(&present).is_empty() {
            files::create_private_dir(dir)?;
            let _lock = files::lock(dir);
            for alg in missing(&files::list(dir)?) {
                let (path, ours) = files::write_new(dir, alg, now, Taken::UseIt)?;
                if ours {
                    tracing::info!(path = %path.display(), "generated a new {alg} signing key");
                }
            }
        }
        let set = build_set(dir, now, None)?.context("no signing keys")?;
        Ok(Self {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                current: RwLock::new(Arc::new(set)),
                reloading: Mutex::new(()),
            }),
        })
    }

    /// Re-reads the folder and applies the schedule at `now`: new keys are
    /// published, due keys sign, expired keys are dropped. Returns whether the
    /// set changed (the JWKS is serialised again only then). On error (an
    /// unreadable key, an algorithm left without keys) the current set stays.
    pub fn reload(&self, now: i64) -> anyhow::Result<bool> {
        let _one_at_a_time = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        let Some(set) = build_set(&self.shared.dir, now, Some(&current))? else {
            return Ok(false);
        };
        tracing::info!(
            published = set.keys.len(),
            signers = ?SigningAlg::ALL.map(|alg| set.signer(alg).kid.clone()),
            "signing keys changed"
        );
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(true)
    }

    /// Reloads every [`RELOAD_INTERVAL`] by `clock` until the ring is dropped.
    /// Needs a Tokio runtime.
    pub fn spawn_reloader(&self, clock: Arc<dyn Clock>) {
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                let ring = KeyRing { shared };
                let now = clock.now();
                match tokio::task::spawn_blocking(move || ring.reload(now)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %format!("{e:#}"), "keeping the current signing keys")
                    }
                    Err(e) => tracing::warn!(error = %e, "reloading the signing keys failed"),
                }
            }
        });
    }

    fn current(&self) -> Arc<KeySet> {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The folder the keys are read from.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The JWKS: every published key with `kid`, `use: sig` and `alg`.
    pub fn jwks(&self) -> Arc<Value> {
        self.current().jwks.clone()
    }

    /// The JWKS serialised, as served: shared, not copied.
    pub fn jwks_body(&self) -> Bytes {
        self.current().body.clone()
    }

    /// The `kid` of the RS256 signing key.
    pub fn kid(&self) -> String {
        self.signing_kid(SigningAlg::RS256)
    }

    /// The `kid` of `alg`'s signing key.
    pub fn signing_kid(&self, alg: SigningAlg) -> String {
        self.current().signer(alg).kid.clone()
    }

    /// Signs `claims` with RS256 as a compact JWS with `typ: JWT`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        self.sign_with(SigningAlg::RS256, claims, "JWT")
    }

    /// Signs `claims` as a compact JWS with `alg`'s signing key: headers
    /// `alg`, `typ` and that key's `kid`.
    pub fn sign_with(&self, alg: SigningAlg, claims: &Value, typ: &str) -> anyhow::Result<String> {
        let set = self.current();
        let key = set.signer(alg);
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        let payload = serde_json::to_vec(claims)?;
        Ok(josekit::jws::serialize_compact(
            &payload,
            &header,
            &*key.signer,
        )?)
    }

    /// The claims of a compact JWS that one of the published keys signed, or
    /// why not. The key is chosen by `kid`, and the header's `alg` must be that
    /// key's: no `none`, no HMAC keyed with a public key, no other algorithm.
    /// The claims themselves (`iss`, `exp`…) are the caller's to judge: an ID
    /// token used as a logout hint may have expired.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, josekit::JoseError> {
        let set = self.current();
        let (payload, _header) =
            josekit::jws::deserialize_compact_with_selector(token, |header| {
                let Some(kid) = header.key_id() else {
                    return Ok(None);
                };
                let Some(key) = set.keys.iter().find(|k| k.kid == kid) else {
                    return Ok(None);
                };
                if header.algorithm() != Some(key.alg.as_str()) {
                    return Err(josekit::JoseError::InvalidJwsFormat(anyhow::anyhow!(
                        "key {kid} is an {} key",
                        key.alg
                    )));
                }
                Ok(Some(&*key.verifier as &dyn JwsVerifier))
            })?;
        serde_json::from_slice(&payload)
            .map_err(|e| josekit::JoseError::InvalidJson(anyhow::Error::new(e)))
    }
}

/// Every key file of `dir` with its state at `now`, by algorithm then age.
fn plan(dir: &Path, now: i64) -> anyhow::Result<Vec<(KeyFile, KeyState)>> {
    let all = files::list(dir)?;
    let mut planned = Vec::with_capacity(all.len());
    for alg in SigningAlg::ALL {
        let family: Vec<KeyFile> = all.iter().filter(|f| f.alg == alg).cloned().collect();
        let created: Vec<i64> = family.iter().map(|f| f.created).collect();
        planned.extend(family.into_iter().zip(schedule::states(&created, now)));
    }
    Ok(planned)
}

/// The key set of `dir` at `now`, or `None` when it is `previous`'s. Keys
/// `previous` already holds are not read again.
fn build_set(dir: &Path, now: i64, previous: Option<&KeySet>) -> anyhow::Result<Option<KeySet>> {
    let planned = plan(dir, now)?;
    let mut chosen: Vec<&KeyFile> = Vec::new();
    let mut signers = [0; 3];
    for alg in SigningAlg::ALL {
        let family = || planned.iter().filter(move |(f, _)| f.alg == alg);
        let Some((signer, _)) = family().find(|(_, state)| *state == KeyState::Signing) else {
            bail!("no {alg} key in {}", dir.display());
        };
        signers[alg.index()] = chosen.len();
        chosen.push(signer);
        let mut others: Vec<&KeyFile> = family()
            .filter(|(_, state)| state.is_published() && *state != KeyState::Signing)
            .map(|(f, _)| f)
            .collect();
        others.reverse();
        chosen.extend(others);
    }
    let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
    if previous.is_some_and(|p| p.same_as(&names, &signers)) {
        return Ok(None);
    }
    let mut keys: Vec<Arc<LoadedKey>> = Vec::with_capacity(chosen.len());
    let mut signer_keys = [0; 3];
    for (i, file) in chosen.iter().enumerate() {
        let reused = previous.and_then(|p| p.keys.iter().find(|k| k.name == file.name));
        let signs = signers.contains(&i);
        let key = match reused {
            Some(key) => key.clone(),
            None => match files::load(file) {
                Ok(key) => Arc::new(key),
                // Deleted since listed, by a `rotate` whose clock is ahead.
                Err(e) if !signs && vanished(&e) => continue,
                Err(e) => return Err(e),
            },
        };
        // A copy of a key under another name: published once.
        let index = match keys.iter().position(|k| k.kid == key.kid) {
            Some(index) => index,
            None => {
                keys.push(key);
                keys.len() - 1
            }
        };
        for alg in SigningAlg::ALL {
            if signers[alg.index()] == i {
                signer_keys[alg.index()] = index;
            }
        }
    }
    let jwks = json!({
        "keys": keys.iter().map(|k| Value::Object(k.jwk.clone())).collect::<Vec<_>>()
    });
    let body = Bytes::from(serde_json::to_vec(&jwks)?);
    Ok(Some(KeySet {
        keys,
        signers: signer_keys,
        jwks: Arc::new(jwks),
        body,
    }))
}

fn vanished(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// A key file as `clef keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub alg: SigningAlg,
    /// Its thumbprint, or why the file could not be read.
    pub kid: Result<String, String>,
    pub created: i64,
    pub state: KeyState,
    pub path: PathBuf,
}

/// Every key file of `dir` with its state at `now`, by algorithm then age.
pub fn list(dir: &Path, now: i64) -> anyhow::Result<Vec<KeyInfo>> {
    Ok(plan(dir, now)?
        .into_iter()
        .map(|(file, state)| KeyInfo {
            alg: file.alg,
            kid: files::load(&file)
                .map(|k| k.kid)
                .map_err(|e| format!("{e:#}")),
            created: file.created,
            state,
            path: file.path,
        })
        .collect())
}

/// What `rotate` did.
#[derive(Debug, Default)]
pub struct Rotation {
    pub created: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
}

/// Adds a new key for each of `algs`, created at `now` (or the next free
/// second): published at once, signing after the publication delay. Deletes
/// the key files past their retention.
pub fn rotate(dir: &Path, algs: &[SigningAlg], now: i64) -> anyhow::Result<Rotation> {
    files::create_private_dir(dir)?;
    let _lock = files::lock(dir);
    let mut rotation = Rotation::default();
    for (file, state) in plan(dir, now)? {
        if state == KeyState::Expired {
            std::fs::remove_file(&file.path)
                .with_context(|| format!("deleting {}", file.path.display()))?;
            rotation.deleted.push(file.path);
        }
    }
    for &alg in algs {
        let (path, _) = files::write_new(dir, alg, now, Taken::NextSecond)?;
        rotation.created.push(path);
    }
    files::remove_stale_temporaries(dir);
    Ok(rotation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use josekit::jwk::Jwk;
    use josekit::jws::{ES256, EdDSA, RS256};
    use std::fs;

    fn header(token: &str) -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn algorithms_have_their_jose_names() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()), Some(alg));
        }
        assert_eq!(SigningAlg::parse("EdDSA"), Some(SigningAlg::EdDSA));
        assert_eq!(SigningAlg::parse("rs256"), None);
        assert_eq!(SigningAlg::parse("none"), None);
        assert_eq!(SigningAlg::parse("HS256"), None);
        assert_eq!(
            JWKS_CACHE_CONTROL,
            format!("public, max-age={JWKS_MAX_AGE}")
        );
    }

    #[test]
    fn first_start_generates_a_private_key_per_algorithm_and_later_starts_reuse_them() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = KeyRing::load_or_generate(&keys, 1).unwrap();
        let files = files::list(&keys).unwrap();
        assert_eq!(
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            [
                "rs256-000000000001.pem",
                "es256-000000000001.pem",
                "ed25519-000000000001.pem"
            ]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in &files {
                assert_eq!(
                    fs::metadata(&file.path).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
            assert_eq!(
                fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let second = KeyRing::load_or_generate(&keys, 2).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwks(), second.jwks());
        let jwks = second.jwks();
        let published: Vec<(&str, &str, &str)> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                assert!(
                    k.get("d").is_none(),
                    "the JWKS must not publish the private key"
                );
                assert_eq!(k["use"], "sig");
                (
                    k["kty"].as_str().unwrap(),
                    k["alg"].as_str().unwrap(),
                    k["kid"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            published,
            [
                ("RSA", "RS256", first.kid().as_str()),
                ("EC", "ES256", first.signing_kid(SigningAlg::ES256).as_str()),
                (
                    "OKP",
                    "EdDSA",
                    first.signing_kid(SigningAlg::EdDSA).as_str()
                ),
            ]
        );
        assert_eq!(jwks["keys"][1]["crv"], "P-256");
        assert_eq!(jwks["keys"][2]["crv"], "Ed25519");
        assert_eq!(
            serde_json::from_slice::<Value>(&second.jwks_body()).unwrap(),
            *jwks
        );
    }

    #[test]
    fn an_existing_rs256_folder_keeps_its_key_and_gains_the_other_families() {
        let dir = tempfile::tempdir().unwrap();
        files::write_new(dir.path(), SigningAlg::RS256, 5, Taken::UseIt).unwrap();
        let before = KeyRing::load_or_generate(dir.path(), 5).unwrap().kid();
        fs::remove_file(dir.path().join("es256-000000000005.pem")).unwrap();
        fs::remove_file(dir.path().join("ed25519-000000000005.pem")).unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 100).unwrap();
        assert_eq!(ring.kid(), before);
        assert_eq!(files::list(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn signed_tokens_verify_with_the_published_key_of_their_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 1).unwrap();
        for alg in SigningAlg::ALL {
            let token = ring
                .sign_with(alg, &json!({"sub": "x"}), "logout+jwt")
                .unwrap();
            let header = header(&token);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["typ"], "logout+jwt");
            assert_eq!(header["kid"], ring.signing_kid(alg));
            let jwk = ring.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == header["kid"])
                .map(|k| Jwk::from_map(k.as_object().unwrap().clone()).unwrap())
                .unwrap();
            let verifier: Box<dyn JwsVerifier> = match alg {
                SigningAlg::RS256 => Box::new(RS256.verifier_from_jwk(&jwk).unwrap()),
                SigningAlg::ES256 => Box::new(ES256.verifier_from_jwk(&jwk).unwrap()),
                SigningAlg::EdDSA => Box::new(EdDSA.verifier_from_jwk(&jwk).unwrap()),
            };
            let (payload, _) = josekit::jws::deserialize_compact(&token, &*verifier).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&payload).unwrap()["sub"],
                "x"
            );
            assert_eq!(ring.verify(&token).unwrap()["sub"], "x");
        }
        let token = ring.sign(&json!({"sub": "x"})).unwrap();
        assert_eq!(header(&token)["alg"], "RS256");
        assert_eq!(header(&token)["typ"], "JWT");
        assert_eq!(header(&token)["kid"], ring.kid());
    }

    #[test]
    fn the_ring_verifies_its_own_tokens_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 1).unwrap();
        let token = ring.sign(&json!({"sub": "x"})).unwrap();
        assert_eq!(ring.verify(&token).unwrap()["sub"], "x");

        // A changed payload, a changed signature, another key, no signature.
        let parts: Vec<&str> = token.split('.').collect();
        let other_payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"y"}"#);
        let forged = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
        assert!(ring.verify(&forged).is_err());
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[10] ^= 1;
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert!(ring.verify(&tampered).is_err());
        let elsewhere = tempfile::tempdir().unwrap();
        let stranger = KeyRing::load_or_generate(elsewhere.path(), 1).unwrap();
        for alg in SigningAlg::ALL {
            let theirs = stranger
                .sign_with(alg, &json!({"sub": "x"}), "JWT")
                .unwrap();
            assert!(ring.verify(&theirs).is_err());
        }
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(ring.verify(&none).is_err());
        let no_kid = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            parts[1],
            parts[2]
        );
        assert!(ring.verify(&no_kid).is_err());
        assert!(ring.verify("not a token").is_err());
    }

    #[test]
    fn a_key_s_kid_under_another_algorithm_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 1).unwrap();
        let claims = json!({"sub": "x"});
        for signed in SigningAlg::ALL {
            let token = ring.sign_with(signed, &claims, "JWT").unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            for claimed in ["RS256", "ES256", "EdDSA", "PS256", "HS256", "none"] {
                if claimed == signed.as_str() {
                    continue;
                }
                let relabelled = URL_SAFE_NO_PAD
                    .encode(json!({"alg": claimed, "kid": ring.signing_kid(signed)}).to_string());
                let token = format!("{relabelled}.{}.{}", parts[1], parts[2]);
                assert!(ring.verify(&token).is_err(), "{signed} as {claimed}");
            }
        }
    }

    #[test]
    fn a_rotation_is_published_at_once_and_signs_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = 1_000_000;
        let ring = KeyRing::load_or_generate(dir.path(), t0).unwrap();
        let old = ring.signing_kid(SigningAlg::ES256);
        let before = ring.jwks_body();
        assert!(!ring.reload(t0 + 5).unwrap(), "nothing changed");
        assert_eq!(
            ring.jwks_body().as_ptr(),
            before.as_ptr(),
            "not serialised again"
        );

        let rotation = rotate(dir.path(), &[SigningAlg::ES256], t0 + 60).unwrap();
        assert_eq!(
            rotation.created,
            [dir.path().join("es256-000001000060.pem")]
        );
        assert!(rotation.deleted.is_empty());
        assert!(ring.reload(t0 + 60).unwrap());
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 4);
        assert_eq!(ring.signing_kid(SigningAlg::ES256), old);

        assert!(!ring.reload(t0 + 60 + PUBLICATION_DELAY - 1).unwrap());
        assert!(ring.reload(t0 + 60 + PUBLICATION_DELAY).unwrap());
        let new = ring.signing_kid(SigningAlg::ES256);
        assert_ne!(new, old);
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][1]["kid"], new, "the signer comes first");
        assert_eq!(jwks["keys"][2]["kid"], old, "the retired key stays");

        // Past the retention the old key is dropped, then deleted.
        let expiry = t0 + 60 + PUBLICATION_DELAY + RETENTION;
        assert!(!ring.reload(expiry - 1).unwrap());
        assert!(ring.reload(expiry).unwrap());
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 3);
        let rotation = rotate(dir.path(), &[], expiry).unwrap();
        assert_eq!(
            rotation.deleted,
            [dir.path().join("es256-000001000000.pem")]
        );
        assert!(rotation.created.is_empty());
        assert!(!ring.reload(expiry).unwrap());
    }

    #[test]
    fn rotating_twice_in_a_second_adds_two_keys() {
        let dir = tempfile::tempdir().unwrap();
        rotate(dir.path(), &[SigningAlg::EdDSA], 9).unwrap();
        rotate(dir.path(), &[SigningAlg::EdDSA], 9).unwrap();
        let names: Vec<String> = files::list(dir.path())
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            ["ed25519-000000000009.pem", "ed25519-000000000010.pem"]
        );
    }

    #[test]
    fn a_broken_key_file_keeps_the_current_set() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 1).unwrap();
        let kid = ring.kid();
        fs::write(dir.path().join("rs256-000000000002.pem"), "not a key").unwrap();
        assert!(ring.reload(2 + PUBLICATION_DELAY).is_err());
        assert_eq!(ring.kid(), kid);
        assert!(KeyRing::load_or_generate(dir.path(), 3).is_err());
        let listed = list(dir.path(), 3).unwrap();
        assert!(listed[1].kid.is_err());
        assert_eq!(listed[0].kid.as_deref(), Ok(kid.as_str()));
    }

    #[test]
    fn a_copied_key_is_published_once() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 1).unwrap();
        let kid = ring.kid();
        fs::copy(
            dir.path().join("rs256-000000000001.pem"),
            dir.path().join("rs256-000000000002.pem"),
        )
        .unwrap();
        assert!(ring.reload(2 + PUBLICATION_DELAY).unwrap());
        assert_eq!(ring.kid(), kid);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 3);
        let token = ring.sign(&json!({})).unwrap();
        assert!(ring.verify(&token).is_ok());
    }
}
