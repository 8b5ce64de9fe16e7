//! The SSO session cookie and the login form's CSRF cookie.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::Duration;

use std::net::IpAddr;

use crate::accounts::devices::MAX_PER_BROWSER;
use crate::accounts::throttle::Origin;
use crate::app::Clef;
use crate::secret::{constant_time_eq, random_token};

pub const SESSION: &str = "clef_session";
/// Under https, `__Host-` (RFC 6265bis §4.1.3.2): the browser keeps it only
/// if Clef set it, Secure, on its own host, so a neighbouring site (a
/// sibling subdomain) cannot plant a token of its choosing; plain http
/// (development) cannot carry the prefix.
const CSRF_SECURE: &str = "__Host-clef_csrf";
const CSRF_PLAIN: &str = "clef_csrf";

fn csrf_name(app: &Clef) -> &'static str {
    if app.config.secure_cookies() {
        CSRF_SECURE
    } else {
        CSRF_PLAIN
    }
}
/// Proofs that this browser signed in before (see `accounts::devices`).
pub const DEVICE: &str = "clef_device";

fn base<'a>(app: &Clef, name: &'a str, value: String) -> Cookie<'a> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_http_only(true);
    cookie.set_path("/");
    // Lax: the cookie must travel on the top-level GET /authorize a client starts.
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(app.config.secure_cookies());
    cookie
}

pub fn session(app: &Clef, token: String) -> Cookie<'static> {
    let mut cookie = base(app, SESSION, token);
    cookie.set_max_age(Duration::seconds(app.config.session_ttl));
    cookie
}

/// Tells the browser to drop its session cookie (logout).
pub fn without_session(jar: CookieJar) -> CookieJar {
    let mut cookie = Cookie::from(SESSION);
    cookie.set_path("/");
    jar.remove(cookie)
}

/// Where an attempt on `identifier` comes from: the client address, and this
/// browser if its device cookie proves a past sign-in to that account.
pub fn origin(app: &Clef, jar: &CookieJar, address: IpAddr, identifier: &str) -> Origin {
    Origin {
        address,
        device: app.devices.recognise(device_entries(jar), identifier),
    }
}

fn device_entries(jar: &CookieJar) -> impl Iterator<Item = &str> {
    jar.get(DEVICE)
        .map_or("", |cookie| cookie.value())
        .split('~')
        .filter(|entry| !entry.is_empty())
        .take(MAX_PER_BROWSER)
}

/// After a successful sign-in: this browser is remembered for `identifier`
/// (a fresh proof, first), beside the few other accounts it remembers.
pub fn remember_device(app: &Clef, jar: CookieJar, identifier: &str) -> CookieJar {
    let mut entries = vec![app.devices.issue(identifier)];
    entries.extend(
        device_entries(&jar)
            .filter(|entry| app.devices.recognise([*entry], identifier).is_none())
            .take(MAX_PER_BROWSER - 1)
            .map(str::to_owned),
    );
    let mut cookie = base(app, DEVICE, entries.join("~"));
    cookie.set_max_age(Duration::days(365));
    jar.add(cookie)
}

/// The CSRF token of the login form (double submit: cookie and hidden field
/// must match). Reuses the browser's token when it has one.
pub fn csrf_token(app: &Clef, jar: CookieJar) -> (CookieJar, String) {
    if let Some(existing) = jar
        .get(csrf_name(app))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
    {
        return (jar, existing);
    }
    let token = random_token(32);
    (jar.add(base(app, csrf_name(app), token.clone())), token)
}

pub fn csrf_matches(app: &Clef, jar: &CookieJar, submitted: Option<&str>) -> bool {
    match (jar.get(csrf_name(app)), submitted) {
        (Some(cookie), Some(submitted)) => {
            cookie.value().len() == 43 && constant_time_eq(cookie.value(), submitted)
        }
        _ => false,
    }
}
