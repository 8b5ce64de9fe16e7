//! The language a page speaks: French by default, English when the relying party
//! asked for it (`ui_locales` on /authorize, kept for the flow in a session cookie),
//! when the person chose it (the link on every page, remembered in a cookie), or
//! when the browser prefers it (`Accept-Language`).
//!
//! A middleware settles the language once per request and keeps it in a task-local,
//! so page rendering and the few messages built in Rust read it without every
//! handler carrying it.

use axum::extract::{Query, Request};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};

use crate::accounts::store;
use crate::app::Clef;
pub use crate::domain::Locale;

/// The person's choice, made with the link on every page.
pub const CHOICE: &str = "clef_lang";
/// The `ui_locales` of the authorization request in progress (a session cookie).
pub const FLOW: &str = "clef_ui";

tokio::task_local! {
    /// Where the language link brings the person back to (a relative path).
    static HERE: String;
}

/// The language of the request being served (French outside a request).
pub fn current() -> Locale {
    Locale::current()
}

/// Runs `f` as if serving a request in `locale` (for tests outside a request).
#[cfg(test)]
pub fn speaking<R>(locale: Locale, f: impl FnOnce() -> R) -> R {
    HERE.sync_scope("/".into(), || locale.sync_scope(f))
}

/// The page the language link returns to.
pub fn here() -> String {
    HERE.try_with(Clone::clone).unwrap_or_else(|_| "/".into())
}

fn cookie_locale(jar: &CookieJar, name: &str) -> Option<Locale> {
    jar.get(name).and_then(|c| Locale::from_tag(c.value()))
}

/// The language `ui_locales` names in a query string or form body, if Clef speaks it.
fn ui_locales(params: &[u8]) -> Option<Locale> {
    url::form_urlencoded::parse(params)
        .find(|(k, _)| k == "ui_locales")
        .and_then(|(_, v)| Locale::from_ui_locales(&v))
}

fn cookie(app: &Clef, name: &'static str, locale: Locale) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, locale.code());
    cookie.set_http_only(true);
    cookie.set_path("/");
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(app.config.secure_cookies());
    if name == FLOW {
        // The flow's language lasts as long as its request may wait, not
        // over every page and mail of the browser's session after it.
        let ttl = crate::oidc::grants::PENDING_TTL.as_secs() as i64;
        cookie.set_max_age(time::Duration::seconds(ttl));
    }
    cookie
}

/// `response`, remembering `locale` for the rest of the authorization flow:
/// the `ui_locales` a request object or a pushed request carried.
pub fn remember_flow(app: &Clef, locale: Locale, response: Response) -> Response {
    (CookieJar::new().add(cookie(app, FLOW, locale)), response).into_response()
}

/// Whether `response` sets the cookie `name` itself.
fn sets_cookie(response: &Response, name: &str) -> bool {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| {
            c.as_bytes()
                .strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.starts_with(b"="))
        })
}

/// Settles the request's language; on /authorize, remembers `ui_locales` for
/// the flow; on /logout, follows it.
pub async fn settle(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<Clef>>,
    request: Request,
    next: Next,
) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let mut flow_cookie = None;
    let mut flow = cookie_locale(&jar, FLOW);
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    // A POSTed authorization or logout request (OIDC Core §3.1.2.1,
    // RP-Initiated Logout §2) carries `ui_locales` in its form: read it, and
    // hand the same bytes on to the handler.
    let posted =
        request.method() == Method::POST && matches!(path.as_str(), "/authorize" | "/logout");
    let (in_body, request) = if posted {
        let (parts, body) = request.into_parts();
        match axum::body::to_bytes(body, super::MAX_BODY).await {
            Ok(bytes) => (
                ui_locales(&bytes),
                Request::from_parts(parts, axum::body::Body::from(bytes)),
            ),
            Err(_) => {
                // In the language the page would have had, as far as the
                // headers tell.
                let locale = chosen(flow, &jar, &parts.headers);
                return locale.sync_scope(|| {
                    super::WebError::from(super::extract::BodyError::TooLarge).into_response()
                });
            }
        }
    } else {
        (None, request)
    };
    // RP-Initiated Logout §2: `ui_locales` for the logout pages, this request
    // only; the confirmation's form posts in its page's language the same way
    // (in its address).
    if path == "/logout"
        && let Some(asked) = in_body.or_else(|| ui_locales(query.as_bytes()))
    {
        flow = Some(asked);
    }
    // A link of a mail carries the mail's language (`lang`, which the mails of
    // `accounts` add to their links): the person's choice from then on, as the
    // language link makes it.
    let linked = (request.method() == Method::GET && path != "/langue")
        .then(|| lang_of(&query))
        .flatten();
    if linked.is_some() {
        flow = linked;
    }
    if path == "/authorize" {
        let asked = match *request.method() {
            Method::GET => ui_locales(query.as_bytes()),
            Method::POST => in_body,
            _ => None,
        };
        flow_cookie = Some(asked);
        flow = asked;
    }
    let locale = chosen(flow, &jar, request.headers());
    let here = if request.method() == Method::GET {
        // Without the mail's `lang`, which would undo the language link.
        let uri = request.uri();
        match (linked, uri.query()) {
            (Some(_), Some(query)) => {
                let rest: Vec<_> = query
                    .split('&')
                    .filter(|p| !p.starts_with("lang="))
                    .collect();
                match rest.is_empty() {
                    true => uri.path().to_owned(),
                    false => format!("{}?{}", uri.path(), rest.join("&")),
                }
            }
            _ => uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned()),
        }
    } else {
        back_after_post(request.uri().path()).to_owned()
    };
    let response = HERE.scope(here, locale.scope(next.run(request))).await;
    let response = match linked {
        Some(locale) => (jar.clone().add(choice(&app, locale)), response).into_response(),
        None => response,
    };
    if sets_cookie(&response, FLOW) {
        // The handler found `ui_locales` where this could not (`remember_flow`).
        return response;
    }
    match flow_cookie {
        Some(Some(asked)) => (jar.add(cookie(&app, FLOW, asked)), response).into_response(),
        Some(None) if jar.get(FLOW).is_some() => {
            let mut gone = Cookie::from(FLOW);
            gone.set_path("/");
            (jar.remove(gone), response).into_response()
        }
        _ => response,
    }
}

/// Where the language link of a page answering a form goes: the page the form
/// came from when a plain GET shows it, else the start of its flow, else the
/// home page. (The login and consent pages of a request name their own.)
fn back_after_post(path: &str) -> &str {
    match path {
        "/login" | "/premiere-connexion" | "/identifiant-oublie" => path,
        p if p.starts_with("/mot-de-passe-oublie") => "/mot-de-passe-oublie",
        p if p.starts_with("/compte-non-confirme") => "/compte-non-confirme",
        p if p.starts_with("/compte/regroupement") => "/compte/regroupement",
        p if p.starts_with("/compte") => "/compte",
        p if p.starts_with("/etablissement/") => {
            // The establishment's page: `/etablissement/{uai}`.
            let uai_end = p["/etablissement/".len()..]
                .find('/')
                .map_or(p.len(), |i| "/etablissement/".len() + i);
            &p[..uai_end]
        }
        _ => "/",
    }
}

/// The language a request's headers ask for, as `settle` reads it (the
/// cookies, then `Accept-Language`): for an answer made before `settle` runs.
pub fn of_headers(headers: &HeaderMap) -> Locale {
    let jar = CookieJar::from_headers(headers);
    chosen(cookie_locale(&jar, FLOW), &jar, headers)
}

/// The flow's language if it has one, else the person's choice, else the
/// browser's, else French.
fn chosen(flow: Option<Locale>, jar: &CookieJar, headers: &HeaderMap) -> Locale {
    flow.or_else(|| cookie_locale(jar, CHOICE))
        .or_else(|| accept_language(headers))
        .unwrap_or_default()
}

fn accept_language(headers: &HeaderMap) -> Option<Locale> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language)
}

#[derive(serde::Deserialize)]
pub struct Switch {
    lang: String,
    next: Option<String>,
}

/// `GET /langue?lang=en&next=/login?…`: remembers the choice and goes back to
/// the page, a relative path on Clef only (never another site).
pub async fn switch(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<Clef>>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(switch): Query<Switch>,
) -> Response {
    let next = switch
        .next
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/".into());
    let Some(locale) = Locale::from_tag(&switch.lang) else {
        return Redirect::to(&next).into_response();
    };
    // Signed in, the choice is the person's: the mails others' actions send
    // them (the school correcting their address) speak it too. Only from
    // Clef's own link: a link on another site (a GET the session cookie
    // follows) changes this browser's pages, not the account.
    let stored = async {
        if from_another_site(&headers) {
            return anyhow::Ok(());
        }
        if let Some(session) = super::extract::current_session(&app, &jar).await? {
            store::set_locale(&app.db, &session.account_id, locale).await?;
        }
        anyhow::Ok(())
    };
    if let Err(e) = stored.await {
        tracing::warn!(error = %e, "language choice not stored");
    }
    (chose(&app, jar, locale), Redirect::to(&next)).into_response()
}

/// `jar` with the person's choice of `locale`, which ends the flow's
/// (`ui_locales`): the language link, or a form's button doing its work.
pub fn chose(app: &Clef, jar: CookieJar, locale: Locale) -> CookieJar {
    let mut flow = Cookie::from(FLOW);
    flow.set_path("/");
    jar.add(choice(app, locale)).remove(flow)
}

/// Whether the browser says the request was started from another site's page
/// (`Sec-Fetch-Site`, sent by every current browser). Without the header (a
/// browser from before 2023, a script), the request is taken as Clef's own.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|site| site != "same-origin" && site != "none")
}

/// The person's choice of language, remembered for a year.
fn choice(app: &Clef, locale: Locale) -> Cookie<'static> {
    let mut choice = cookie(app, CHOICE, locale);
    choice.set_max_age(time::Duration::days(365));
    choice
}

/// The language a link of a mail names: `lang=en` in its query.
fn lang_of(query: &str) -> Option<Locale> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Locale::from_tag(&v))
}

/// A path on this site: starts with one `/`, not `//` or `/\`, no scheme, no control characters.
pub(super) fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert!(is_local_path("/login?request=abc"));
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/a\nb",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn a_page_answering_a_form_links_back_to_a_page_a_get_shows() {
        for (posted, back) in [
            ("/login", "/login"),
            ("/identifiant-oublie", "/identifiant-oublie"),
            ("/mot-de-passe-oublie/envoyer", "/mot-de-passe-oublie"),
            ("/mot-de-passe-oublie/code", "/mot-de-passe-oublie"),
            ("/compte/mot-de-passe", "/compte"),
            ("/compte/regroupement", "/compte/regroupement"),
            ("/compte/regroupement/valider", "/compte/regroupement"),
            (
                "/etablissement/0590011A/compte/x/action",
                "/etablissement/0590011A",
            ),
            ("/etablissement/0590011A/import", "/etablissement/0590011A"),
            ("/etablissement/0590011A", "/etablissement/0590011A"),
            ("/consentement", "/"),
        ] {
            assert_eq!(back_after_post(posted), back, "{posted}");
        }
    }
}
