//! Password hashing with argon2id, off the async runtime and bounded to the cores.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every core is hashing and the queue did not move in time: the caller
    /// answers 503 with Retry-After rather than letting memory grow.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The hashing pool. Each hash holds 19 MiB for ~25 ms, so at most one runs per
/// core; a login storm queues for `queue_timeout`, then is turned away.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Verified when the identifier is unknown, so the answer takes as long as
    /// for a known one (no account enumeration through timing).
    dummy_hash: Arc<str>,
}

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

impl Passwords {
    pub fn new(queue_timeout: Duration) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let dummy_hash = argon2()
            .hash_password(b"clef-dummy-password")
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(cores)),
            queue_timeout,
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move || {
            argon2()
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Internal(e.to_string()))
        })
        .await?
    }

    /// Checks `password` against `hash`; with no hash (unknown account, or no
    /// password yet) a dummy is verified and the answer is `false`.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.clone();
        let matches = self
            .run(move || {
                argon2()
                    .verify_password(password.expose_secret().as_bytes(), &*hash)
                    .is_ok()
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| PasswordError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let passwords = Passwords::new(Duration::from_secs(5)).unwrap();
        let hash = passwords
            .hash(&"Soleil2024".to_string().into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify(&"Soleil2024".to_string().into(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&"soleil2024".to_string().into(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&"clef-dummy-password".to_string().into(), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_saturated_pool_answers_busy_instead_of_queueing_forever() {
        let passwords = Passwords::new(Duration::from_millis(20)).unwrap();
        let cores =
            u32::try_from(std::thread::available_parallelism().map_or(2, |n| n.get())).unwrap();
        let _every_core = passwords
            .permits
            .clone()
            .acquire_many_owned(cores)
            .await
            .unwrap();
        let result = passwords.hash(&"Soleil2024".to_string().into()).await;
        assert!(matches!(result, Err(PasswordError::Busy)));
    }
}
