//! The SSO session cookie and the login form's CSRF cookie.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::Duration;

use crate::app::Clef;
use crate::secret::{constant_time_eq, random_token};

pub const SESSION: &str = "clef_session";
pub const CSRF: &str = "clef_csrf";

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

/// The CSRF token of the login form (double submit: cookie and hidden field
/// must match). Reuses the browser's token when it has one.
pub fn csrf_token(app: &Clef, jar: CookieJar) -> (CookieJar, String) {
    if let Some(existing) = jar
        .get(CSRF)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
    {
        return (jar, existing);
    }
    let token = random_token(32);
    (jar.add(base(app, CSRF, token.clone())), token)
}

pub fn csrf_matches(jar: &CookieJar, submitted: Option<&str>) -> bool {
    match (jar.get(CSRF), submitted) {
        (Some(cookie), Some(submitted)) => {
            cookie.value().len() == 43 && constant_time_eq(cookie.value(), submitted)
        }
        _ => false,
    }
}

/// A person's form, decoded and its CSRF checked: the first lines of every POST handler.
pub fn checked_form(
    jar: &CookieJar,
    params: Result<crate::domain::Params, crate::domain::FieldError>,
) -> Result<crate::domain::Params, super::WebError> {
    let params = params.map_err(|e| super::WebError::bad_request(&e))?;
    require_csrf(jar, &params)?;
    Ok(params)
}

/// Refuses a form whose CSRF field does not match the browser's cookie.
pub fn require_csrf(
    jar: &CookieJar,
    params: &crate::domain::Params,
) -> Result<(), super::WebError> {
    if csrf_matches(jar, params.get("csrf")) {
        Ok(())
    } else {
        Err(super::WebError::Page {
            status: axum::http::StatusCode::FORBIDDEN,
            title: "Formulaire expiré",
            message: "Ce formulaire a expiré ou n'a pas été envoyé depuis Clef. Revenez à la page précédente et réessayez."
                .into(),
        })
    }
}
