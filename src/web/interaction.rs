//! A short-lived ticket (cookie + short-lived store) carrying a person between
//! the login form and the screens that follow a correct password without a
//! session: first connection (§3.2) and the unconfirmed account (§3.3).

use std::time::Duration;

use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

use super::cookies;
use crate::app::Clef;
use crate::secret::{digest, random_token};
use crate::storage::Kind;

pub const COOKIE: cookies::Name = cookies::Name::new("__Host-clef_interaction", "clef_interaction");
const TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    FirstConnection,
    Unconfirmed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub purpose: Purpose,
    pub account_id: String,
    /// The authorization request under way, if any.
    pub pending_id: Option<String>,
    /// The date of the letter whose password opened a first connection: a
    /// new letter since (a school reset) ends it.
    #[serde(default)]
    pub letter_date: Option<i64>,
}

/// Interactions live under the digest of their cookie value.
fn interactions(app: &Clef) -> Kind<Interaction> {
    Kind::new(&app.store, "interaction")
}

pub async fn start(
    app: &Clef,
    jar: CookieJar,
    interaction: &Interaction,
) -> anyhow::Result<CookieJar> {
    let token = random_token(32);
    interactions(app)
        .put(&digest(&token), interaction, TTL)
        .await?;
    Ok(jar.add(cookies::base(app, COOKIE.of(app), token)))
}

pub async fn current(
    app: &Clef,
    jar: &CookieJar,
    purpose: Purpose,
) -> anyhow::Result<Option<Interaction>> {
    let Some(cookie) = jar.get(COOKIE.of(app)) else {
        return Ok(None);
    };
    let Some(interaction) = interactions(app).get(&digest(cookie.value())).await? else {
        return Ok(None);
    };
    Ok((interaction.purpose == purpose).then_some(interaction))
}

/// Ends the browser's interaction, if it has one (nothing to do, nor to
/// tell the browser, otherwise).
pub async fn end(app: &Clef, jar: CookieJar) -> anyhow::Result<CookieJar> {
    let Some(cookie) = jar.get(COOKIE.of(app)) else {
        return Ok(jar);
    };
    interactions(app).delete(&digest(cookie.value())).await?;
    Ok(cookies::without(app, jar, COOKIE.of(app)))
}
