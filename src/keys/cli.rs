//! `clef keys list` and `clef keys rotate`.

use std::path::Path;

use anyhow::bail;
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{KeyState, PUBLICATION_DELAY, RELOAD_INTERVAL, SigningAlg};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print each signing key: algorithm, kid, creation time, state.
    List,
    /// Add a new key per algorithm, published at once and signing 10 minutes
    /// later, and delete the keys past their retention. Running instances
    /// pick the change up by themselves.
    Rotate {
        /// RS256, ES256, EdDSA or all.
        #[arg(long, default_value = "all")]
        alg: String,
    },
}

pub fn run(dir: &Path, command: KeysCommand, now: i64) -> anyhow::Result<()> {
    match command {
        KeysCommand::List => {
            let keys = super::list(dir, now)?;
            if keys.is_empty() {
                println!(
                    "no signing keys in {}: `clef serve` creates them",
                    dir.display()
                );
            } else {
                println!("{:<5}  {:<43}  {:<20}  STATE", "ALG", "KID", "CREATED");
            }
            for key in keys {
                let kid = match &key.kid {
                    Ok(kid) => kid.as_str(),
                    Err(_) => "(unreadable)",
                };
                println!(
                    "{:<5}  {kid:<43}  {}  {}",
                    key.alg.as_str(),
                    date(key.created),
                    state(key.state)
                );
                if let Err(e) = &key.kid {
                    eprintln!("{}: {e}", key.path.display());
                }
            }
            Ok(())
        }
        KeysCommand::Rotate { alg } => {
            let algs = parse_algs(&alg)?;
            let rotation = super::rotate(dir, &algs, now)?;
            for path in &rotation.deleted {
                println!("deleted {} (past its retention)", path.display());
            }
            // A folder's first key of an algorithm signs at once; a new one
            // beside a signing key after the publication delay.
            let keys = super::list(dir, now)?;
            for path in &rotation.created {
                let shown = keys.iter().find(|key| &key.path == path).map_or_else(
                    || format!("published (signs from {})", date(now + PUBLICATION_DELAY)),
                    |key| state(key.state),
                );
                println!("created {}: {shown}", path.display());
            }
            println!(
                "running instances pick the keys up within {} s; no restart needed",
                RELOAD_INTERVAL.as_secs()
            );
            Ok(())
        }
    }
}

/// `all`, or one algorithm's name (any case).
fn parse_algs(name: &str) -> anyhow::Result<Vec<SigningAlg>> {
    if name.eq_ignore_ascii_case("all") {
        return Ok(SigningAlg::ALL.to_vec());
    }
    match SigningAlg::ALL
        .into_iter()
        .find(|alg| alg.as_str().eq_ignore_ascii_case(name))
    {
        Some(alg) => Ok(vec![alg]),
        None => bail!("unknown algorithm {name:?}: RS256, ES256, EdDSA or all"),
    }
}

fn state(state: KeyState) -> String {
    match state {
        KeyState::Published { signs_from } => {
            format!("published (signs from {})", date(signs_from))
        }
        KeyState::Signing => "signing".to_owned(),
        KeyState::Retired { until } => format!("retired (published until {})", date(until)),
        KeyState::Expired => "expired (deleted by the next `clef keys rotate`)".to_owned(),
    }
}

fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_named_in_any_case() {
        assert_eq!(parse_algs("all").unwrap(), SigningAlg::ALL);
        assert_eq!(parse_algs("eddsa").unwrap(), [SigningAlg::EdDSA]);
        assert_eq!(parse_algs("ES256").unwrap(), [SigningAlg::ES256]);
        assert!(parse_algs("HS256").is_err());
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
    }
}
