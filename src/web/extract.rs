//! Extractors for strictly decoded parameters. They never reject on their own:
//! each handler decides whether a bad parameter gets a page or a JSON error.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use ipnet::IpNet;

use super::cookies;
use super::error::WebError;
use crate::accounts::{Account, store};
use crate::app::Clef;
use crate::config::ForwardedHeader;
use crate::domain::{FieldError, Params};
use crate::oidc::session::{self, Session};

/// The query string's parameters, or why they could not be read.
pub struct Query(pub Result<Params, FieldError>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Params::parse(
            parts.uri.query().unwrap_or("").as_bytes(),
        )))
    }
}

/// A form body's parameters (`application/x-www-form-urlencoded`), or why not.
pub struct Form(pub Result<Params, BodyError>);

/// Why a request's body gives no parameters: a page says it to a person
/// (`From<BodyError> for WebError`), [`Self::wire_description`] to a client.
#[derive(Debug)]
pub enum BodyError {
    /// Not a POSTed `application/x-www-form-urlencoded` body (JSON, or no
    /// Content-Type at all).
    NotAForm,
    /// Longer than [`super::MAX_BODY`].
    TooLarge,
    /// A form whose parameters do not decode (repeated, not UTF-8, too long…).
    Params(FieldError),
}

impl BodyError {
    /// The refusal as a client reads it: English and ASCII only (RFC 6749 §5.2).
    pub fn wire_description(&self) -> String {
        match self {
            Self::NotAForm => {
                "the body must be a form: Content-Type application/x-www-form-urlencoded".into()
            }
            Self::TooLarge => format!("the body is longer than {} bytes", super::MAX_BODY),
            Self::Params(error) => error.wire_description(),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(match form_body(request, state).await {
            Ok(body) => Params::parse(&body).map_err(BodyError::Params),
            Err(error) => Err(error),
        }))
    }
}

/// A POSTed form's body, unread (`application/x-www-form-urlencoded`, within
/// the body limit), or why not.
async fn form_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, BodyError> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if request.method() != Method::POST || !is_form {
        return Err(BodyError::NotAForm);
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|_| BodyError::TooLarge)
}

/// An authorization request's parameters (the query, or the form of a POST,
/// OIDC Core §3.1.2.1), or why they could not be read with what is left of
/// them to answer the client with (`Params::lenient`).
pub struct AuthorizationParams(pub Result<Params, Unreadable>);

/// An authorization request refused as it was read.
pub struct Unreadable {
    pub error: BodyError,
    /// Its `client_id`, `redirect_uri`, `state` and `response_mode`, where
    /// each came once and sound.
    pub left: Params,
}

impl<S: Send + Sync> FromRequest<S> for AuthorizationParams {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        const LEFT: [&str; 4] = ["client_id", "redirect_uri", "state", "response_mode"];
        let raw = if request.method() == Method::POST {
            match form_body(request, state).await {
                Ok(body) => body,
                Err(error) => {
                    let left = Params::default();
                    return Ok(Self(Err(Unreadable { error, left })));
                }
            }
        } else {
            Bytes::copy_from_slice(request.uri().query().unwrap_or("").as_bytes())
        };
        Ok(Self(Params::parse(&raw).map_err(|error| Unreadable {
            error: BodyError::Params(error),
            left: Params::lenient(&raw, &LEFT),
        })))
    }
}

/// A person's form, decoded strictly (tabs pasted in a field taken as
/// spaces, `Params::parse_typed`) and its CSRF token checked against the
/// browser's cookie (double submit): what every POST of a page starts with.
pub struct CheckedForm(pub Params);

impl FromRequest<Arc<Clef>> for CheckedForm {
    type Rejection = WebError;

    async fn from_request(request: Request, app: &Arc<Clef>) -> Result<Self, WebError> {
        let jar = CookieJar::from_headers(request.headers());
        let body = form_body(request, app).await?;
        let params = Params::parse_typed(&body).map_err(BodyError::Params)?;
        if cookies::csrf_matches(app, &jar, params.get("csrf")) {
            Ok(Self(params))
        } else {
            Err(expired_form())
        }
    }
}

/// 403 for a form whose CSRF token does not match the browser's cookie.
pub fn expired_form() -> WebError {
    WebError::Page {
        status: StatusCode::FORBIDDEN,
        title: "Formulaire expiré",
        message: "Ce formulaire a expiré ou n'a pas été envoyé depuis Clef. Revenez à la page précédente et réessayez."
            .into(),
    }
}

/// The browser's SSO session, if it has a live one.
pub struct MaybeSession(pub Option<Session>);

impl FromRequestParts<Arc<Clef>> for MaybeSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<Clef>) -> Result<Self, WebError> {
        let jar = CookieJar::from_headers(&parts.headers);
        Ok(Self(current_session(app, &jar).await?))
    }
}

/// The session behind the request's cookie, if any.
pub async fn current_session(app: &Clef, jar: &CookieJar) -> anyhow::Result<Option<Session>> {
    match cookies::session_token(app, jar) {
        Some(token) => session::find(app, token, app.now()).await,
        None => Ok(None),
    }
}

/// The person signed in, whose account may use applications; anyone else is
/// sent to the login form.
pub struct SignedIn {
    pub account: Account,
    /// The session cookie's value (a password change keeps this session).
    pub session_token: String,
    /// The session itself (« cette session » in the list of sessions).
    pub session: Session,
}

impl FromRequestParts<Arc<Clef>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<Clef>) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let to_login = || Redirect::to("/login").into_response();
        let session = current_session(app, &jar)
            .await
            .map_err(|e| WebError::from(e).into_response())?
            .ok_or_else(to_login)?;
        let account = store::account_by_id(&app.db, &session.account_id)
            .await
            .map_err(|e| WebError::from(e).into_response())?
            .filter(Account::may_use_applications)
            .ok_or_else(to_login)?;
        let session_token = cookies::session_token(app, &jar)
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            account,
            session_token,
            session,
        })
    }
}

/// The browser as its `User-Agent` names it, printable and short: shown to
/// the person in their list of sessions.
pub struct Device(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let device: String = raw.chars().filter(|c| !c.is_control()).take(200).collect();
        Ok(Self(if device.is_empty() {
            "navigateur inconnu".into()
        } else {
            device
        }))
    }
}

/// A browser's `User-Agent` as a person reads it: « Firefox sur Windows ».
/// Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
pub fn device_label(user_agent: &str) -> String {
    let has = |needle: &str| user_agent.contains(needle);
    let browser = if has("Firefox/") {
        "Firefox"
    } else if has("Edg/") || has("Edge/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("SamsungBrowser/") {
        "Samsung Internet"
    } else if has("Chrome/") || has("Chromium/") || has("CriOS/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else {
        return user_agent.chars().take(60).collect();
    };
    let system = if has("iPhone") || has("iPad") || has("iOS") {
        "iOS"
    } else if has("Android") {
        "Android"
    } else if has("Windows") {
        "Windows"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("Linux") {
        "Linux"
    } else {
        return browser.to_owned();
    };
    format!("{browser} sur {system}")
}

/// The client's address: the TCP peer, or — when the peer is a trusted proxy —
/// the rightmost hop of `Forwarded` (RFC 7239) or `X-Forwarded-For` that is not
/// a trusted proxy (SPEC §5). Limits, logs and audit all read it from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<Arc<Clef>> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<Clef>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(known) = parts.extensions.get::<ClientAddress>() {
            return Ok(*known);
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
        if app.config.trusted_proxies.is_empty() {
            warn_of_an_untrusted_proxy(&parts.headers);
        }
        let address = Self(client_address(
            peer,
            &parts.headers,
            &app.config.trusted_proxies,
            app.config.forwarded_header,
        ));
        parts.extensions.insert(address);
        Ok(address)
    }
}

/// Once per process, the operator is told of forwarding headers reaching a
/// Clef that trusts no proxy: behind a reverse proxy so configured, every
/// family counts as the proxy's one address, and a hundred failed sign-ins
/// anywhere hold every family back for 15 minutes.
fn warn_of_an_untrusted_proxy(headers: &HeaderMap) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if (headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED))
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            "a request carries X-Forwarded-For or Forwarded, but trusted_proxies is empty: \
             behind a reverse proxy, every client is counted as the proxy's address by the \
             limits; set trusted_proxies (CLEF_TRUSTED_PROXIES) to the proxy's addresses"
        );
    }
}

/// Whether `peer` is one of the `trusted` proxies, whose forwarding headers
/// and request id are believed (an IPv4 peer written as IPv6 is its IPv4).
pub fn is_trusted_proxy(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = peer.to_canonical();
    trusted.iter().any(|net| net.contains(&peer))
}

/// See [`ClientAddress`]. Only `header` is read (`X-Forwarded-For` or
/// `Forwarded`), never the other: a proxy that writes one passes a client's
/// own copy of the other through. A hop that cannot be read ends the walk at
/// the last trusted one. IPv4 addresses written as IPv6 (`::ffff:a.b.c.d`, a
/// dual-stack listener's peers) are read as the IPv4 addresses they are.
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| is_trusted_proxy(*ip, trusted);
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = match header {
        ForwardedHeader::Forwarded => header_items(headers, header::FORWARDED.as_str())
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, node)| forwarded_node(node.trim()))
            })
            .collect(),
        ForwardedHeader::XForwardedFor => header_items(headers, "x-forwarded-for")
            .map(|hop| forwarded_node(hop.trim()))
            .collect(),
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(hop) => {
                client = hop;
                if !is_trusted(&hop) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The comma-separated items of every instance of a header, in order. An
/// item that is not text reads as empty, which no address parses from: the
/// walk stops there, not before the items a proxy appended after it (a
/// client's `\xff` must not make the whole header, its real address with it,
/// disappear).
fn header_items<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|item| std::str::from_utf8(item).unwrap_or(""))
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn forwarded_node(node: &str) -> Option<IpAddr> {
    node_address(node).map(|ip| ip.to_canonical())
}

fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim_matches('"');
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn browsers_are_named_as_people_know_them() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox sur Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
                "Chrome sur Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0",
                "Edge sur Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                "Safari sur iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0 Mobile Safari/537.36",
                "Samsung Internet sur Android",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
                "Safari sur macOS",
            ),
            ("curl/8.5.0", "curl/8.5.0"),
        ];
        for (agent, label) in cases {
            assert_eq!(device_label(agent), label, "{agent}");
        }
    }

    #[test]
    fn a_trusted_proxy_is_one_whatever_its_address_s_spelling() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(is_trusted_proxy(ip("10.0.0.1"), &trusted));
        assert!(is_trusted_proxy(ip("::ffff:10.0.0.1"), &trusted));
        assert!(!is_trusted_proxy(ip("203.0.113.5"), &trusted));
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.9")]);
        // From an untrusted peer, the header is the attacker's word: ignored.
        assert_eq!(
            client_address(ip("203.0.113.5"), &spoofed, &trusted, XFF),
            ip("203.0.113.5")
        );
        // Through the proxy, the client is the rightmost untrusted hop: a
        // client-supplied first entry cannot choose the address counted.
        let chain = headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.5, 10.1.2.3")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &chain, &trusted, XFF),
            ip("203.0.113.5")
        );
        let split = headers(&[
            ("x-forwarded-for", "198.51.100.9"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(
            client_address(ip("::1"), &split, &trusted, XFF),
            ip("203.0.113.5")
        );
        // A client's byte that is not text, the proxy's address after it:
        // the address the proxy saw, not the proxy's.
        let mut junk = HeaderMap::new();
        junk.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.5").unwrap(),
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &junk, &trusted, XFF),
            ip("203.0.113.5")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted, XFF),
            ip("10.0.0.1")
        );
        // Nobody trusted: always the peer.
        assert_eq!(
            client_address(ip("10.0.0.1"), &chain, &[], XFF),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_as_rfc_7239_writes_it() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forwarded = headers(&[
            (
                "forwarded",
                r#"for=198.51.100.9;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1"#,
            ),
            ("x-forwarded-for", "192.0.2.99"),
        ]);
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                &forwarded,
                &trusted,
                ForwardedHeader::Forwarded
            ),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("forwarded", "for=\"192.0.2.60:8080\"")]);
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                &with_port,
                &trusted,
                ForwardedHeader::Forwarded
            ),
            ip("192.0.2.60")
        );
        // An obfuscated or garbled hop ends the walk at the last trusted one.
        let hidden = headers(&[("forwarded", "for=_hidden, for=10.9.9.9")]);
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                &hidden,
                &trusted,
                ForwardedHeader::Forwarded
            ),
            ip("10.9.9.9")
        );
    }

    /// ingress-nginx, HAProxy and Traefik write `X-Forwarded-For` and pass a
    /// client's own `Forwarded` through: it must not choose the address counted.
    #[test]
    fn only_the_configured_header_is_read() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let both = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "192.0.2.9"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &both, &trusted, XFF),
            ip("192.0.2.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &both, &trusted, ForwardedHeader::Forwarded),
            ip("198.51.100.1")
        );
    }

    /// A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`: still the
    /// trusted proxy of `10.0.0.0/8`, and still one IPv4 client each.
    #[test]
    fn ipv4_addresses_written_as_ipv6_are_read_as_ipv4() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let chain = headers(&[("x-forwarded-for", "::ffff:198.51.100.9")]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.1"), &chain, &trusted, XFF),
            ip("198.51.100.9")
        );
        assert_eq!(
            client_address(ip("::ffff:203.0.113.5"), &chain, &trusted, XFF),
            ip("203.0.113.5")
        );
    }
}
