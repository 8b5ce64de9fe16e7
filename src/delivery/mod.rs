//! Delivery of mail (and later SMS): through a gateway when configured, into
//! an outbox folder otherwise; always logged, never with the link it carries.

pub mod mail;

pub use mail::{Mail, Mailer, Subject};
