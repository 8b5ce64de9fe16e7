//! The key files: their names, how they are listed, written and read.
//!
//! A key file is written whole to a private temporary file, then hard-linked to
//! its final name, so an instance re-reading the folder never sees half a key,
//! and of two instances creating the same name one wins and the other reads
//! the winner's key. Creating a first key of an algorithm also holds an
//! exclusive lock on `.keys.lock`, so instances starting together in different
//! seconds (different names) still end up with a single first key.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::SigningAlg;

const LOCK_FILE: &str = ".keys.lock";
const TEMP_PREFIX: &str = ".keygen-";

/// A key file found in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyFile {
    pub alg: SigningAlg,
    /// Unix time, from the file name.
    pub created: i64,
    pub name: String,
    pub path: PathBuf,
}

pub(super) fn file_name(alg: SigningAlg, created: i64) -> String {
    format!("{}-{created:012}.pem", alg.family())
}

/// `rs256-<unix time>.pem` (any number of digits), `es256-…`, `ed25519-…`.
fn parse_name(name: &str) -> Option<(SigningAlg, i64)> {
    let stem = name.strip_suffix(".pem")?;
    SigningAlg::ALL.into_iter().find_map(|alg| {
        let digits = stem.strip_prefix(alg.family())?.strip_prefix('-')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((alg, digits.parse().ok()?))
    })
}

/// The key files in `dir` (none when it does not exist), by algorithm then
/// creation time.
pub(super) fn list(dir: &Path) -> anyhow::Result<Vec<KeyFile>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading keys dir {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading keys dir {}", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match parse_name(&name) {
            Some((alg, created)) => files.push(KeyFile {
                alg,
                created,
                path: entry.path(),
                name,
            }),
            None if name.ends_with(".pem")
                && SigningAlg::ALL
                    .iter()
                    .any(|alg| name.starts_with(alg.family())) =>
            {
                tracing::warn!(
                    file = %entry.path().display(),
                    "ignored: a key file is named <alg>-<unix time>.pem"
                );
            }
            None => {}
        }
    }
    files.sort_by_key(|f| (f.alg, f.created));
    Ok(files)
}

/// The folder, created `0700` when missing.
pub(super) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating keys dir {}", dir.display()))
}

/// Holds the folder's lock until dropped; `None` when the file system offers
/// no locks (the link step still keeps same-named keys from clashing).
pub(super) struct DirLock(#[allow(dead_code)] Option<fs::File>);

pub(super) fn lock(dir: &Path) -> DirLock {
    let path = dir.join(LOCK_FILE);
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options
        .open(&path)
        .and_then(|file| file.lock().map(|()| file))
    {
        Ok(file) => DirLock(Some(file)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "keys folder not locked");
            DirLock(None)
        }
    }
}

/// What to do when the name of the new key is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Keep the key already there (a first key: everyone must agree on it).
    UseIt,
    /// Try the next second (a rotation always adds a key).
    NextSecond,
}

/// Generates a key of `alg` and links it into `dir` as created at `created`.
/// Returns its path and whether this call wrote it.
pub(super) fn write_new(
    dir: &Path,
    alg: SigningAlg,
    mut created: i64,
    taken: Taken,
) -> anyhow::Result<(PathBuf, bool)> {
    create_private_dir(dir)?;
    let pem = generate_pem(alg)?;
    let temporary = dir.join(format!(
        "{TEMP_PREFIX}{}-{}.tmp",
        alg.family(),
        crate::secret::random_token(9)
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(&pem)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("writing {}", temporary.display()));
    }
    let outcome = loop {
        let path = dir.join(file_name(alg, created));
        match fs::hard_link(&temporary, &path) {
            Ok(()) => break Ok((path, true)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match taken {
                Taken::UseIt => break Ok((path, false)),
                Taken::NextSecond => created += 1,
            },
            Err(e) => break Err(e).with_context(|| format!("creating {}", path.display())),
        }
    };
    let _ = fs::remove_file(&temporary);
    sync_dir(dir);
    outcome
}

/// Makes the new name durable; best effort.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Removes temporary files a crash left behind (older than an hour).
pub(super) fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = name
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n.ends_with(".tmp"))
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn generate_pem(alg: SigningAlg) -> anyhow::Result<Vec<u8>> {
    let what = || format!("generating an {alg} key");
    Ok(match alg {
        SigningAlg::RS256 => RS256
            .generate_key_pair(2048)
            .with_context(what)?
            .to_pem_private_key(),
        SigningAlg::ES256 => ES256
            .generate_key_pair()
            .with_context(what)?
            .to_pem_private_key(),
        SigningAlg::EdDSA => EdDSA
            .generate_key_pair(EdCurve::Ed25519)
            .with_context(what)?
            .to_pem_private_key(),
    })
}

/// A key read from its file: its public JWK (with `kid`, `use`, `alg`), a
/// signer and a verifier bound to its `kid`.
#[derive(Debug)]
pub(super) struct LoadedKey {
    pub alg: SigningAlg,
    pub name: String,
    pub kid: String,
    pub jwk: Map<String, Value>,
    pub signer: Box<dyn JwsSigner>,
    pub verifier: Box<dyn JwsVerifier>,
}

pub(super) fn load(file: &KeyFile) -> anyhow::Result<LoadedKey> {
    let pem =
        fs::read(&file.path).with_context(|| format!("reading key {}", file.path.display()))?;
    load_pem(file, &pem).with_context(|| format!("loading key {}", file.path.display()))
}

fn load_pem(file: &KeyFile, pem: &[u8]) -> anyhow::Result<LoadedKey> {
    let alg = file.alg;
    let publish = |public: Jwk| -> anyhow::Result<(Jwk, String)> {
        let mut public = public;
        let kid = thumbprint(&public)?;
        public.set_key_id(&kid);
        public.set_key_use("sig");
        public.set_algorithm(alg.as_str());
        Ok((public, kid))
    };
    let (public, kid, signer, verifier): (_, _, Box<dyn JwsSigner>, Box<dyn JwsVerifier>) =
        match alg {
            SigningAlg::RS256 => {
                let (public, kid) = publish(RsaKeyPair::from_pem(pem)?.to_jwk_public_key())?;
                let mut signer = RS256.signer_from_pem(pem)?;
                signer.set_key_id(&kid);
                let mut verifier = RS256.verifier_from_jwk(&public)?;
                verifier.set_key_id(&kid);
                (public, kid, Box::new(signer), Box::new(verifier))
            }
            SigningAlg::ES256 => {
                let pair = EcKeyPair::from_pem(pem, Some(EcCurve::P256))?;
                let (public, kid) = publish(pair.to_jwk_public_key())?;
                let mut signer = ES256.signer_from_pem(pem)?;
                signer.set_key_id(&kid);
                let mut verifier = ES256.verifier_from_jwk(&public)?;
                verifier.set_key_id(&kid);
                (public, kid, Box::new(signer), Box::new(verifier))
            }
            SigningAlg::EdDSA => {
                let pair = EdKeyPair::from_pem(pem)?;
                if pair.curve() != EdCurve::Ed25519 {
                    bail!("an EdDSA key must be on Ed25519, not {}", pair.curve());
                }
                let (public, kid) = publish(pair.to_jwk_public_key())?;
                let mut signer = EdDSA.signer_from_pem(pem)?;
                signer.set_key_id(&kid);
                let mut verifier = EdDSA.verifier_from_jwk(&public)?;
                verifier.set_key_id(&kid);
                (public, kid, Box::new(signer), Box::new(verifier))
            }
        };
    let jwk = public.as_ref().clone();
    if jwk.contains_key("d") {
        bail!("a public JWK with a private part");
    }
    Ok(LoadedKey {
        alg,
        name: file.name.clone(),
        kid,
        jwk,
        signer,
        verifier,
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexical
/// order, no white space (RFC 8037 §2 for OKP).
fn thumbprint(jwk: &Jwk) -> anyhow::Result<String> {
    let member = |name: &str| {
        jwk.parameter(name)
            .and_then(Value::as_str)
            .with_context(|| format!("{} JWK without {name}", jwk.key_type()))
    };
    let canonical = match jwk.key_type() {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e")?,
            member("n")?
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv")?,
            member("x")?
        ),
        other => bail!("no thumbprint for a {other} key"),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_algorithm_and_the_creation_time() {
        assert_eq!(file_name(SigningAlg::RS256, 7), "rs256-000000000007.pem");
        assert_eq!(
            file_name(SigningAlg::EdDSA, 1_700_000_000),
            "ed25519-001700000000.pem"
        );
        for alg in SigningAlg::ALL {
            assert_eq!(
                parse_name(&file_name(alg, 1_700_000_000)),
                Some((alg, 1_700_000_000))
            );
        }
        assert_eq!(parse_name("es256-42.pem"), Some((SigningAlg::ES256, 42)));
        for other in [
            "rs256-.pem",
            "rs256-old.pem",
            "rs256-12.pem.bak",
            ".keygen-rs256-abc.tmp",
            "es384-1.pem",
            "device-cookie.key",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn thumbprints_follow_rfc_7638_and_rfc_8037() {
        // RFC 7638 §3.1.
        let rsa = Jwk::from_bytes(
            br#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&rsa).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // RFC 8037 Appendix A.3.
        let okp = Jwk::from_bytes(
            br#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&okp).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn of_writers_racing_for_one_name_one_wins_and_the_others_keep_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let outcomes: Vec<(PathBuf, bool)> = (0..8)
            .map(|_| {
                let (dir, barrier) = (dir.path().to_owned(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    write_new(&dir, SigningAlg::ES256, 7, Taken::UseIt).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(outcomes.iter().filter(|(_, ours)| *ours).count(), 1);
        assert!(
            outcomes
                .iter()
                .all(|(p, _)| p.ends_with("es256-000000000007.pem"))
        );
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        let key = load(&list(dir.path()).unwrap()[0]).unwrap();
        assert_eq!(key.alg, SigningAlg::ES256);
    }

    #[test]
    fn a_key_in_another_family_s_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_new(dir.path(), SigningAlg::EdDSA, 1, Taken::UseIt).unwrap();
        let pretending = KeyFile {
            alg: SigningAlg::ES256,
            created: 1,
            name: "es256-1.pem".into(),
            path,
        };
        assert!(load(&pretending).is_err());
    }
}
