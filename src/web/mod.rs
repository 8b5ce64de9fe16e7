//! Everything HTTP: the router, extractors, cookies, error rendering, pages.

mod account;
mod activation;
mod backoffice;
mod consent;
mod cookies;
mod error;
mod extract;
mod grouping;
mod i18n;
mod interaction;
mod locale;
mod login;
mod logout;
mod observe;
mod oidc;
mod pages;
mod recovery;
mod redirect;
mod registration;
mod server;
pub mod theme;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::Clef;

pub use error::WebError;

/// The content security policy of every response that sets none: no script,
/// styles and images of Clef's own, never framed, forms sent to Clef only
/// (`form-action` last: a page whose forms lead on to a relying party names
/// its origin after it, `pages::leading_to`).
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// No form or token request needs more.
pub const MAX_BODY: usize = 64 * 1024;

pub type AppState = State<Arc<Clef>>;

/// The endpoints a relying party's browser code calls directly (a public
/// client in a web page): any origin may, with preflight; no cookies ride along.
fn cross_origin(app: &Arc<Clef>) -> Router<Arc<Clef>> {
    let needing_the_database = Router::new()
        .route("/token", post(oidc::token))
        .route("/par", post(oidc::par))
        .route("/introspect", post(oidc::introspect))
        .route("/revoke", post(oidc::revoke))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error::fail_fast_json,
        ));
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/theme/{name}", get(theme::file))
        // RFC 8414 §3: the same metadata where OAuth clients look for it.
        .route(
            "/.well-known/oauth-authorization-server",
            get(oidc::discovery),
        )
        .route("/jwks.json", get(oidc::jwks))
        .merge(needing_the_database)
        .method_not_allowed_fallback(json_method_not_allowed)
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                // A browser app reads why UserInfo refused its token (RFC 6750 §3).
                .expose_headers([header::WWW_AUTHENTICATE])
                .max_age(Duration::from_secs(24 * 3600)),
        )
}

/// Dynamic client registration (RFC 7591, 7592): JSON, and the database.
fn registration(app: &Arc<Clef>) -> Router<Arc<Clef>> {
    Router::new()
        .route("/register", post(registration::register))
        .route(
            "/register/{client_id}",
            get(registration::read)
                .put(registration::replace)
                .delete(registration::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error::fail_fast_json,
        ))
        .method_not_allowed_fallback(json_method_not_allowed)
}

/// The pages people see: while the database is found down, each answers 503
/// at once (`error::fail_fast_page`); the few that only show a form too,
/// since what follows them would fail.
fn pages(app: &Arc<Clef>) -> Router<Arc<Clef>> {
    Router::new()
        .route("/", get(login::home))
        .route(
            "/authorize",
            get(oidc::authorize).post(oidc::authorize_posted),
        )
        .route("/login", get(login::page).post(login::submit))
        .route("/consentement", get(consent::page).post(consent::decide))
        .route("/logout", get(logout::end_session).post(logout::submit))
        .route("/activation", get(login::activation))
        .route("/continuer", get(login::resume).post(login::go_on))
        .route(
            "/premiere-connexion",
            get(activation::first_connection_form).post(activation::first_connection),
        )
        .route("/compte-non-confirme", get(activation::unconfirmed_page))
        .route(
            "/compte-non-confirme/renvoyer",
            post(activation::unconfirmed_resend),
        )
        .route(
            "/compte-non-confirme/corriger",
            post(activation::unconfirmed_correct),
        )
        .route(
            "/confirmation",
            get(activation::confirm_form).post(activation::confirm),
        )
        .route("/confirmation/faite", get(activation::confirmed))
        .route(
            "/identifiant-oublie",
            get(recovery::identifier_form).post(recovery::identifier_submit),
        )
        .route("/identifiant-oublie/envoye", get(recovery::identifier_sent))
        .route(
            "/mot-de-passe-oublie",
            get(recovery::password_form).post(recovery::password_identifier),
        )
        .route(
            "/mot-de-passe-oublie/envoyer",
            post(recovery::password_request),
        )
        .route(
            "/mot-de-passe-oublie/code",
            get(recovery::password_code_form).post(recovery::password_code),
        )
        .route(
            "/mot-de-passe-oublie/demande",
            get(recovery::password_requested),
        )
        .route(
            "/mot-de-passe-oublie/modifier",
            get(recovery::reset_form).post(recovery::reset_submit),
        )
        .route("/compte", get(account::page))
        .route("/compte/renvoyer", post(account::resend))
        .route("/compte/mot-de-passe", post(account::change_password))
        .route("/compte/adresse", post(account::change_email))
        .route(
            "/compte/deconnexion-partout",
            post(account::sign_out_everywhere_else),
        )
        .route(
            "/compte/applications/retirer",
            post(account::withdraw_consent),
        )
        .route(
            "/compte/enfants/applications/retirer",
            post(account::withdraw_child_consent),
        )
        .route(
            "/compte/regroupement",
            get(grouping::form).post(grouping::propose),
        )
        .route("/compte/regroupement/valider", post(grouping::confirm))
        .route("/compte/regroupement/effectue", get(grouping::grouped))
        .route("/etablissement", get(backoffice::home))
        .route("/etablissement/{uai}", get(backoffice::establishment))
        .route(
            "/etablissement/{uai}/coordonnees",
            get(backoffice::details_form).post(backoffice::save_details),
        )
        .route(
            "/etablissement/{uai}/comptes",
            get(backoffice::accounts).post(backoffice::search_accounts),
        )
        .route("/etablissement/{uai}/compte/{id}", get(backoffice::account))
        .route(
            "/etablissement/{uai}/compte/{id}/action",
            post(backoffice::act),
        )
        .route(
            "/etablissement/{uai}/compte/{id}/fait",
            get(backoffice::action_done),
        )
        .route(
            "/etablissement/{uai}/courriers",
            get(backoffice::letters).post(backoffice::letters_confirmed),
        )
        .route(
            "/etablissement/{uai}/import",
            get(backoffice::import_form)
                .post(backoffice::import_preview)
                .layer(DefaultBodyLimit::max(crate::provisioning::import::MAX_FILE)),
        )
        .route(
            "/etablissement/{uai}/import/appliquer",
            post(backoffice::import_apply),
        )
        .route(
            "/etablissement/{uai}/import/suivi/{job}",
            get(backoffice::import_progress),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error::fail_fast_page,
        ))
        .method_not_allowed_fallback(page_method_not_allowed)
}

pub fn router(app: Arc<Clef>) -> Router {
    let mut router = Router::new()
        .merge(cross_origin(&app))
        .merge(registration(&app))
        .merge(pages(&app))
        .route("/langue", get(locale::switch))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    // Moved to a listener of its own when one is configured.
    if app.config.metrics_listen.is_none() {
        router = router.route("/metrics", get(observe::metrics));
    }
    router
        .fallback(not_found)
        // One layer holding the whole stack: axum boxes each route at every
        // `layer` call and clones the boxes on every request, so a dozen calls
        // cost a dozen allocations per request (measured on /jwks.json).
        // Outermost first.
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_request_with_state(
                    app.clone(),
                    observe::sane_request_id,
                ))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with({
                            let app = app.clone();
                            move |request: &axum::extract::Request| observe::span(&app, request)
                        })
                        // A 503 is told where its cause is known (a dependency
                        // down: `log_internal_errors`, or once by the breaker;
                        // readiness: when it changes; the hashing queue full:
                        // counted), not again as an error.
                        .on_failure(
                            |failure: tower_http::classify::ServerErrorsFailureClass,
                             latency: Duration,
                             _: &tracing::Span| {
                                use tower_http::classify::ServerErrorsFailureClass::StatusCode as Status;
                                if !matches!(failure, Status(StatusCode::SERVICE_UNAVAILABLE)) {
                                    let latency_ms = latency.as_millis() as u64;
                                    tracing::error!(%failure, latency_ms, "response failed");
                                }
                            },
                        ),
                )
                // Outside the timeout, so a request cut off at 408 is counted as one.
                .layer(axum::middleware::from_fn_with_state(
                    app.clone(),
                    observe::record,
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(PAGE_POLICY),
                ))
                // Nothing is kept by a browser or a proxy unless its route says so
                // (discovery, JWKS, a theme's files): pages quote people's data,
                // redirects carry codes and request ids.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                // Under https, browsers keep to https for a year (RFC 6797),
                // this host only: the academy's other hosts are not Clef's call.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::STRICT_TRANSPORT_SECURITY,
                    {
                        let hsts = app
                            .config
                            .secure_cookies()
                            .then(|| HeaderValue::from_static("max-age=31536000"));
                        move |_: &Response| hsts.clone()
                    },
                ))
                // The answer of a request the layers below cut off (408, 413).
                .layer(axum::middleware::from_fn(error::explain_cut_requests))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(app.config.request_timeout),
                ))
                .layer(DefaultBodyLimit::max(MAX_BODY))
                .layer(axum::middleware::from_fn_with_state(
                    app.clone(),
                    error::log_internal_errors,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    app.clone(),
                    locale::settle,
                )),
        )
        .with_state(app)
}

/// How long `/readyz` waits for each dependency: a load balancer must learn
/// within a second that this instance cannot serve.
const READY_TIMEOUT: Duration = Duration::from_millis(800);

async fn readyz(State(app): AppState) -> Response {
    let db = async {
        sqlx::query("SELECT 1").execute(&app.db).await?;
        Ok(())
    };
    let (db, store) = tokio::join!(ready_within(db), ready_within(app.store.ping()));
    // Told when it changes, not at every probe of an outage (one every few
    // seconds per pod).
    let ready = db.is_ok() && store.is_ok();
    let was_ready = app
        .was_ready
        .swap(ready, std::sync::atomic::Ordering::Relaxed);
    match (db, store) {
        (Ok(_), Ok(())) => {
            if !was_ready {
                tracing::info!("ready again");
            }
            "ready".into_response()
        }
        (db, store) => {
            if was_ready {
                // Each cause on one line, as operators read it (no Debug, and
                // no backtrace that RUST_BACKTRACE would add to it).
                let cause = |r: anyhow::Result<()>| r.err().map(|e| format!("{e:#}"));
                let (db, store) = (cause(db), cause(store));
                tracing::warn!(db, store, "not ready");
            }
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

async fn ready_within(
    check: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::time::timeout(READY_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {READY_TIMEOUT:?}")))
}

async fn not_found() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Page introuvable",
        "Cette page n'existe pas.",
        None,
    )
}

/// A page asked with a method it does not answer, e.g. the address a form
/// posted to, reloaded or bookmarked (axum adds `Allow`).
async fn page_method_not_allowed() -> Response {
    pages::message(
        StatusCode::METHOD_NOT_ALLOWED,
        "Page non disponible",
        "Cette adresse ne s'ouvre pas directement : revenez à la page précédente, ou à l'accueil.",
        None,
    )
}

/// An endpoint of the protocol asked with a method it does not answer.
async fn json_method_not_allowed() -> Response {
    let error = crate::oidc::OAuthError::invalid_request("this method is not allowed here");
    let mut response = error::oauth_json(&error);
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Serves `/metrics` alone on `listener` (`metrics_listen`) until `shutdown`
/// resolves; anything else is 404.
pub async fn serve_metrics(
    app: Arc<Clef>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = server::Limits::from_config(&app.config);
    let router = Router::new()
        .route("/metrics", get(observe::metrics))
        .with_state(app);
    server::run(router, listener, limits, shutdown).await
}

/// Serves until `shutdown` resolves, then lets requests in flight finish; see
/// `server` for the limits that keep slow clients from taking Clef down.
pub async fn serve(
    app: Arc<Clef>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = server::Limits::from_config(&app.config);
    let background = app.background.clone();
    server::run(router(app), listener, limits, shutdown).await?;
    // Imports under way finish (their transaction commits or rolls back
    // whole) within the same bound as the requests; past it they are cut,
    // and their page says so (`backoffice::import_progress`).
    background.close();
    if tokio::time::timeout(limits.drain(), background.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            tasks = background.len(),
            "background work still running after the drain; stopping it"
        );
    }
    Ok(())
}
