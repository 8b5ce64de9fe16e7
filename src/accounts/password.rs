//! Password hashing with argon2id on dedicated workers, one per core, each reusing one memory block.
//!
//! Why workers rather than `spawn_blocking`: every argon2id hash needs a 19 MiB block. Allocated
//! and freed per login, glibc's dynamic mmap threshold moves those blocks into the heap after the
//! first free, where a login storm fragments them and the process keeps ~800 MB (issue 6, item 9).
//! Here each worker allocates its block once and reuses it, so memory stays at
//! `workers × 19 MiB` whatever the load (SPEC §6), and hands the block's pages back to the
//! system after `IDLE_RELEASE` without requests. The PHC strings are the standard ones
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), parsed and written here with the
//! `password-hash` types, so hashes made by `argon2::Argon2::hash_password` verify and vice versa.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use flume::{Receiver, RecvTimeoutError, Sender, TrySendError};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::clock::TypicalDuration;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every worker is hashing and the queue is full, or a request waited in it longer than the
    /// queue timeout: the caller answers 503 with Retry-After rather than letting memory grow.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Requests waiting for a worker, at most. A waiting request holds a few hundred bytes (the
/// memory that matters is the workers' blocks); past this, or past the queue timeout, the
/// answer is `Busy`.
const QUEUE_CAPACITY: usize = 1024;

/// A worker with no request for this long returns its block's pages to the system (the block
/// stays allocated): an idle server on N cores does not keep N × 19 MiB.
const IDLE_RELEASE: Duration = Duration::from_secs(5);
/// Where the average check starts, before any is measured: about one
/// argon2id hash at the OWASP parameters on a server core.
const CHECK_START: Duration = Duration::from_millis(40);

/// The hashing workers. Cloning shares them; when the last clone is dropped the workers stop
/// and free their blocks.
#[derive(Clone)]
pub struct Passwords {
    queue: Sender<Job>,
    queue_timeout: Duration,
    counters: Arc<Counters>,
    /// Verified when the identifier is unknown (or the stored hash unreadable), so the answer
    /// takes as long as for a known one (no account enumeration through timing). A random salt
    /// and output with the production parameters: no password matches it, and it costs no hash
    /// to make.
    dummy_hash: Arc<StoredHash>,
    /// How long a check takes, waiting for a worker included: what an
    /// attempt answered without one waits (`typical_check`).
    checked_in: Arc<TypicalDuration>,
}

/// A stored PHC string, read: the argon2 context its fields name, its salt, and the output
/// a matching password gives.
struct StoredHash {
    argon2: Argon2<'static>,
    salt: Salt,
    output: Output,
}

impl StoredHash {
    fn read(phc: &str) -> Result<Self, String> {
        let hash = PasswordHash::new(phc).map_err(|e| e.to_string())?;
        Self::from_phc(&hash)
    }

    fn from_phc(hash: &PasswordHash) -> Result<Self, String> {
        let (Some(salt), Some(output)) = (hash.salt, hash.hash) else {
            return Err("no salt or no output".into());
        };
        let algorithm = Algorithm::new(hash.algorithm.as_str()).map_err(|e| e.to_string())?;
        let version = hash
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        // The output length comes from the stored output.
        let params = Params::try_from(hash).map_err(|e| e.to_string())?;
        Ok(Self {
            argon2: Argon2::new(algorithm, version, params),
            salt,
            output,
        })
    }
}

#[derive(Default)]
struct Counters {
    /// Memory blocks the workers have allocated: one each, unless a stored hash asks for more
    /// memory than the parameters in force.
    blocks: AtomicUsize,
}

struct Job {
    work: Work,
    /// Taken from the queue later than this, the request is answered `Busy`.
    deadline: Instant,
    reply: oneshot::Sender<Result<Done, PasswordError>>,
}

enum Work {
    Hash(SecretString),
    Verify(SecretString, Arc<StoredHash>),
    /// Keeps a worker busy until released (tests of a saturated queue).
    #[cfg(test)]
    Hold {
        started: oneshot::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    },
}

enum Done {
    Hashed(String),
    Verified(bool),
}

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
fn params() -> Params {
    Params::default()
}

impl Passwords {
    /// Starts one worker per core; a request waits at most `queue_timeout` for one.
    pub fn new(queue_timeout: Duration) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_workers(cores, QUEUE_CAPACITY, queue_timeout)
    }

    fn with_workers(
        workers: usize,
        capacity: usize,
        queue_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let (queue, jobs) = flume::bounded(capacity);
        let counters = Arc::new(Counters::default());
        for n in 0..workers {
            let (jobs, counters) = (jobs.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("clef-hash-{n}"))
                .spawn(move || work(&jobs, &counters))
                .context("starting a password-hashing worker")?;
        }
        Ok(Self {
            queue,
            queue_timeout,
            counters,
            dummy_hash: Arc::new(dummy_hash().map_err(|e| anyhow::anyhow!("dummy hash: {e}"))?),
            checked_in: Arc::new(TypicalDuration::starting_at(CHECK_START)),
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        match self.submit(Work::Hash(password.clone())).await? {
            Done::Hashed(hash) => Ok(hash),
            Done::Verified(_) => Err(PasswordError::Internal("unexpected answer".into())),
        }
    }

    /// Checks `password` against `hash`; with no hash (unknown account, or no
    /// password yet) or an unreadable one, a dummy is verified and the answer is `false`.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let stored = match hash.map(StoredHash::read) {
            Some(Ok(stored)) => Some(Arc::new(stored)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a stored password hash is unreadable");
                None
            }
            None => None,
        };
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let started = Instant::now();
        match self.submit(Work::Verify(password.clone(), hash)).await? {
            Done::Verified(matches) => {
                self.checked_in.record(started.elapsed());
                Ok(known && matches)
            }
            Done::Hashed(_) => Err(PasswordError::Internal("unexpected answer".into())),
        }
    }

    /// How long a password check usually takes, waiting for a worker
    /// included: an attempt answered without one waits as long, so that
    /// timing does not tell which were checked.
    pub fn typical_check(&self) -> Duration {
        self.checked_in.get()
    }

    /// Requests waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Memory blocks the workers have allocated so far: at most one per worker while stored
    /// hashes use the parameters in force.
    pub fn blocks_allocated(&self) -> usize {
        self.counters.blocks.load(Ordering::Relaxed)
    }

    async fn submit(&self, work: Work) -> Result<Done, PasswordError> {
        let answer = self.enqueue(work)?;
        answer
            .await
            .map_err(|_| PasswordError::Internal("a hashing worker stopped".into()))?
    }

    /// Queues `work` without waiting: a full queue answers `Busy` at once.
    fn enqueue(
        &self,
        work: Work,
    ) -> Result<oneshot::Receiver<Result<Done, PasswordError>>, PasswordError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work,
            deadline: Instant::now() + self.queue_timeout,
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(PasswordError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(PasswordError::Internal(
                "the hashing workers stopped".into(),
            )),
        }
    }
}

/// A worker: takes requests until every `Passwords` is dropped, hashing in its own block.
fn work(jobs: &Receiver<Job>, counters: &Counters) {
    let mut memory = Memory::default();
    loop {
        let Job {
            work,
            deadline,
            reply,
        } = match jobs.recv_timeout(IDLE_RELEASE) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                memory.release();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if reply.is_closed() {
            // The request was abandoned (the browser went away): nobody waits for this hash.
            continue;
        }
        if Instant::now() >= deadline {
            let _ = reply.send(Err(PasswordError::Busy));
            continue;
        }
        let done = catch_unwind(AssertUnwindSafe(|| match work {
            Work::Hash(password) => {
                hash_with(password.expose_secret().as_bytes(), &mut memory, counters)
                    .map(Done::Hashed)
            }
            Work::Verify(password, hash) => verify_with(
                password.expose_secret().as_bytes(),
                &hash,
                &mut memory,
                counters,
            )
            .map(Done::Verified),
            #[cfg(test)]
            Work::Hold { started, release } => {
                let _ = started.send(());
                let _ = release.recv();
                Ok(Done::Verified(false))
            }
        }))
        .unwrap_or_else(|_| Err(PasswordError::Internal("a hashing worker panicked".into())));
        let _ = reply.send(done);
    }
}

/// A worker's argon2 block: allocated at its first request, grown only if a stored hash asks
/// for more memory than the parameters in force, and reused for every hash.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
    /// Whether the pages may be resident (false after `release`, until the next hash).
    resident: bool,
}

impl Memory {
    /// The first `blocks` blocks. Argon2 writes every block before reading it, so what a
    /// previous hash left there (or the zeros after `release`) does not matter.
    fn get(&mut self, blocks: usize, counters: &Counters) -> &mut [Block] {
        if self.blocks.len() < blocks {
            self.blocks = vec![Block::new(); blocks];
            counters.blocks.fetch_add(1, Ordering::Relaxed);
        }
        self.resident = true;
        &mut self.blocks[..blocks]
    }

    /// Returns the block's whole pages to the system, keeping the allocation: they read as
    /// zeros afterwards and are faulted in again by the next hash. Freeing the block instead
    /// would hand it back to glibc, whose dynamic mmap threshold then keeps the next one in
    /// the heap (the storm that kept ~800 MB).
    #[cfg(unix)]
    fn release(&mut self) {
        if !self.resident {
            return;
        }
        self.resident = false;
        // SAFETY: sysconf only reads a system constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let base = self.blocks.as_mut_ptr().cast::<u8>();
        let start = base as usize;
        let end = start + std::mem::size_of_val(self.blocks.as_slice());
        let (first, last) = (start.next_multiple_of(page), end / page * page);
        if last > first {
            // SAFETY: [first, last) lies inside this Vec's allocation, which nothing else
            // references while the worker is between requests. MADV_DONTNEED on private
            // anonymous memory (all a Vec is given) only replaces those pages by zero-filled
            // ones on next access, and an all-zero `Block` is a valid value ([u64; 128]).
            let done = unsafe {
                libc::madvise(
                    base.add(first - start).cast(),
                    last - first,
                    libc::MADV_DONTNEED,
                )
            };
            if done != 0 {
                tracing::debug!(error = %std::io::Error::last_os_error(), "madvise");
            }
        }
    }

    #[cfg(not(unix))]
    fn release(&mut self) {}
}

fn internal(e: impl std::fmt::Display) -> PasswordError {
    PasswordError::Internal(e.to_string())
}

/// A new PHC string for `password` with a random salt and the parameters in force.
fn hash_with(
    password: &[u8],
    memory: &mut Memory,
    counters: &Counters,
) -> Result<String, PasswordError> {
    let params = params();
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    rand::rng().fill(&mut salt[..]);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password,
            &salt,
            &mut output,
            memory.get(params.block_count(), counters),
        )
        .map_err(internal)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(internal)?,
        salt: Some(Salt::new(&salt).map_err(internal)?),
        hash: Some(Output::new(&output).map_err(internal)?),
    };
    Ok(hash.to_string())
}

/// Recomputes `stored` (its own algorithm, version, parameters and salt) for `password` and
/// compares the outputs in constant time.
fn verify_with(
    password: &[u8],
    stored: &StoredHash,
    memory: &mut Memory,
    counters: &Counters,
) -> Result<bool, PasswordError> {
    let expected = stored.output.as_bytes();
    let mut output = [0u8; Output::MAX_LENGTH];
    let output = &mut output[..expected.len()];
    stored
        .argon2
        .hash_password_into_with_memory(
            password,
            stored.salt.as_ref(),
            output,
            memory.get(stored.argon2.params().block_count(), counters),
        )
        .map_err(internal)?;
    Ok(output.ct_eq(expected).into())
}

/// A well-formed hash with the production parameters that no password matches.
fn dummy_hash() -> Result<StoredHash, String> {
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    rand::rng().fill(&mut salt[..]);
    rand::rng().fill(&mut output[..]);
    StoredHash::from_phc(&PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&output).map_err(|e| e.to_string())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn secret(s: &str) -> SecretString {
        s.to_owned().into()
    }

    /// Occupies the only worker of `passwords` until the returned sender is dropped.
    async fn hold_the_worker(passwords: &Passwords) -> std::sync::mpsc::Sender<()> {
        let (started, has_started) = oneshot::channel();
        let (release, held) = std::sync::mpsc::channel();
        let (reply, _answer) = oneshot::channel();
        let hold = Job {
            work: Work::Hold {
                started,
                release: held,
            },
            // Whatever the queue timeout under test, the hold itself is served.
            deadline: Instant::now() + Duration::from_secs(3600),
            reply,
        };
        passwords.queue.try_send(hold).ok().unwrap();
        has_started.await.unwrap();
        release
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let passwords = Passwords::new(Duration::from_secs(5)).unwrap();
        let hash = passwords.hash(&secret("Soleil2024")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify(&secret("Soleil2024"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&secret("soleil2024"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&secret("clef-dummy-password"), None)
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&secret("Soleil2024"), Some("not a PHC string"))
                .await
                .unwrap()
        );
        // Another function's hash is refused like a wrong password, not as an error.
        assert!(
            !passwords
                .verify(
                    &secret("Soleil2024"),
                    Some("$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E")
                )
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        let passwords = Passwords::new(Duration::from_secs(5)).unwrap();
        // A hash stored by the previous code (argon2's own hasher) verifies here…
        let stored = Argon2::default()
            .hash_password(b"Demo2026clef")
            .unwrap()
            .to_string();
        assert!(
            passwords
                .verify(&secret("Demo2026clef"), Some(&stored))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&secret("Demo2026cleF"), Some(&stored))
                .await
                .unwrap()
        );
        // …and a hash made here verifies with argon2's own verifier.
        let made = passwords.hash(&secret("Demo2026clef")).await.unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"Demo2026clef", made.as_str())
                .is_ok()
        );
        // Other parameters than the ones in force are read from the string, not assumed.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, Some(24)).unwrap(),
        )
        .hash_password(b"Demo2026clef")
        .unwrap()
        .to_string();
        assert!(
            passwords
                .verify(&secret("Demo2026clef"), Some(&small))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn workers_reuse_their_block_across_many_requests_from_many_tasks() {
        let passwords =
            Passwords::with_workers(2, QUEUE_CAPACITY, Duration::from_secs(60)).unwrap();
        let stored = Argon2::default()
            .hash_password(b"Soleil2024")
            .unwrap()
            .to_string();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..8 {
            let (passwords, stored) = (passwords.clone(), stored.clone());
            tasks.spawn(async move {
                let own = format!("Mot-de-passe-{n}");
                let hash = passwords.hash(&secret(&own)).await.unwrap();
                assert!(passwords.verify(&secret(&own), Some(&hash)).await.unwrap());
                assert!(
                    !passwords
                        .verify(&secret("autre"), Some(&hash))
                        .await
                        .unwrap()
                );
                assert!(
                    passwords
                        .verify(&secret("Soleil2024"), Some(&stored))
                        .await
                        .unwrap()
                );
                assert!(
                    !passwords
                        .verify(&secret(&own), Some(&stored))
                        .await
                        .unwrap()
                );
                assert!(!passwords.verify(&secret(&own), None).await.unwrap());
            });
        }
        while let Some(task) = tasks.join_next().await {
            task.unwrap();
        }
        // 48 hashes, and never more than one block per worker.
        let blocks = passwords.blocks_allocated();
        assert!((1..=2).contains(&blocks), "{blocks} blocks allocated");
        assert_eq!(passwords.queued(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_block_whose_pages_were_returned_still_hashes_correctly() {
        let counters = Counters::default();
        let mut memory = Memory::default();
        let stored = Argon2::default()
            .hash_password(b"Soleil2024")
            .unwrap()
            .to_string();
        let stored = StoredHash::read(&stored).unwrap();
        assert!(verify_with(b"Soleil2024", &stored, &mut memory, &counters).unwrap());
        memory.release();
        // The pages went back to the system: they read as zeros (all but the partial pages
        // at either end of the allocation).
        let inner = &memory.blocks[8..memory.blocks.len() - 8];
        assert!(inner.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        assert!(verify_with(b"Soleil2024", &stored, &mut memory, &counters).unwrap());
        assert!(!verify_with(b"soleil2024", &stored, &mut memory, &counters).unwrap());
        let made = hash_with(b"Soleil2024", &mut memory, &counters).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"Soleil2024", made.as_str())
                .is_ok()
        );
        assert_eq!(counters.blocks.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let passwords = Passwords::with_workers(1, 2, Duration::from_secs(60)).unwrap();
        let release = hold_the_worker(&passwords).await;
        let first = passwords.enqueue(Work::Hash(secret("Soleil2024"))).unwrap();
        let second = passwords.enqueue(Work::Hash(secret("Soleil2024"))).unwrap();
        assert_eq!(passwords.queued(), 2);
        let result = passwords.hash(&secret("Soleil2024")).await;
        assert!(matches!(result, Err(PasswordError::Busy)));
        drop(release);
        for answer in [first, second] {
            assert!(matches!(answer.await.unwrap(), Ok(Done::Hashed(_))));
        }
    }

    #[tokio::test]
    async fn a_request_that_waited_past_the_queue_timeout_answers_busy() {
        let passwords = Passwords::with_workers(1, 8, Duration::ZERO).unwrap();
        let release = hold_the_worker(&passwords).await;
        let waiting = passwords.enqueue(Work::Hash(secret("Soleil2024"))).unwrap();
        drop(release);
        assert!(matches!(waiting.await.unwrap(), Err(PasswordError::Busy)));
    }
}
