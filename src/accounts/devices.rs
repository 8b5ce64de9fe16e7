//! Device cookies (OWASP "Slow brute-force with device cookies"): a browser
//! that signed in to an account before carries a proof of it, and its attempts
//! on that account are counted on their own, so an attacker who knows a
//! parent's identifier cannot keep the parent's own browser out.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::{load_or_create_key, random_token};

/// At most this many accounts are remembered per browser (a family computer).
pub const MAX_PER_BROWSER: usize = 4;

const KEY_FILE: &str = "device-cookie.key";

/// The key that signs device cookies, shared by every instance through `keys/`.
#[derive(Clone)]
pub struct DeviceKey {
    /// HMAC-SHA256 keyed once; cloned for each proof.
    keyed: Hmac<Sha256>,
}

/// A browser recognised for an account: its attempts are counted under this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice(String);

impl TrustedDevice {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub fn for_tests(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl DeviceKey {
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let key = load_or_create_key(&dir.join(KEY_FILE), "device-cookie")?;
        let keyed = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| anyhow::anyhow!("device-cookie key: {e}"))?;
        Ok(Self { keyed })
    }

    fn mac(&self, identifier: &str, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(b"clef-device\0");
        mac.update(identifier.as_bytes());
        mac.update(b"\0");
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new proof that this browser signed in as `identifier`: `nonce.mac`.
    pub fn issue(&self, identifier: &str) -> String {
        let nonce = random_token(16);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(identifier, &nonce).finalize().into_bytes());
        format!("{nonce}.{tag}")
    }

    /// A keyed digest of `value` for another `purpose` than device cookies
    /// (hex HMAC-SHA256, domain-separated): what an attacker holding the
    /// store or guessing inputs offline cannot recompute without the key.
    pub fn tag(&self, purpose: &str, value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(b"clef-");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The entry of `entries` that proves a past sign-in as `identifier`, if any.
    pub fn recognise<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a str>,
        identifier: &str,
    ) -> Option<TrustedDevice> {
        entries.into_iter().find_map(|entry| {
            let (nonce, tag) = entry.split_once('.')?;
            let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
            // verify_slice compares in constant time.
            self.mac(identifier, nonce)
                .verify_slice(&tag)
                .ok()
                .map(|()| TrustedDevice(nonce.to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_recognised_only_for_its_identifier_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::load_or_generate(dir.path()).unwrap();
        let proof = key.issue("marie.martin");
        assert!(key.recognise([proof.as_str()], "marie.martin").is_some());
        assert!(key.recognise([proof.as_str()], "paul.martin").is_none());
        let forged = format!("{}.AAAA", proof.split_once('.').unwrap().0);
        assert!(
            key.recognise(["garbage", "", forged.as_str()], "marie.martin")
                .is_none()
        );
        let other = DeviceKey::load_or_generate(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.recognise([proof.as_str()], "marie.martin").is_none());
        // Reloaded from its file, the key still recognises its proofs.
        let again = DeviceKey::load_or_generate(dir.path()).unwrap();
        assert!(
            again
                .recognise(["x.y", proof.as_str()], "marie.martin")
                .is_some()
        );
    }
}
