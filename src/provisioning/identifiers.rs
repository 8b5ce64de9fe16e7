//! Readable login identifiers: `prenom.nom`, accents folded, a number on
//! collision (`julie.baillet`, then `julie.baillet1`), as in the seeds' letters.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Any, Row, Transaction};

use super::import::CHUNK_PARAMS;

/// The longest given or family name part of an identifier.
const MAX_PART: usize = 24;

/// The identifier before any collision number: `Lény-Rose N'Diaye` → `leny-rose.ndiaye`.
pub fn base(given_name: &str, family_name: &str) -> String {
    let part = |name: &str| {
        let folded = deunicode::deunicode(name).to_lowercase();
        let mut out = String::new();
        for c in folded.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if c == '\'' || c == '`' {
                // N'Diaye → ndiaye
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        // At most 24 characters, whole words first (« de-la-fontaine-saint »,
        // not « de-la-fontaine-saint-jul »); a longer first word is cut.
        let mut trimmed = String::new();
        for word in out.split('-').filter(|w| !w.is_empty()) {
            let joined = trimmed.len() + usize::from(!trimmed.is_empty()) + word.len();
            if joined > MAX_PART {
                if trimmed.is_empty() {
                    trimmed = word[..MAX_PART].to_owned();
                }
                break;
            }
            if !trimmed.is_empty() {
                trimmed.push('-');
            }
            trimmed.push_str(word);
        }
        if trimmed.is_empty() {
            "x".to_owned()
        } else {
            trimmed
        }
    };
    format!("{}.{}", part(given_name), part(family_name))
}

/// The `n`-th identifier of a base: the base itself, then `base1`, `base2`…
pub fn numbered(base: &str, n: u64) -> String {
    if n == 0 {
        base.to_owned()
    } else {
        format!("{base}{n}")
    }
}

/// One free identifier for each of `bases`, in their order: `base`, `base1`…
///
/// The numbers are reserved in the counters table by one atomic increment
/// per base (`INSERT … ON CONFLICT DO UPDATE … RETURNING`), whose row lock
/// lasts until the transaction ends: two transactions numbering the same
/// name (two schools importing at once) take distinct numbers, the second
/// after the first commits, instead of both picking `base` and the second
/// failing on it. Bases are reserved in sorted order, so transactions
/// numbering several never wait on each other in a cycle. A number whose
/// identifier is taken (an account made by hand) is skipped.
pub async fn assign(
    tx: &mut Transaction<'static, Any>,
    bases: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let mut identifiers = vec![String::new(); bases.len()];
    let mut pending: Vec<usize> = (0..bases.len()).collect();
    while !pending.is_empty() {
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for &i in &pending {
            *wanted.entry(bases[i].as_str()).or_default() += 1;
        }
        let mut next = reserve(tx, &wanted).await?;
        for &i in &pending {
            let n = next.get_mut(bases[i].as_str()).expect("reserved");
            identifiers[i] = numbered(&bases[i], *n as u64);
            *n += 1;
        }
        let mut taken = HashSet::new();
        for chunk in pending.chunks(CHUNK_PARAMS) {
            let sql = format!(
                "SELECT identifier FROM accounts WHERE identifier IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &i in chunk {
                query = query.bind(&identifiers[i]);
            }
            for row in query.fetch_all(&mut **tx).await? {
                taken.insert(row.try_get::<String, _>("identifier")?);
            }
        }
        pending.retain(|&i| taken.contains(&identifiers[i]));
    }
    Ok(identifiers)
}

/// Moves each base's counter on by its count: the first number of each range.
async fn reserve(
    tx: &mut Transaction<'static, Any>,
    wanted: &BTreeMap<&str, i64>,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let counts: Vec<(&str, i64)> = wanted.iter().map(|(base, n)| (*base, *n)).collect();
    let mut first = HashMap::with_capacity(counts.len());
    for chunk in counts.chunks(CHUNK_PARAMS / 2) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO identifier_counters (base, next) VALUES {} \
             ON CONFLICT (base) DO UPDATE SET next = identifier_counters.next + excluded.next \
             RETURNING base, next",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (base, n) in chunk {
            query = query.bind(*base).bind(*n);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let base: String = row.try_get("base")?;
            let end: i64 = row.try_get("next")?;
            let count = wanted.get(base.as_str()).copied().unwrap_or_default();
            first.insert(base, end - count);
        }
    }
    Ok(first)
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Identifier;

    #[test]
    fn names_fold_to_ascii_lower_case() {
        assert_eq!(base("Julie", "Baillet"), "julie.baillet");
        assert_eq!(base("Lény-Rose", "N'Diaye"), "leny-rose.ndiaye");
        assert_eq!(base("Jean Pierre", "De La Tour"), "jean-pierre.de-la-tour");
        assert_eq!(base("Zoë", "Œuvray-Ça"), "zoe.oeuvray-ca");
        assert_eq!(base("李", "王"), "li.wang");
        assert_eq!(base("!!", "??"), "x.x");
        // Long names keep whole words.
        assert_eq!(
            base("Marie-Christine-Éléonore", "de La Fontaine-Saint-Julien"),
            "marie-christine-eleonore.de-la-fontaine-saint"
        );
        assert_eq!(base("A", &"b".repeat(30)), format!("a.{}", "b".repeat(24)));
        for (given, family) in [
            ("Julie", "Baillet"),
            ("Lény-Rose", "N'Diaye"),
            ("A", &"b".repeat(80)),
        ] {
            assert!(Identifier::parse(&numbered(&base(given, family), 12)).is_ok());
        }
    }

    #[test]
    fn collisions_are_numbered_from_one() {
        assert_eq!(numbered("julie.baillet", 0), "julie.baillet");
        assert_eq!(numbered("julie.baillet", 1), "julie.baillet1");
    }
}
