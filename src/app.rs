//! The running identity provider: configuration, storage, keys and clock, built once at start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::accounts::Passwords;
use crate::accounts::devices::DeviceKey;
use crate::accounts::throttle::Throttle;
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::{Mailer, SmsSender};
use crate::keys::KeyRing;
use crate::metrics::{Metrics, Store};
use crate::oidc::backchannel::Courier;
use crate::oidc::claims::Subjects;
use crate::oidc::discovery;
use crate::oidc::grants::{AccessTokens, Codes, PendingRequests};
use crate::provisioning::provisional::LetterCipher;
use crate::storage::{self, Db, ShortLived};

pub struct Clef {
    pub config: Config,
    pub db: Db,
    pub store: ShortLived,
    pub keys: KeyRing,
    pub clock: Arc<dyn Clock>,
    pub passwords: Passwords,
    pub mailer: Mailer,
    pub sms: SmsSender,
    /// Seals the provisional passwords printed on letters.
    pub letters: LetterCipher,
    /// Signs the device cookies of browsers that signed in before.
    pub devices: DeviceKey,
    /// Counts attempts and requests (`accounts::throttle`).
    pub throttle: Throttle,
    pub metrics: Metrics,
    /// Authorization codes, access tokens and parked requests, in the short-lived store.
    pub codes: Codes,
    pub access_tokens: AccessTokens,
    pub pending: PendingRequests,
    /// The `sub` each client sees (public or pairwise).
    pub subjects: Subjects,
    /// Posts back-channel logout tokens to relying parties.
    pub courier: Courier,
    /// The discovery document, serialised once: it only changes with a restart.
    /// (The JWKS is the key ring's, serialised when its keys change.)
    pub discovery_json: String,
    /// Registered clients, read from the database at most every few seconds.
    pub clients: crate::oidc::clients::ClientCache,
    /// Writes what code exchanges leave in the database, in batches.
    pub ledger: crate::oidc::ledger::Ledger,
    /// Reads the accounts of code exchanges, refreshes and UserInfo, in batches.
    pub account_reads: crate::accounts::reads::AccountReads,
    /// Rotates refresh tokens, in batches.
    pub rotations: crate::oidc::rotations::Rotations,
    /// Work a request started and that outlives it (a back-office import,
    /// a recovery message):
    /// a graceful shutdown waits for it as for requests in flight.
    pub background: tokio_util::task::TaskTracker,
    /// Open while the database is found unavailable: requests that need it
    /// then answer 503 at once.
    pub breaker: Arc<storage::Breaker>,
    /// What `/readyz` answered last: its log tells the changes, not every probe.
    pub was_ready: std::sync::atomic::AtomicBool,
    /// One letters PDF laid out at a time per instance: a thousand letters
    /// take about a hundred megabytes while they are (`provisioning::letters`).
    pub letters_printing: tokio::sync::Semaphore,
}

/// Which store an error chain comes from, if any.
fn failing_store(cause: &anyhow::Error) -> Option<Store> {
    cause.chain().find_map(|c| {
        if c.is::<redis::RedisError>() {
            Some(Store::short_lived)
        } else if c.is::<sqlx::Error>() || c.is::<storage::DatabaseDown>() {
            Some(Store::database)
        } else {
            None
        }
    })
}

impl Clef {
    /// An internal failure counted by the store it came from (each is a
    /// request someone did not get served, 503 or an error sent back to a
    /// service), the database's breaker tripped when it is unreachable.
    pub fn count_failure(&self, cause: &anyhow::Error) {
        if let Some(store) = failing_store(cause) {
            self.metrics.store_error(store);
            if store == Store::database && storage::database_unreachable(cause) {
                self.breaker.trip();
            }
        }
    }

    /// Opens the database (migrating it), the short-lived store and the keys.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Self>> {
        if let Some(dir) = &config.theme_dir {
            crate::web::theme::load(dir)?;
        }
        let db = storage::open(&storage::database_url(&config)?).await?;
        let store = match &config.redis_url {
            Some(url) => {
                let target = storage::RedisTarget {
                    url: url.expose_secret(),
                    cluster: config.redis_cluster,
                    ca_file: config.redis_ca_file.as_deref(),
                };
                ShortLived::redis(&target, &config.redis_prefix).await?
            }
            None => ShortLived::memory(),
        };
        let keys = KeyRing::load_or_generate(&config.keys_dir, clock.now())
            .context("loading signing keys")?;
        keys.spawn_reloader(clock.clone());
        if config.id_token_ttl >= crate::keys::RETENTION {
            tracing::warn!(
                "id_token_ttl is longer than the signing keys' retention: \
                 ID tokens may outlive the key that signed them"
            );
        }
        let passwords = Passwords::new(Duration::from_secs(10))?;
        let letters =
            LetterCipher::load_or_generate(&config.keys_dir).context("loading the letter key")?;
        let devices = DeviceKey::load_or_generate(&config.keys_dir)
            .context("loading the device-cookie key")?;
        let throttle = Throttle::new(store.clone(), devices.clone());
        let metrics = Metrics::default();
        let codes = Codes::new(&store, config.code_ttl, config.access_token_ttl);
        let access_tokens = AccessTokens::new(&store, config.access_token_ttl);
        let pending = PendingRequests::new(&store);
        let subjects =
            Subjects::load_or_generate(&config.keys_dir).context("loading the pairwise key")?;
        let courier = Courier::new()?;
        let mailer = Mailer::from_config(&config, metrics.clone())?;
        let sms = SmsSender::from_config(&config, metrics.clone())?;
        let discovery_json = discovery::document(&config).to_string();
        let breaker = storage::Breaker::new(db.clone());
        let ledger = crate::oidc::ledger::Ledger::start(
            db.clone(),
            &breaker,
            metrics.exchange_batches.clone(),
        );
        let account_reads = crate::accounts::reads::AccountReads::start(db.clone(), &breaker);
        let rotations = crate::oidc::rotations::Rotations::start(db.clone(), &breaker);
        Ok(Arc::new(Self {
            config,
            db,
            store,
            keys,
            clock,
            passwords,
            letters,
            devices,
            throttle,
            metrics,
            codes,
            access_tokens,
            pending,
            subjects,
            courier,
            mailer,
            sms,
            discovery_json,
            clients: Default::default(),
            ledger,
            account_reads,
            rotations,
            background: tokio_util::task::TaskTracker::new(),
            breaker,
            was_ready: std::sync::atomic::AtomicBool::new(true),
            letters_printing: tokio::sync::Semaphore::new(1),
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
