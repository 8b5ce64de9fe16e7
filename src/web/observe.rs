//! What every request leaves behind: a span carrying its request id, route
//! and client address (so each log line written while it runs names them),
//! and its count and latency in the metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

use super::AppState;
use super::extract::{client_address, is_trusted_proxy};
use crate::app::Clef;
use crate::metrics::{RequestLabels, RouteLabels};

/// A request id a trusted proxy sets for its own logs is kept if it looks
/// like one (up to 128 letters, digits and `-_.:`, once); any other is the
/// client's word, which would fill or mislead the log lines of the request
/// (or pin them on someone else's): it is dropped and Clef makes its own.
pub async fn sane_request_id(State(app): AppState, mut request: Request) -> Request {
    let from_proxy = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| is_trusted_proxy(peer.ip(), &app.config.trusted_proxies));
    let headers = request.headers();
    let mut ids = headers.get_all("x-request-id").iter();
    let sane = from_proxy
        && match (ids.next(), ids.next()) {
            (None, _) => true,
            (Some(id), None) => {
                let id = id.as_bytes();
                !id.is_empty()
                    && id.len() <= 128
                    && id
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
            }
            (Some(_), Some(_)) => false,
        };
    if !sane && request.headers().contains_key("x-request-id") {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// The span of a request: its id (`X-Request-Id`, set or kept at the edge),
/// method, path without the query (which may carry codes), client address.
/// None for the documents served from memory, which log nothing: at `info`,
/// the span (its fields formatted as it opens) cost a discovery request a
/// tenth of its CPU (docs/benchmarks.md); the answer still carries its id.
pub fn span(app: &Arc<Clef>, request: &Request) -> tracing::Span {
    if matches!(
        request.uri().path(),
        "/.well-known/openid-configuration"
            | "/.well-known/oauth-authorization-server"
            | "/jwks.json"
            | "/healthz"
    ) {
        return tracing::Span::none();
    }
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            client_address(
                peer.ip(),
                request.headers(),
                &app.config.trusted_proxies,
                app.config.forwarded_header,
            )
        });
    tracing::info_span!(
        "request",
        request_id = id,
        method = %request.method(),
        path = request.uri().path(),
        client = client.map(tracing::field::display),
    )
}

/// Counts the request and times it, by route pattern (bounded cardinality).
pub async fn record(State(app): AppState, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    // Any token is a method to hyper: unknown ones share one label, so that
    // requests cannot grow the series without bound.
    let method = match *request.method() {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::OPTIONS
        | Method::PATCH => request.method().as_str(),
        _ => "other",
    }
    .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    app.metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`: the Prometheus exposition (keep it off the public proxy).
pub async fn metrics(State(app): AppState) -> Response {
    app.metrics
        .hashing_queue
        .set(i64::try_from(app.passwords.queued()).unwrap_or(i64::MAX));
    app.metrics.database_pool(&app.db);
    match app.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
