//! Clef's cookies: the SSO session, the forms' CSRF token, device proofs,
//! and what a request done tells the page it redirects to.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::Duration;

use std::net::IpAddr;

use crate::accounts::devices::MAX_PER_BROWSER;
use crate::accounts::throttle::Origin;
use crate::accounts::{Account, store};
use crate::app::Clef;
use crate::domain::Identifier;
use crate::secret::{constant_time_eq, random_token};

/// A cookie's name. Under https, `__Host-` (RFC 6265bis §4.1.3.2): the
/// browser keeps the cookie only if Clef set it, Secure, on its own host, so
/// a neighbouring site (a sibling subdomain) cannot plant one of its choosing
/// (a session of the attacker's, an empty device cookie); plain http
/// (development) cannot carry the prefix.
#[derive(Clone, Copy)]
pub struct Name {
    secure: &'static str,
    plain: &'static str,
}

impl Name {
    pub const fn new(secure: &'static str, plain: &'static str) -> Self {
        Self { secure, plain }
    }

    pub fn of(self, app: &Clef) -> &'static str {
        if app.config.secure_cookies() {
            self.secure
        } else {
            self.plain
        }
    }
}

/// The SSO session.
pub const SESSION: Name = Name::new("__Host-clef_session", "clef_session");
/// The login form's CSRF token.
const CSRF: Name = Name::new("__Host-clef_csrf", "clef_csrf");
/// Proofs that this browser signed in before (see `accounts::devices`).
const DEVICE: Name = Name::new("__Host-clef_device", "clef_device");

/// What a request done tells the page it redirects to (post, redirect, get):
/// a cookie of a minute naming what was done, read and dropped by that page,
/// so that reloading it, or coming back to it, repeats nothing.
const DONE: Name = Name::new("__Host-clef_done", "clef_done");

/// Answers a request done: a redirect to `page`, which is told `what` once
/// ([`told`]). `what` names what was done, never a text to show.
pub fn tell(app: &Clef, jar: CookieJar, what: String, page: &str) -> axum::response::Response {
    let mut cookie = base(app, DONE.of(app), what);
    cookie.set_max_age(Duration::minutes(1));
    axum::response::IntoResponse::into_response((
        jar.add(cookie),
        axum::response::Redirect::to(page),
    ))
}

/// What the page after a request done is told ([`tell`]), if anything, and
/// the jar that drops it (for the answer that shows it).
pub fn told(app: &Clef, jar: CookieJar) -> (CookieJar, Option<String>) {
    let name = DONE.of(app);
    match jar.get(name).map(|cookie| cookie.value().to_owned()) {
        Some(what) => (without(app, jar, name), Some(what)),
        None => (jar, None),
    }
}

/// The session cookie's value, if the browser sent one.
pub fn session_token<'j>(app: &Clef, jar: &'j CookieJar) -> Option<&'j str> {
    jar.get(SESSION.of(app)).map(Cookie::value)
}

pub fn base<'a>(app: &Clef, name: &'a str, value: String) -> Cookie<'a> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_http_only(true);
    cookie.set_path("/");
    // Lax: the cookie must travel on the top-level GET /authorize a client starts.
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(app.config.secure_cookies());
    cookie
}

pub fn session(app: &Clef, token: String) -> Cookie<'static> {
    let mut cookie = base(app, SESSION.of(app), token);
    cookie.set_max_age(Duration::seconds(app.config.session_ttl));
    cookie
}

/// Tells the browser to drop its session cookie (logout).
pub fn without_session(app: &Clef, jar: CookieJar) -> CookieJar {
    without(app, jar, SESSION.of(app))
}

/// Tells the browser to drop the cookie `name`: with the attributes it was
/// set with, without which a browser keeps a `__Host-` cookie.
pub fn without(app: &Clef, jar: CookieJar, name: &'static str) -> CookieJar {
    jar.remove(base(app, name, String::new()))
}

/// Where an attempt on `account` comes from: the client address, and this
/// browser if its device cookie proves a past sign-in to that account, with
/// the credentials it has now. An unknown account has no trusted browser.
pub fn origin(app: &Clef, jar: &CookieJar, address: IpAddr, account: Option<&Account>) -> Origin {
    Origin {
        address,
        device: account.and_then(|account| {
            app.devices.recognise(
                device_entries(app, jar),
                &account.identifier,
                account.credential_stamp(),
            )
        }),
    }
}

/// [`origin`] for an identifier as typed, however (its account read first;
/// what is no identifier names none).
pub async fn origin_of(
    app: &Clef,
    jar: &CookieJar,
    address: IpAddr,
    typed: &str,
) -> Result<Origin, sqlx::Error> {
    let account = match Identifier::parse(typed) {
        Ok(identifier) => store::account_by_identifier(&app.db, &identifier).await?,
        Err(_) => None,
    };
    Ok(origin(app, jar, address, account.as_ref()))
}

/// The proofs the browser's device cookie holds, unchecked.
pub fn device_proofs(app: &Clef, jar: &CookieJar) -> Vec<String> {
    device_entries(app, jar).map(str::to_owned).collect()
}

fn device_entries<'j>(app: &Clef, jar: &'j CookieJar) -> impl Iterator<Item = &'j str> {
    jar.get(DEVICE.of(app))
        .map_or("", |cookie| cookie.value())
        .split('~')
        .filter(|entry| !entry.is_empty())
        .take(MAX_PER_BROWSER)
}

/// After a successful sign-in: this browser is remembered for `account` as
/// its credentials are now (a fresh proof, first), beside the few other
/// proofs it holds.
pub fn remember_device(app: &Clef, jar: CookieJar, account: &Account) -> CookieJar {
    remember_device_anew(app, jar, account, account)
}

/// After a password set in this browser (first connection, change, reset):
/// a proof for the new credentials of `account` replaces the one for
/// `before`'s, which would only take a slot another account's proof needs.
pub fn remember_device_anew(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    before: &Account,
) -> CookieJar {
    let proof = app
        .devices
        .issue(&account.identifier, account.credential_stamp());
    remember(app, jar, account, before, proof)
}

/// A letter's QR code opened (`/activation?…&appareil=`): its proof, if it
/// is `account`'s letter as printed now, is this browser's for the account.
pub fn remember_letter(app: &Clef, jar: CookieJar, account: &Account, proof: &str) -> CookieJar {
    let stamp = account.credential_stamp();
    match app.devices.recognise([proof], &account.identifier, stamp) {
        Some(_) => remember(app, jar, account, account, proof.to_owned()),
        None => jar,
    }
}

/// `proof` first, then the browser's other proofs but `account`'s older ones.
fn remember(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    before: &Account,
    proof: String,
) -> CookieJar {
    let (identifier, stamp) = (account.identifier.as_str(), account.credential_stamp());
    let earlier = before.credential_stamp();
    let ours = |entry: &str| {
        app.devices.recognise([entry], identifier, stamp).is_some()
            || app
                .devices
                .recognise([entry], identifier, earlier)
                .is_some()
    };
    let mut entries = vec![proof];
    entries.extend(
        device_entries(app, &jar)
            .filter(|entry| !ours(entry))
            .take(MAX_PER_BROWSER - 1)
            .map(str::to_owned),
    );
    let mut cookie = base(app, DEVICE.of(app), entries.join("~"));
    cookie.set_max_age(Duration::days(365));
    jar.add(cookie)
}

/// The CSRF token of the login form (double submit: cookie and hidden field
/// must match). Reuses the browser's token when it has one.
pub fn csrf_token(app: &Clef, jar: CookieJar) -> (CookieJar, String) {
    if let Some(existing) = jar
        .get(CSRF.of(app))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
    {
        return (jar, existing);
    }
    let token = random_token(32);
    (jar.add(base(app, CSRF.of(app), token.clone())), token)
}

/// A new CSRF token at sign-in: one planted or seen before it (a shared
/// computer, a sibling host over plain http) does not carry into the session.
pub fn renew_csrf(app: &Clef, jar: CookieJar) -> CookieJar {
    jar.add(base(app, CSRF.of(app), random_token(32)))
}

pub fn csrf_matches(app: &Clef, jar: &CookieJar, submitted: Option<&str>) -> bool {
    match (jar.get(CSRF.of(app)), submitted) {
        (Some(cookie), Some(submitted)) => {
            cookie.value().len() == 43 && constant_time_eq(cookie.value(), submitted)
        }
        _ => false,
    }
}
