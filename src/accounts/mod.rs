//! Accounts, establishments and guardianships (SPEC §2), and password hashing.

pub mod activation;
pub mod devices;
pub mod grouping;
pub mod login;
mod password;
pub mod policy;
pub mod reads;
pub mod recovery;
pub mod retention;
pub mod staff;
pub mod store;
pub mod throttle;
pub mod tokens;

pub use password::{PasswordError, Passwords};

use serde::Serialize;

use crate::domain::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Student,
    Guardian,
    Staff,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Guardian => "guardian",
            Self::Staff => "staff",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "student" => Some(Self::Student),
            "guardian" => Some(Self::Guardian),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }
}

/// SPEC §2: provisional → pending_email → active; any → closed. Mirrored by the
/// `accounts.state` CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Provisional,
    PendingEmail,
    Active,
    Closed,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisional => "provisional",
            Self::PendingEmail => "pending_email",
            Self::Active => "active",
            Self::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "provisional" => Some(Self::Provisional),
            "pending_email" => Some(Self::PendingEmail),
            "active" => Some(Self::Active),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Establishment {
    pub id: String,
    pub uai: String,
    pub name: String,
    /// The establishment's portal (its ENT), where families find its services.
    pub portal_url: Option<String>,
}

impl Establishment {
    /// The longest name, in characters.
    pub const MAX_NAME: usize = 200;
}

/// An establishment's address (printed under its name on its letters) and
/// how families reach it.
#[derive(Debug, Clone, Default)]
pub struct Letterhead {
    pub address: Option<String>,
    pub city: Option<String>,
    pub contact: Option<String>,
}

impl Letterhead {
    /// Street and town on one line (« 12 rue des Écoles, 59000 Lille »),
    /// as its letters print it; empty when neither is set.
    pub fn postal_address(&self) -> String {
        [self.address.as_deref(), self.city.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The longest each may be, in characters: the address and town are
    /// what a letter has room for, beside the longest names.
    pub const MAX_ADDRESS: usize = 80;
    pub const MAX_CITY: usize = 40;
    pub const MAX_CONTACT: usize = 100;
}

/// What an operator changes on an establishment (SPEC §2): each `None`
/// left as it is; an optional detail set to `Some(None)` is cleared.
#[derive(Debug, Default, Clone)]
pub struct EstablishmentChange {
    pub name: Option<String>,
    pub address: Option<Option<String>>,
    pub city: Option<Option<String>>,
    /// How families reach the school (« secretariat@…, 03 20 … »).
    pub contact: Option<Option<String>>,
    /// Its portal (ENT), where its letters send families to sign in.
    pub portal_url: Option<Option<String>>,
}

/// An establishment's name and details as typed (`clef establishment`, the
/// academy's back-office form), unchecked: `None` is not given (kept), an
/// empty detail clears it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EstablishmentInput<'a> {
    pub name: Option<&'a str>,
    pub address: Option<&'a str>,
    pub city: Option<&'a str>,
    pub contact: Option<&'a str>,
    pub portal_url: Option<&'a str>,
}

impl<'a> EstablishmentInput<'a> {
    /// The keys of its fields, as forms and refusals name them, in the
    /// form's order.
    pub const KEYS: [&'static str; 5] = ["name", "address", "city", "contact", "portal_url"];

    /// An input read field by field, by key ([`Self::KEYS`]).
    pub fn read(get: impl Fn(&'static str) -> Option<&'a str>) -> Self {
        Self {
            name: get("name"),
            address: get("address"),
            city: get("city"),
            contact: get("contact"),
            portal_url: get("portal_url"),
        }
    }

    /// The field under `key` ([`Self::KEYS`]; `None` for another key).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        match key {
            "name" => self.name,
            "address" => self.address,
            "city" => self.city,
            "contact" => self.contact,
            "portal_url" => self.portal_url,
            _ => None,
        }
    }

    /// An establishment's name and details as held.
    pub fn held(establishment: &'a Establishment, head: &'a Letterhead) -> Self {
        Self {
            name: Some(&establishment.name),
            address: head.address.as_deref(),
            city: head.city.as_deref(),
            contact: head.contact.as_deref(),
            portal_url: establishment.portal_url.as_deref(),
        }
    }

    /// What `self` (a form as posted) changes of `before` (the form as it
    /// was shown): the fields the person changed, others not given, so that
    /// a form left open does not undo another's change meanwhile.
    pub fn changed_from(self, before: &Self) -> Self {
        Self::read(|key| {
            self.get(key)
                .filter(|typed| Some(typed.trim()) != before.get(key).map(str::trim))
        })
    }
}

impl EstablishmentChange {
    /// The change `input` asks for, every field checked (a portal on this
    /// machine only for a `local` Clef: see [`store::portal_url`]); refused,
    /// each field in error by its key in the input (`name`, `address`,
    /// `city`, `contact`, `portal_url`), in that order.
    pub fn checked(
        input: &EstablishmentInput<'_>,
        local: bool,
    ) -> Result<Self, Vec<(&'static str, FieldError)>> {
        // What its letters print: shown as it reads, and in their fonts.
        let shown_text = |field, raw: &str, max| {
            let value = crate::domain::shown_text(field, raw, max)?;
            match crate::provisioning::letters::unprintable(&value) {
                Some(c) => Err(FieldError::new(
                    field,
                    crate::domain::Problem::NotPrintable(c),
                )),
                None => Ok(value),
            }
        };
        let mut refused = Vec::new();
        let mut take =
            |key: &'static str, value: Option<Result<Option<String>, FieldError>>| match value
                .transpose()
            {
                Ok(value) => value,
                Err(error) => {
                    refused.push((key, error));
                    None
                }
            };
        // Given empty: cleared; else checked.
        let detail = |value: Option<&str>, check: &dyn Fn(&str) -> Result<String, FieldError>| {
            value.map(|v| match v.trim() {
                "" => Ok(None),
                v => check(v).map(Some),
            })
        };
        let name = take(
            "name",
            input.name.map(|n| {
                shown_text("nom de l'établissement", n, Establishment::MAX_NAME).map(Some)
            }),
        )
        .flatten();
        let address = take(
            "address",
            detail(input.address, &|v| {
                shown_text("adresse", v, Letterhead::MAX_ADDRESS)
            }),
        );
        let city = take(
            "city",
            detail(input.city, &|v| {
                shown_text("ville", v, Letterhead::MAX_CITY)
            }),
        );
        let contact = take(
            "contact",
            detail(input.contact, &|v| {
                shown_text("contact", v, Letterhead::MAX_CONTACT)
            }),
        );
        let portal_url = take(
            "portal_url",
            detail(input.portal_url, &|v| store::portal_url(v, local)),
        );
        if !refused.is_empty() {
            return Err(refused);
        }
        Ok(Self {
            name,
            address,
            city,
            contact,
            portal_url,
        })
    }

    /// This change less what is `held` already.
    pub fn beyond(self, held: &EstablishmentInput<'_>) -> Self {
        let new = |changed: Option<Option<String>>, held: Option<&str>| {
            changed.filter(|value| value.as_deref() != held)
        };
        Self {
            name: self.name.filter(|name| Some(name.as_str()) != held.name),
            address: new(self.address, held.address),
            city: new(self.city, held.city),
            contact: new(self.contact, held.contact),
            portal_url: new(self.portal_url, held.portal_url),
        }
    }

    /// A name alone (a new establishment without details yet).
    pub fn named(name: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            ..Self::default()
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        EstablishmentInput::KEYS
            .iter()
            .all(|key| self.get(key).is_none())
    }

    /// What it sets under `key` ([`EstablishmentInput::KEYS`]): `None` if
    /// nothing, `Some(None)` if it clears it.
    fn get(&self, key: &str) -> Option<Option<&str>> {
        let detail = match key {
            "name" => return self.name.as_deref().map(Some),
            "address" => &self.address,
            "city" => &self.city,
            "contact" => &self.contact,
            "portal_url" => &self.portal_url,
            _ => return None,
        };
        detail.as_ref().map(Option::as_deref)
    }

    /// What it sets, for the audit trail, and what was held `before` (an
    /// update): `name="…" portal_url=(cleared) (was "https://…")`.
    pub fn described(&self, before: Option<&EstablishmentInput<'_>>) -> String {
        let shown = |value: Option<&str>| match value {
            Some(v) => format!("{v:?}"),
            None => "(cleared)".to_owned(),
        };
        let was = |held: Option<Option<&str>>| match held {
            None => String::new(),
            Some(Some(v)) => format!(" (was {v:?})"),
            Some(None) => " (was unset)".to_owned(),
        };
        EstablishmentInput::KEYS
            .into_iter()
            .filter_map(|key| {
                let value = self.get(key)?;
                let was = was(before.map(|b| b.get(key)));
                Some(format!("{key}={}{was}", shown(value)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub identifier: String,
    pub kind: AccountKind,
    pub state: AccountState,
    pub given_name: String,
    pub family_name: String,
    /// ISO 8601 (`2012-09-03`).
    pub birthdate: Option<String>,
    pub email: Option<String>,
    pub email_verified_at: Option<i64>,
    /// A new address waiting for its confirmation (SPEC §3.6).
    pub pending_email: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub establishment_id: Option<String>,
    pub class_name: Option<String>,
    /// The account a closed account was grouped into (SPEC §3.8).
    pub merged_into: Option<String>,
    pub last_login_at: Option<i64>,
    /// The sign-in before the last one (the last one is the current
    /// session's, most of the time).
    pub previous_login_at: Option<i64>,
    pub created_at: i64,
    /// When the notification letter was issued (provisional accounts).
    pub letter_date: Option<i64>,
    /// The letter's password, sealed (provisional accounts only).
    pub provisional_password: Option<String>,
}

impl Account {
    /// What a device proof is bound to: the password's hash, or the sealed
    /// letter password before the first connection. Setting, resetting or
    /// changing the password, or a new letter, changes it.
    pub fn credential_stamp(&self) -> &str {
        self.password_hash
            .as_deref()
            .or(self.provisional_password.as_deref())
            .unwrap_or("")
    }

    /// Whether the account may reach applications (SPEC §3.3): active, or a
    /// student whose email is not confirmed yet.
    pub fn may_use_applications(&self) -> bool {
        match self.state {
            AccountState::Active => true,
            AccountState::PendingEmail => self.kind == AccountKind::Student,
            AccountState::Provisional | AccountState::Closed => false,
        }
    }
}

/// A student attached to a guardian, with where they are schooled.
#[derive(Debug, Clone, Serialize)]
pub struct Child {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub birthdate: Option<String>,
    pub rank: i64,
    pub establishment: Option<Establishment>,
    pub class_name: Option<String>,
}

/// A pupil's legal guardian, as the school's pages list them.
#[derive(Debug, Clone)]
pub struct Guardian {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub state: AccountState,
    pub rank: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("the identifier {0} is already taken")]
    IdentifierTaken(String),
    #[error("an establishment with UAI {0} already exists")]
    UaiTaken(String),
    #[error("no establishment with UAI {0}")]
    UnknownEstablishment(String),
    #[error("no account {0}")]
    UnknownAccount(String),
    #[error("a student needs an establishment and a class")]
    StudentWithoutSchool,
    #[error("only a student has an establishment and a class")]
    SchoolForNonStudent,
    #[error("account {0} is not a {1}")]
    WrongKind(String, &'static str),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
