//! Device cookies (OWASP "Slow brute-force with device cookies"): a browser
//! that signed in to an account before carries a proof of it, and its attempts
//! on that account are counted on their own, so an attacker who knows a
//! parent's identifier cannot keep the parent's own browser out.
//!
//! A proof holds for the account's credentials as they were when it was
//! issued (its [`stamp`](crate::accounts::Account::credential_stamp)): once
//! the password is set, reset or changed, or a new letter printed, the proofs
//! of before prove nothing — neither the ones the holder of a lost letter
//! collected nor those of whoever knew the password a reset took away.

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

    fn mac(&self, identifier: &str, stamp: &str, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(b"clef-device\0");
        mac.update(identifier.as_bytes());
        mac.update(b"\0");
        mac.update(stamp.as_bytes());
        mac.update(b"\0");
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new proof that this browser signed in as `identifier` while its
    /// credentials were `stamp`: `nonce.mac`.
    pub fn issue(&self, identifier: &str, stamp: &str) -> String {
        self.proof(identifier, stamp, &random_token(16))
    }

    /// The proof under `nonce`: `nonce.mac`.
    fn proof(&self, identifier: &str, stamp: &str, nonce: &str) -> String {
        let tag =
            URL_SAFE_NO_PAD.encode(self.mac(identifier, stamp, nonce).finalize().into_bytes());
        format!("{nonce}.{tag}")
    }

    /// The proof a letter carries in its QR code for its account (`stamp`:
    /// the letter's sealed password): the browser that opens it holds the
    /// letter, and so gets the device cookie a sign-in would give, escaping
    /// the delay a stranger trying the identifier keeps going. The same for
    /// every print of one letter; a new letter's proves nothing of the old.
    pub fn letter_proof(&self, identifier: &str, stamp: &str) -> String {
        let mut nonce = self.tag("letter-device", &format!("{identifier}\0{stamp}"));
        nonce.truncate(22);
        self.proof(identifier, stamp, &nonce)
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

    /// The entry of `entries` that proves a past sign-in as `identifier`
    /// with its credentials still `stamp`, if any.
    pub fn recognise<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a str>,
        identifier: &str,
        stamp: &str,
    ) -> Option<TrustedDevice> {
        entries.into_iter().find_map(|entry| {
            let (nonce, tag) = entry.split_once('.')?;
            let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
            // verify_slice compares in constant time.
            self.mac(identifier, stamp, nonce)
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
    fn a_proof_is_recognised_only_for_its_identifier_credentials_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::load_or_generate(dir.path()).unwrap();
        let proof = key.issue("marie.martin", "hash-1");
        let recognised = |key: &DeviceKey, entries: &[&str], identifier, stamp| {
            key.recognise(entries.iter().copied(), identifier, stamp)
                .is_some()
        };
        assert!(recognised(&key, &[&proof], "marie.martin", "hash-1"));
        assert!(!recognised(&key, &[&proof], "paul.martin", "hash-1"));
        assert!(
            !recognised(&key, &[&proof], "marie.martin", "hash-2"),
            "a password set since"
        );
        let forged = format!("{}.AAAA", proof.split_once('.').unwrap().0);
        assert!(!recognised(
            &key,
            &["garbage", "", &forged],
            "marie.martin",
            "hash-1"
        ));
        let other = DeviceKey::load_or_generate(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(!recognised(&other, &[&proof], "marie.martin", "hash-1"));
        // Reloaded from its file, the key still recognises its proofs.
        let again = DeviceKey::load_or_generate(dir.path()).unwrap();
        assert!(recognised(
            &again,
            &["x.y", &proof],
            "marie.martin",
            "hash-1"
        ));
    }
}
