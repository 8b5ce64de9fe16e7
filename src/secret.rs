//! Random tokens and their digests: what Clef hands out is random, what it keeps is a hash.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes from the thread-local CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The hex SHA-256 of a token: the key under which a code, a session or an
/// access token is stored, so a leak of the store yields nothing usable.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// base64url(SHA-256(input)) — PKCE S256 (RFC 7636 §4.2).
pub fn s256(input: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// The left half of SHA-256 of a token, base64url: `at_hash` (OIDC Core
/// §3.1.3.6) of a token signed with RS256 or ES256.
pub fn left_half_hash(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash[..16])
}

/// `at_hash` under EdDSA (Ed25519, whose hash is SHA-512): the left half of
/// SHA-512, as relying-party libraries compute it.
pub fn left_half_hash_512(token: &str) -> String {
    let hash = sha2::Sha512::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash[..32])
}

/// A 32-byte secret kept in `path` (mode 0600), generated on first use. Several
/// instances starting together on a fresh folder agree: the key is written to a
/// private temporary file, then linked into place, which fails if another
/// instance got there first — whose complete key is then read.
pub fn load_or_create_key(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    let key = match fs::read(path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(Path::new("."));
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut key = vec![0u8; 32];
            rand::rng().fill(&mut key[..]);
            let temporary = dir.join(format!(".{what}-{}.tmp", random_token(9)));
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options.open(&temporary).and_then(|mut file| {
                file.write_all(&key)?;
                file.sync_all()
            });
            let linked = written.and_then(|()| fs::hard_link(&temporary, path));
            let _ = fs::remove_file(&temporary);
            match linked {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated the {what} key");
                    key
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fs::read(path)?,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    key.try_into()
        .map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn tokens_are_random_and_digests_stable() {
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(
            constant_time_eq("abc", "abc")
                && !constant_time_eq("abc", "abd")
                && !constant_time_eq("abc", "ab")
        );
    }
}
