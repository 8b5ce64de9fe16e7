//! Clef's integration tests: one binary, one module per area.

mod account_sessions;
mod authorize;
mod backchannel;
mod bad_input;
mod cli;
mod consent;
mod grouping;
mod grouping_race;
mod grouping_rp;
mod helpers;
mod i18n;
mod import;
mod keys;
mod lifecycle;
mod logout;
mod observability;
mod protection;
mod pairwise;
mod recovery;
mod refresh;
mod relying_party;
mod resilience;
mod sms_gateway;
mod storage;
mod terms;
mod token;
