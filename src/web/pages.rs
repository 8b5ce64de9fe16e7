//! Page templates, carried in the binary and rendered with minijinja
//! (auto-escaped: the names end in `.html`).

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

macro_rules! pages {
    ($($name:literal),* $(,)?) => {
        &[$((concat!("pages/", $name), include_str!(concat!("../../templates/pages/", $name)))),*]
    };
}

pub(super) const TEMPLATES: &[(&str, &str)] = pages![
    "base.html",
    "fields.html",
    "login.html",
    "message.html",
    "form_post.html",
    "first_connection.html",
    "pending_email.html",
    "unconfirmed.html",
    "confirm.html",
    "account.html",
    "consent.html",
    "logout.html",
    "logged_out.html",
    "forgot_identifier.html",
    "forgot_password.html",
    "recovery_help.html",
    "recovery_channel.html",
    "recovery_requested.html",
    "recovery_code.html",
    "reset_password.html",
    "grouping.html",
    "grouping_confirm.html",
    "backoffice_home.html",
    "backoffice_funnel.html",
    "backoffice_establishment.html",
    "backoffice_details.html",
    "backoffice_accounts.html",
    "backoffice_account.html",
    "backoffice_import.html",
    "backoffice_letters.html",
];

/// What the pages' templates call beyond minijinja's own.
pub(super) fn configure(env: &mut Environment<'_>) {
    // `t("…")`: the sentence in the language of the request (see `i18n`).
    env.add_function("t", super::i18n::template_function);
    // `value | tr`: a message from the handler, translated, escaped as any value.
    env.add_filter("tr", |text: &str| super::i18n::translate(text));
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    // The templates are part of the binary; a syntax error is a build defect
    // caught by the tests that render every page. A theme's were checked when
    // it was loaded.
    ENV.get_or_init(|| {
        super::theme::environment(TEMPLATES, super::theme::installed(), configure)
            .unwrap_or_else(|e| panic!("{e:#}"))
    })
}

/// Renders a page; a rendering failure becomes a bare 500 and is logged.
pub fn render(status: StatusCode, name: &str, context: minijinja::Value) -> Response {
    match environment()
        .get_template(name)
        .and_then(|t| t.render(with_language(context)))
    {
        Ok(html) => {
            let html = match super::locale::current() {
                super::locale::Locale::Fr => crate::domain::typography::french_html(&html),
                super::locale::Locale::En => html,
            };
            (status, Html(html)).into_response()
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(match super::locale::current() {
                    super::locale::Locale::Fr => "<!doctype html><html lang=\"fr\"><title>Erreur</title><p>Erreur interne.</p>",
                    super::locale::Locale::En => "<!doctype html><html lang=\"en\"><title>Error</title><p>Internal error.</p>",
                }),
            )
                .into_response()
        }
    }
}

/// Adds what the layout needs to speak the request's language: `lang`, and
/// the language link's target and return path.
/// A page may name where the link returns to (`lang_back`, a path on Clef).
fn with_language(context: minijinja::Value) -> minijinja::Value {
    let locale = super::locale::current();
    let back = context
        .get_attr("lang_back")
        .ok()
        .and_then(|back| back.as_str().map(str::to_owned))
        .unwrap_or_else(super::locale::here);
    minijinja::context! {
        lang => locale.code(),
        other_lang => locale.other().code(),
        here => url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>(),
        theme_css => super::theme::stylesheet(),
        theme_logo => super::theme::logo(),
        ..context
    }
}

/// Fields to correct, as `pages/fields.html`'s macros take them: each
/// input's id and its French message, in the form's order.
pub fn field_errors<'a>(
    errors: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<minijinja::Value> {
    errors
        .into_iter()
        .map(|(field, message)| minijinja::context! { field, message })
        .collect()
}

/// A page holding a form: sets the CSRF cookie if the browser has none, hands
/// the token to `context`, and keeps the page out of caches.
pub fn form(
    app: &crate::app::Clef,
    jar: axum_extra::extract::CookieJar,
    status: StatusCode,
    name: &str,
    context: impl FnOnce(String) -> minijinja::Value,
) -> Response {
    // The header offers « Se déconnecter » to a browser holding a session cookie.
    let signed_in = super::cookies::session_token(app, &jar).is_some();
    let (jar, csrf) = super::cookies::csrf_token(app, jar);
    let context = context(csrf);
    let page = render(status, name, minijinja::context! { signed_in, ..context });
    let mut response = (jar, page).into_response();
    no_store(&mut response);
    response
}

/// A page whose forms may lead on to a relying party (a sign-in's login,
/// consent and first connection, a logout's confirmation): its policy's
/// `form-action` also names where `redirect_uri` is, for a browser that
/// holds the redirects following a form to it, as CSP 3 lets it (Chromium
/// 156 was seen following the login form's redirect to a relying party on
/// another port without it), and the last of them goes there.
pub fn leading_to(mut response: Response, redirect_uri: Option<&str>) -> Response {
    use axum::http::{HeaderValue, header};
    let Some(source) = redirect_uri.and_then(form_source) else {
        return response;
    };
    let policy = format!("{} {source}", super::PAGE_POLICY);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Where `redirect_uri` is, as a policy's source names it: its origin for
/// http(s); its scheme for a native app's private one, or for an IPv6
/// address (`http://[::1]:port/`, RFC 8252), which a source cannot write:
/// that client's pages then let forms lead to any address of the scheme.
fn form_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.scheme() {
        "http" | "https" => match url.host()? {
            url::Host::Ipv6(_) => Some(format!("{}:", url.scheme())),
            _ => Some(url.origin().ascii_serialization()),
        },
        scheme => Some(format!("{scheme}:")),
    }
}

/// Keeps a response out of every cache (pages with forms, tokens, redirects with codes).
pub fn no_store(response: &mut Response) {
    use axum::http::{HeaderValue, header};
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `page`, refused by a limit: when to try again, in seconds (RFC 9110 §10.2.3).
pub fn retry_after(page: Response, seconds: u64) -> Response {
    use axum::http::header;
    ([(header::RETRY_AFTER, seconds.to_string())], page).into_response()
}

/// A page with a title and a message: errors and confirmations.
pub fn message(status: StatusCode, title: &str, message: &str, detail: Option<&str>) -> Response {
    message_with_link(status, title, message, detail, None)
}

/// A message page with one link onwards (« Continuer vers l'application »…).
pub fn message_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    detail: Option<&str>,
    link: Option<(&str, &str)>,
) -> Response {
    message_with_links(status, title, message, detail, link.as_slice())
}

/// A message, then links (`href`, French text) one per line, the way on first.
pub fn message_with_links(
    status: StatusCode,
    title: &str,
    message: &str,
    detail: Option<&str>,
    links: &[(&str, &str)],
) -> Response {
    let mut page = render(
        status,
        "pages/message.html",
        minijinja::context! {
            title, message, detail, links => links.iter().map(|(href, text)| ((*href).to_owned(), (*text).to_owned())).collect::<Vec<_>>(),
            alert => status.is_client_error() || status.is_server_error(),
        },
    );
    // An outcome or a refusal of one request: nothing to keep (it may quote the request).
    no_store(&mut page);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An import under way: the page reloads itself and says so, in either language.
    #[test]
    fn an_import_under_way_asks_for_its_end() {
        for (locale, expected) in [
            (super::super::locale::Locale::Fr, "Import en cours"),
            (super::super::locale::Locale::En, "Import under way"),
        ] {
            let html = super::super::locale::speaking(locale, || {
                environment()
                    .get_template("pages/backoffice_import.html")
                    .unwrap()
                    .render(super::with_language(minijinja::context! {
                        running => 2000, uai => "0590001A", name => "College", csrf => "x",
                        job => "j0b", nonce => "n0nce",
                    }))
            })
            .unwrap();
            assert!(
                !html.contains("http-equiv=\"refresh\""),
                "no reload every second"
            );
            assert!(html.contains("<script nonce=\"n0nce\">"), "{html}");
            assert!(html.contains("<a href=\"/etablissement/0590001A/import/suivi/j0b\">"));
            assert!(html.contains(expected) && html.contains("2000"), "{html}");
        }
    }

    /// Every page with every branch taken, in English: no French sentence left.
    #[test]
    fn english_pages_have_no_french() {
        let context = minijinja::context! {
            activation => true, client_name => "Service", error => "Identifiant ou mot de passe incorrect.",
            notice => "Votre mot de passe a été modifié.", identifier => "lea", name => "Léa",
            email => "l@example.org", email_verified => false, pending_email => "n@example.org",
            last_login => "03/09/2026 à 14:05", can_resend => true, csrf => "x", signed_in => true,
            rule => "Mot de passe : 8 à 14 caractères, chiffres et lettres obligatoires.",
            sessions => [minijinja::context! { device => "Firefox sur Windows", current => true,
                opened => "03/09/2026 à 14:05", last_seen => "03/09/2026 à 14:05" }],
            applications => [minijinja::context! { name => "Service", client_id => "c",
                since => "03/09/2026 à 14:05",
                items => [minijinja::context! { text => "votre adresse mail", names => ["Zoé Martin"] }] }],
            items => [minijinja::context! { text => "vos nom et prénom", names => ["Zoé Martin"] }],
            third_party => true,
            terms_url => "https://t.example", terms_version => "2", pending => "p",
            guardian => true, child => "Zoé", email_required => true,
            title => "Page introuvable", message => "Cette page n'existe pas.", detail => "code",
            links => [("/compte", "Gérer mon compte")], alert => true,
            continue_url => "/x", client_id => "c", state => "s",
            action => "https://rp.example/cb", params => [("code", "c")],
            uai => "0590001A", establishment => "College Test", academy => true,
            details => minijinja::context! {
                name => minijinja::context! { value => "College Test", shown => "College Test" },
                address => minijinja::context! { value => "1 rue Pasteur", shown => "" },
                city => minijinja::context! { value => "59000 Lille", shown => "" },
                contact => minijinja::context! { value => "03 20 00 00 00", shown => "" },
                portal_url => minijinja::context! { value => "https://ent.example.fr/", shown => "" },
            },
            establishments => [minijinja::context! { uai => "0590001A", name => "College Test" }],
            chart => minijinja::context! {
                bars => [minijinja::context! { class => "5 B", provisional => 1, pending_email => 2, active => 3, total => 6, p => 16.7, e => 33.3, a => 50.0, e_x => 16.7, a_x => 50.0, y => 0 }],
                height => 28, total => minijinja::context! { provisional => 1, pending_email => 2, active => 3 },
            },
            label => "Eleves", id => "eleves",
            students => minijinja::context! { bars => Vec::<minijinja::Value>::new(), height => 0, total => minijinja::context! {} },
            guardians => minijinja::context! { bars => Vec::<minijinja::Value>::new(), height => 0, total => minijinja::context! {} },
            accounts => [minijinja::context! { id => "a", identifier => "lea", kind => "student", state => "active", name => "Lea", class => "5 B" }],
            classes => ["5 B"], class => "5 B", page => 2, more => true, previous => 1, next => 3, q => "",
            kind => "guardian", children => [minijinja::context! { id => "c", name => "Lea", portal => "https://ent.example" }], provisional => true, closed => false, reauth => true,
            trail => [minijinja::context! { at => "03/09/2026 à 14:05", event => "login", outcome => "ok", address => "192.0.2.1", detail => "x", by_staff => true }],
        };
        for (name, _) in TEMPLATES {
            let html = super::super::locale::speaking(super::super::locale::Locale::En, || {
                environment()
                    .get_template(name)
                    .unwrap()
                    .render(super::with_language(context.clone()))
            })
            .unwrap();
            let text: String = html
                .split('<')
                .map(|piece| piece.split_once('>').map_or(piece, |(_, text)| text))
                .collect::<Vec<_>>()
                .join(" ")
                .replace("Français", "")
                .replace("Léa", "")
                .replace("Zoé", "");
            for marker in [
                "é", "è", "à", "«", " vous ", " votre ", " le ", " la ", " les ", " de ", " du ",
                " des ",
            ] {
                assert!(
                    !text.contains(marker),
                    "{name}: French « {marker} » left:\n{text}"
                );
            }
        }
    }

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            environment().get_template(name).unwrap();
        }
    }
}
