//! Provisioning: the pupil-file import, identifiers, provisional passwords and
//! notification letters (SPEC §2, §3.10).

pub mod csv_file;
pub mod expiry;
pub mod identifiers;
pub mod import;
pub mod letters;
pub mod provisional;
