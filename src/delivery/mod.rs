//! Delivery of mail and SMS: through a gateway when configured, into an
//! outbox folder otherwise; always logged, never with the link or code it
//! carries, nor the full address or number.

pub mod mail;
pub mod sms;

pub use mail::{Mail, Mailer, Subject};
pub use sms::{SmsError, SmsSender};
