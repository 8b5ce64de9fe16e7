//! Clef: an OpenID Connect identity provider for school families.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod keys;
pub mod metrics;
pub mod oidc;
pub mod provisioning;
pub mod secret;
pub mod storage;
pub mod telemetry;
pub mod web;
