//! The password rule (SPEC §3.2, seeds: « 8 à 14 caractères alphanumériques
//! (chiffres et lettres obligatoires) »), configurable.

use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Copy)]
pub struct PasswordRule {
    pub min: usize,
    pub max: usize,
}

impl PasswordRule {
    /// The rule the configuration sets (`password_min`, `password_max`).
    pub fn configured(config: &crate::config::Config) -> Self {
        Self {
            min: config.password_min,
            max: config.password_max,
        }
    }

    /// The rule as shown next to the field.
    pub fn describe(&self) -> String {
        format!(
            "Mot de passe : {} à {} caractères, chiffres et lettres obligatoires.",
            self.min, self.max
        )
    }

    pub fn check(&self, password: &SecretString) -> Result<(), String> {
        let password = password.expose_secret();
        let length = password.chars().count();
        let ok = (self.min..=self.max).contains(&length)
            && password.chars().any(char::is_alphabetic)
            && password.chars().any(|c| c.is_ascii_digit())
            && !password.chars().any(char::is_control);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "Le mot de passe ne respecte pas la règle. {}",
                self.describe()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_rule_needs_letters_and_digits_within_bounds() {
        let rule = PasswordRule { min: 8, max: 14 };
        for ok in ["Soleil2024", "abcdefg1", "12345678é"] {
            assert!(rule.check(&ok.to_string().into()).is_ok(), "{ok}");
        }
        for bad in [
            "court1",
            "toutenlettres",
            "12345678",
            "beaucouptroplong123",
            "tab\tulation1",
        ] {
            assert!(rule.check(&bad.to_string().into()).is_err(), "{bad}");
        }
    }
}
