//! Signing keys: RS256 keys under `keys/` (generated on first start, mode 0600),
//! the JWKS that publishes them, and JWT signing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::alg::rsassa::{RsassaJwsSigner, RsassaJwsVerifier};
use josekit::jws::{JwsHeader, JwsVerifier, RS256};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The keys Clef signs with and publishes. The newest key (by file name) signs;
/// every key in the folder stays in the JWKS so tokens signed before a rotation
/// still verify.
pub struct KeyRing {
    signer: RsassaJwsSigner,
    kid: String,
    jwks: Value,
    /// One per published key, each bound to its `kid`.
    verifiers: Vec<RsassaJwsVerifier>,
}

const PREFIX: &str = "rs256-";

impl KeyRing {
    /// Loads `dir/rs256-*.pem`, generating a 2048-bit key when there is none.
    pub fn load_or_generate(dir: &Path, now: i64) -> anyhow::Result<Self> {
        let mut files = pem_files(dir)?;
        if files.is_empty() {
            let path = generate(dir, now)?;
            tracing::info!(path = %path.display(), "generated a new RS256 signing key");
            files.push(path);
        }
        let mut jwks = Vec::new();
        let mut verifiers = Vec::new();
        let mut newest = None;
        for path in &files {
            let pem = fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
            let pair = RsaKeyPair::from_pem(&pem)
                .with_context(|| format!("parsing key {}", path.display()))?;
            let mut public = josekit::jwk::KeyPair::to_jwk_public_key(&pair);
            let kid = thumbprint(&public)?;
            public.set_key_id(&kid);
            public.set_key_use("sig");
            public.set_algorithm("RS256");
            let mut verifier = RS256
                .verifier_from_jwk(&public)
                .with_context(|| format!("verifier for key {}", path.display()))?;
            verifier.set_key_id(&kid);
            verifiers.push(verifier);
            jwks.push(Value::Object(public.as_ref().clone()));
            newest = Some((pem, kid));
        }
        let Some((pem, kid)) = newest else {
            bail!("no signing key in {}", dir.display())
        };
        let mut signer = RS256
            .signer_from_pem(&pem)
            .context("loading the signing key")?;
        signer.set_key_id(&kid);
        Ok(Self {
            signer,
            kid,
            jwks: json!({ "keys": jwks }),
            verifiers,
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a compact JWS with `typ: JWT` and the signing key's `kid`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        self.sign_typed(claims, "JWT")
    }

    /// Signs `claims` with the given `typ` header (`logout+jwt` for Back-Channel Logout §2.4).
    pub fn sign_typed(&self, claims: &Value, typ: &str) -> anyhow::Result<String> {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&self.kid);
        let payload = serde_json::to_vec(claims)?;
        Ok(josekit::jws::serialize_compact(
            &payload,
            &header,
            &self.signer,
        )?)
    }
}

impl KeyRing {
    /// The claims of a compact JWS that one of the ring's keys signed (RS256,
    /// chosen by `kid`), or why not. The claims themselves (`iss`, `exp`…) are
    /// the caller's to judge: an ID token used as a logout hint may have expired.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, josekit::JoseError> {
        let (payload, _header) =
            josekit::jws::deserialize_compact_with_selector(token, |header| {
                Ok(self
                    .verifiers
                    .iter()
                    .find(|v| v.key_id().is_some() && v.key_id() == header.key_id())
                    .map(|v| v as &dyn JwsVerifier))
            })?;
        serde_json::from_slice(&payload)
            .map_err(|e| josekit::JoseError::InvalidJson(anyhow::Error::new(e)))
    }
}

fn pem_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading keys dir {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(PREFIX) && name.ends_with(".pem")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Writes a new key readable by its owner only; the folder is created 0700.
fn generate(dir: &Path, now: i64) -> anyhow::Result<PathBuf> {
    create_private_dir(dir)?;
    let pair = RS256
        .generate_key_pair(2048)
        .context("generating an RSA key")?;
    let path = dir.join(format!("{PREFIX}{now:012}.pem"));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&josekit::jwk::KeyPair::to_pem_private_key(&pair))?;
    file.sync_all()?;
    Ok(path)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating keys dir {}", dir.display()))
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexical order.
fn thumbprint(jwk: &Jwk) -> anyhow::Result<String> {
    let member = |name: &str| {
        jwk.parameter(name)
            .and_then(Value::as_str)
            .context("RSA JWK without n or e")
    };
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        member("e")?,
        member("n")?
    );
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_generates_a_private_key_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = KeyRing::load_or_generate(&keys, 1).unwrap();
        let files = pem_files(&keys).unwrap();
        assert_eq!(files.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let second = KeyRing::load_or_generate(&keys, 2).unwrap();
        assert_eq!(first.kid(), second.kid());
        let jwk = &second.jwks()["keys"][0];
        assert_eq!(jwk["kid"], first.kid());
        assert_eq!(jwk["alg"], "RS256");
        assert!(
            jwk.get("d").is_none(),
            "the JWKS must not publish the private exponent"
        );
    }

    #[test]
    fn signed_tokens_verify_with_the_published_key() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), 1).unwrap();
        let token = ring.sign(&json!({"sub": "x"})).unwrap();
        let jwk = Jwk::from_map(ring.jwks()["keys"][0].as_object().unwrap().clone()).unwrap();
        let verifier = RS256.verifier_from_jwk(&jwk).unwrap();
        let (payload, header) = josekit::jws::deserialize_compact(&token, &verifier).unwrap();
        assert_eq!(header.key_id(), Some(ring.kid()));
        assert_eq!(
            serde_json::from_slice::<Value>(&payload).unwrap()["sub"],
            "x"
        );
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
        assert!(
            ring.verify(&stranger.sign(&json!({"sub": "x"})).unwrap())
                .is_err()
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(ring.verify(&none).is_err());
        assert!(ring.verify("not a token").is_err());
    }
}
