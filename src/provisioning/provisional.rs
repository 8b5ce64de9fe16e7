//! Provisional passwords (SPEC §2): 8 characters from an unambiguous alphabet,
//! from a CSPRNG, kept encrypted (AES-256-GCM, key under `keys/`) so a letter can
//! be reprinted until activation, and erased at activation or expiry.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};

use crate::secret::load_or_create_key;

/// Upper-case letters and digits without the look-alikes 0/O, 1/I/L.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const LENGTH: usize = 8;

pub fn generate() -> SecretString {
    let mut rng = rand::rng();
    let password: String = (0..LENGTH)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    password.into()
}

/// Encrypts and decrypts provisional passwords. The account id is bound as
/// associated data, so a ciphertext copied to another row does not decrypt.
pub struct LetterCipher {
    cipher: Aes256Gcm,
}

const KEY_FILE: &str = "provisional-passwords.key";

impl LetterCipher {
    /// Loads `dir/provisional-passwords.key`, creating it (0600) on first start.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let key = load_or_create_key(&dir.join(KEY_FILE), "provisional-password")?;
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
        })
    }

    pub fn encrypt(&self, account_id: &str, password: &SecretString) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill(&mut nonce[..]);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: password.expose_secret().as_bytes(),
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting a provisional password"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(STANDARD_NO_PAD.encode(out))
    }

    pub fn decrypt(&self, account_id: &str, sealed: &str) -> anyhow::Result<SecretString> {
        let bytes = STANDARD_NO_PAD
            .decode(sealed)
            .context("provisional password encoding")?;
        if bytes.len() < 12 {
            bail!("provisional password ciphertext too short");
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "a provisional password does not decrypt with this key: is keys_dir \
                     (CLEF_KEYS_DIR) the keys folder of the instances that imported the \
                     pupils? (its provisional-passwords.key sealed them)"
                )
            })?;
        Ok(String::from_utf8(plain)
            .context("provisional password is not UTF-8")?
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let password = generate();
            let password = password.expose_secret();
            assert_eq!(password.len(), LENGTH);
            assert!(
                password.bytes().all(|b| ALPHABET.contains(&b)),
                "{password}"
            );
            assert!(!password.contains(['0', 'O', '1', 'I', 'L']));
        }
    }

    #[test]
    fn ciphertexts_decrypt_only_for_their_account_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let cipher = LetterCipher::load_or_generate(dir.path()).unwrap();
        let sealed = cipher
            .encrypt("account-a", &"DCBRJDWH".to_string().into())
            .unwrap();
        assert_eq!(
            cipher
                .decrypt("account-a", &sealed)
                .unwrap()
                .expose_secret(),
            "DCBRJDWH"
        );
        assert!(cipher.decrypt("account-b", &sealed).is_err());
        let again = LetterCipher::load_or_generate(dir.path()).unwrap();
        assert_eq!(
            again.decrypt("account-a", &sealed).unwrap().expose_secret(),
            "DCBRJDWH"
        );
        let other = LetterCipher::load_or_generate(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.decrypt("account-a", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
