//! Readable login identifiers: `prenom.nom`, accents folded, a number on
//! collision (`julie.baillet`, then `julie.baillet1`), as in the seeds' letters.

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
        let trimmed: String = out.trim_matches('-').chars().take(24).collect();
        let trimmed = trimmed.trim_end_matches('-').to_owned();
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
