//! The recovery pages (SPEC §3.4, §3.5, §3.7): « identifiant oublié ? » and
//! « mot de passe oublié ? » from the login page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, Query};
use super::{AppState, cookies, pages};
use crate::accounts::activation::password_rule;
use crate::accounts::recovery::{
    self, Channel, Channels, CodeOutcome, NewPassword, RecoveryError, ResetError, Unrecoverable,
};
use crate::accounts::throttle::french_wait;
use crate::accounts::tokens::TokenProblem;
use crate::app::Clef;
use crate::domain::{EmailAddress, FieldError, Identifier, Problem};

fn unrecoverable(why: Unrecoverable) -> &'static str {
    match why {
        Unrecoverable::UnknownIdentifier => {
            "Cet identifiant n'est pas reconnu. Veuillez réessayer."
        }
        // The seeds' words, for an identifier known without a way to reach
        // its owner and for an address no account confirmed alike.
        Unrecoverable::PartiallyKnown | Unrecoverable::UnknownAddress => {
            "Les informations associées à votre compte ne permettent pas de répondre à votre demande. Merci de contacter votre établissement."
        }
    }
}

/// Too many requests from one client address, or an SMS the gateway did not take.
fn recovery_error(e: RecoveryError) -> Result<Response, WebError> {
    match e {
        RecoveryError::TooManyRequests { retry_after } => {
            let message = format!(
                "Trop de demandes ont été faites depuis votre connexion. Patientez {} avant de réessayer.",
                french_wait(retry_after)
            );
            let page = pages::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Trop de demandes",
                &message,
                None,
            );
            Ok(pages::retry_after(page, retry_after))
        }
        RecoveryError::Internal(e) => Err(e.into()),
    }
}

// --- Identifiant oublié

fn identifier_page(
    app: &Clef,
    jar: CookieJar,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    done: bool,
) -> Response {
    pages::form(app, jar, status, "pages/forgot_identifier.html", |csrf| {
        minijinja::context! { csrf, email, error, done }
    })
}

/// `GET /identifiant-oublie`.
pub async fn identifier_form(State(app): AppState, jar: CookieJar) -> Response {
    identifier_page(&app, jar, StatusCode::OK, "", None, false)
}

/// `POST /identifiant-oublie`.
pub async fn identifier_submit(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let typed = params.get("email").unwrap_or("");
    let email = match EmailAddress::parse(typed) {
        Ok(email) => email,
        Err(e) => {
            let message = e.to_string();
            return Ok(identifier_page(
                &app,
                jar,
                StatusCode::BAD_REQUEST,
                typed,
                Some(&message),
                false,
            ));
        }
    };
    let proofs = cookies::device_proofs(&app, &jar);
    match recovery::remind_identifier(&app, &email, address, &proofs).await {
        // Told by a page of its own: a reload does not send the mail again.
        Ok(Ok(())) => Ok(Redirect::to("/identifiant-oublie/envoye").into_response()),
        Ok(Err(why)) => Ok(identifier_page(
            &app,
            jar,
            StatusCode::OK,
            typed,
            Some(unrecoverable(why)),
            false,
        )),
        Err(e) => recovery_error(e),
    }
}

/// `GET /identifiant-oublie/envoye`: the request is taken (the same words
/// whatever the address).
pub async fn identifier_sent(State(app): AppState, jar: CookieJar) -> Response {
    identifier_page(&app, jar, StatusCode::OK, "", None, true)
}

// --- Mot de passe oublié

fn password_page(
    app: &Clef,
    jar: CookieJar,
    status: StatusCode,
    identifier: &str,
    error: Option<&str>,
) -> Response {
    pages::form(app, jar, status, "pages/forgot_password.html", |csrf| {
        minijinja::context! { csrf, identifier, error }
    })
}

/// `GET /mot-de-passe-oublie`.
pub async fn password_form(State(app): AppState, jar: CookieJar) -> Response {
    password_page(&app, jar, StatusCode::OK, "", None)
}

fn channel_page(
    app: &Clef,
    jar: CookieJar,
    identifier: &Identifier,
    channels: &Channels,
) -> Response {
    pages::form(
        app,
        jar,
        StatusCode::OK,
        "pages/recovery_channel.html",
        |csrf| {
            minijinja::context! {
                csrf, identifier => identifier.as_str(), email => channels.email, phone => &channels.phone,
            }
        },
    )
}

/// `POST /mot-de-passe-oublie`: the identifier → the choice of channel.
pub async fn password_identifier(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let raw = params.get("identifier").unwrap_or("");
    let identifier = match Identifier::parse(raw) {
        Ok(identifier) => identifier,
        Err(e) => {
            let message = e.to_string();
            let status = StatusCode::BAD_REQUEST;
            return Ok(password_page(&app, jar, status, raw, Some(&message)));
        }
    };
    match recovery::channels(&app, &identifier, address).await {
        Ok(Ok(channels)) => Ok(channel_page(&app, jar, &identifier, &channels)),
        Ok(Err(why)) => Ok(password_page(
            &app,
            jar,
            StatusCode::OK,
            raw,
            Some(unrecoverable(why)),
        )),
        Err(e) => recovery_error(e),
    }
}

/// A challenge or a request's reference as Clef makes them (`random_token`,
/// digits): the only ones written back into a page's address.
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn code_page(
    app: &Clef,
    jar: CookieJar,
    status: StatusCode,
    challenge: &str,
    reference: &str,
    error: Option<&str>,
) -> Response {
    // The language link shows this very step again (the code already sent),
    // not the start of the request.
    let lang_back = (plain(challenge) && plain(reference))
        .then(|| format!("/mot-de-passe-oublie/code?challenge={challenge}&reference={reference}"));
    pages::form(app, jar, status, "pages/recovery_code.html", |csrf| {
        minijinja::context! { csrf, challenge, reference, error, lang_back }
    })
}

/// `GET /mot-de-passe-oublie/code?challenge=…&reference=…`: the code form
/// again, in the language just chosen (whether the code still works is the
/// form's answer to tell).
pub async fn password_code_form(
    State(app): AppState,
    jar: CookieJar,
    Query(params): Query,
) -> Response {
    let step = params.ok();
    let field = |name| step.as_ref().and_then(|p| p.get(name));
    match (field("challenge"), field("reference")) {
        (Some(challenge), Some(reference)) if plain(challenge) && plain(reference) => {
            code_page(&app, jar, StatusCode::OK, challenge, reference, None)
        }
        _ => Redirect::to("/mot-de-passe-oublie").into_response(),
    }
}

fn requested_page(reference: &str) -> Response {
    let lang_back =
        plain(reference).then(|| format!("/mot-de-passe-oublie/demande?reference={reference}"));
    let mut page = pages::render(
        StatusCode::OK,
        "pages/recovery_requested.html",
        minijinja::context! { reference, lang_back },
    );
    pages::no_store(&mut page);
    page
}

/// `GET /mot-de-passe-oublie/demande?reference=…`: a request taken by mail,
/// its number shown again in the language just chosen.
pub async fn password_requested(Query(params): Query) -> Response {
    match params.ok().as_ref().and_then(|p| p.get("reference")) {
        Some(reference)
            if !reference.is_empty()
                && reference.len() <= 20
                && reference.bytes().all(|b| b.is_ascii_digit()) =>
        {
            requested_page(reference)
        }
        _ => Redirect::to("/mot-de-passe-oublie").into_response(),
    }
}

/// `POST /mot-de-passe-oublie/envoyer`: identifier + channel → the request is
/// taken (its reference shown), with the code form for SMS.
pub async fn password_request(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let raw = params.get("identifier").unwrap_or("");
    let identifier = match Identifier::parse(raw) {
        Ok(identifier) => identifier,
        Err(e) => {
            let message = e.to_string();
            let status = StatusCode::BAD_REQUEST;
            return Ok(password_page(&app, jar, status, raw, Some(&message)));
        }
    };
    let Some(channel) = params.get("channel").and_then(Channel::parse) else {
        return Ok(password_page(
            &app,
            jar,
            StatusCode::BAD_REQUEST,
            raw,
            Some("Choisissez l'envoi par mail ou par SMS."),
        ));
    };
    let origin = cookies::origin_of(&app, &jar, address, identifier.as_str()).await?;
    match recovery::request_reset(&app, &identifier, channel, &origin).await {
        // Taken: the next step is a page of its own, so that a reload does
        // not make a new request (and void the link just mailed).
        Ok(Ok(requested)) => {
            let reference = requested.reference.as_str();
            Ok(Redirect::to(&match requested.challenge {
                Some(challenge) => {
                    format!("/mot-de-passe-oublie/code?challenge={challenge}&reference={reference}")
                }
                None => format!("/mot-de-passe-oublie/demande?reference={reference}"),
            })
            .into_response())
        }
        Ok(Err(why)) => Ok(password_page(
            &app,
            jar,
            StatusCode::OK,
            raw,
            Some(unrecoverable(why)),
        )),
        Err(e) => recovery_error(e),
    }
}

fn start_again(status: StatusCode, title: &'static str, message: &'static str) -> Response {
    pages::message_with_link(
        status,
        title,
        message,
        None,
        Some(("/mot-de-passe-oublie", "Faire une nouvelle demande")),
    )
}

/// `POST /mot-de-passe-oublie/code`: the SMS code → the new-password form.
pub async fn password_code(
    State(app): AppState,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let challenge = params.get("challenge").unwrap_or("");
    let reference = params.get("reference").unwrap_or("");
    let code = params.get("code").unwrap_or("");
    let outcome = match recovery::verify_code(&app, challenge, code).await {
        Ok(outcome) => outcome,
        Err(e) => return recovery_error(e),
    };
    Ok(match outcome {
        CodeOutcome::Verified { token } => reset_page(&app, jar, StatusCode::OK, &token, "", &[]),
        CodeOutcome::Wrong { remaining } => {
            let message = if remaining == 1 {
                "Ce code n'est pas le bon. Il vous reste 1 essai."
            } else {
                "Ce code n'est pas le bon. Il vous reste 2 essais."
            };
            code_page(
                &app,
                jar,
                StatusCode::BAD_REQUEST,
                challenge,
                reference,
                Some(message),
            )
        }
        CodeOutcome::Malformed => code_page(
            &app,
            jar,
            StatusCode::BAD_REQUEST,
            challenge,
            reference,
            Some("Le code reçu par SMS compte 6 chiffres."),
        ),
        CodeOutcome::Spent => start_again(
            StatusCode::BAD_REQUEST,
            "Code refusé",
            "Trois codes erronés ont été saisis : ce code ne fonctionne plus. Faites une nouvelle demande pour en recevoir un autre.",
        ),
        CodeOutcome::Expired => start_again(
            StatusCode::GONE,
            "Code expiré",
            "Ce code a expiré ou ne fonctionne plus (un autre code a servi, ou le mot de passe a changé). Faites une nouvelle demande.",
        ),
    })
}

// --- Modifiez votre mot de passe

fn reset_page(
    app: &Clef,
    jar: CookieJar,
    status: StatusCode,
    token: &str,
    identifier: &str,
    // The fields in error (their ids) and their messages.
    errors: &[(&str, &str)],
) -> Response {
    let errors = pages::field_errors(errors.iter().copied());
    let rule = password_rule(app);
    // The language link shows this form again, the request still good (an
    // SMS code is spent once verified: the start of the flow would ask for a
    // new one).
    let lang_back = plain(token).then(|| format!("/mot-de-passe-oublie/modifier?jeton={token}"));
    pages::form(app, jar, status, "pages/reset_password.html", |csrf| {
        minijinja::context! {
            csrf, token, identifier, errors, rule => rule.describe(), lang_back,
        }
    })
}

fn link_problem(problem: TokenProblem) -> Response {
    let message = match problem {
        TokenProblem::Unknown => {
            "Ce lien n'est pas valide. Vérifiez que vous avez copié l'adresse complète du mail."
        }
        TokenProblem::Used => {
            "Ce lien a déjà servi, ou une demande plus récente l'a remplacé : utilisez le lien du dernier mail reçu, ou faites une nouvelle demande."
        }
        TokenProblem::Expired => "Ce lien a expiré. Faites une nouvelle demande.",
    };
    start_again(StatusCode::GONE, "Lien invalide", message)
}

/// The reset form posted with a request that no longer works: the form
/// came from a mail's link or from an SMS code, so neither is named.
fn form_problem(problem: TokenProblem) -> Response {
    let message = match problem {
        TokenProblem::Unknown | TokenProblem::Used => {
            "Cette demande a déjà servi, ou une demande plus récente l'a remplacée : si votre mot de passe n'a pas été modifié, faites une nouvelle demande."
        }
        TokenProblem::Expired => "Cette demande a expiré. Faites une nouvelle demande.",
    };
    start_again(StatusCode::GONE, "Demande plus valable", message)
}

/// `GET /mot-de-passe-oublie/modifier?jeton=…` (the link of the mail).
pub async fn reset_form(
    State(app): AppState,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    let token = params.get("jeton").unwrap_or("");
    Ok(match recovery::check_link(&app, token).await? {
        Ok(()) => reset_page(&app, jar, StatusCode::OK, token, "", &[]),
        Err(problem) => link_problem(problem),
    })
}

/// `POST /mot-de-passe-oublie/modifier`.
pub async fn reset_submit(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let token = params.get("jeton").unwrap_or("");
    let identifier = params.get("identifier").unwrap_or("");
    let form = NewPassword {
        identifier: identifier.to_owned(),
        password: params.secret("password"),
        confirmation: params.secret("password_confirmation"),
    };
    let origin = cookies::origin_of(&app, &jar, address, identifier).await?;
    let again = |jar, status, errors: &[(&str, &str)]| {
        reset_page(&app, jar, status, token, identifier, errors)
    };
    match recovery::reset_password(&app, token, form, &origin).await {
        Ok(before) => {
            // The browser that set the new password is remembered for it: a
            // delay someone else keeps on the identifier does not hold its
            // owner back at the next sign-in.
            let jar = match crate::accounts::store::account_by_id(&app.db, &before.id).await? {
                Some(after) => cookies::remember_device_anew(&app, jar, &after, &before),
                None => jar,
            };
            let page = pages::message_with_link(
                StatusCode::OK,
                "Mot de passe modifié",
                "Votre mot de passe a été modifié avec succès.",
                None,
                Some(("/login", "Se connecter")),
            );
            // Every session of the account ended, this browser's included.
            Ok((cookies::without_session(&app, jar), page).into_response())
        }
        Err(ResetError::Link(problem)) => Ok(form_problem(problem)),
        Err(ResetError::WrongIdentifier) if identifier.trim().is_empty() => {
            let required = FieldError::new("identifiant", Problem::Empty).to_string();
            Ok(again(
                jar,
                StatusCode::BAD_REQUEST,
                &[("identifier", &required)],
            ))
        }
        Err(ResetError::WrongIdentifier) => Ok(again(
            jar,
            StatusCode::BAD_REQUEST,
            &[(
                "identifier",
                "Cet identifiant n'est pas celui du compte concerné par cette demande.",
            )],
        )),
        Err(ResetError::Invalid(problems)) => {
            let errors: Vec<_> = problems.iter().map(|(f, m)| (*f, m.as_str())).collect();
            Ok(again(jar, StatusCode::BAD_REQUEST, &errors))
        }
        Err(ResetError::Password(e)) => Err(e.into()),
        Err(ResetError::Internal(e)) => Err(e.into()),
    }
}
