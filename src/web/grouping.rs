//! « Regrouper des comptes » (SPEC §3.8), from « Mon compte » › Enfants: the
//! other account's credentials, a confirmation listing the children on each
//! side, then the grouping.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;

use super::account::child_view;
use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, SignedIn};
use super::login::too_many_attempts;
use super::{AppState, cookies, pages};
use crate::accounts::grouping::{self, GroupingError, OtherAccount, Refusal};
use crate::accounts::{Account, AccountKind};
use crate::app::Clef;

/// The field a refusal is told at (its id on the form) and the message.
fn refusal(refusal: Refusal) -> (&'static str, &'static str) {
    match refusal {
        Refusal::WrongCredentials => ("other_identifier", "Identifiant ou mot de passe incorrect."),
        Refusal::BirthdateNeeded => (
            "birthdate",
            "Ce compte n'a pas encore été activé : retapez le mot de passe provisoire de son courrier de notification et saisissez aussi la date de naissance de l'enfant qui y est nommé.",
        ),
        Refusal::WrongBirthdate => (
            "birthdate",
            "La date de naissance ne correspond pas à celle connue de l'établissement.",
        ),
        Refusal::LetterExpired => (
            "other_identifier",
            "Ce courrier de notification a dépassé son délai d'activation : il ne permet plus de regrouper le compte. Demandez un nouveau courrier à l'établissement.",
        ),
        Refusal::NotGuardian => (
            "other_identifier",
            "Seuls les comptes de responsables peuvent être regroupés : ce compte est celui d'un élève ou d'un personnel.",
        ),
        Refusal::SameAccount => (
            "other_identifier",
            "C'est le compte avec lequel vous êtes connecté : saisissez l'identifiant de l'autre compte.",
        ),
        Refusal::Closed => (
            "other_identifier",
            "Ce compte a déjà été regroupé ou fermé : il ne peut plus l'être.",
        ),
        Refusal::PrincipalNotActive => (
            "other_identifier",
            "Seul un compte de responsable activé peut regrouper des comptes.",
        ),
        Refusal::ProposalExpired => (
            "other_identifier",
            "Cette demande de regroupement a expiré ou a déjà été validée : recommencez si besoin.",
        ),
    }
}

/// Only guardians have « Enfants »; anyone else is sent back to « Mon compte ».
fn guardians_only(account: &Account) -> Result<(), WebError> {
    if account.kind == AccountKind::Guardian {
        Ok(())
    } else {
        Err(WebError::Page {
            status: StatusCode::FORBIDDEN,
            title: "Regrouper des comptes",
            message: "Seuls les comptes de responsables peuvent regrouper des comptes.".into(),
        })
    }
}

struct Typed<'a> {
    other: &'a str,
    birthdate: &'a str,
}

fn form_page(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    typed: Typed<'_>,
    // The fields in error (their ids) and their messages.
    errors: &[(&str, &str)],
    status: StatusCode,
) -> Response {
    let errors = pages::field_errors(errors.iter().copied());
    pages::form(app, jar, status, "pages/grouping.html", |csrf| {
        minijinja::context! {
            csrf, identifier => &account.identifier, other => typed.other, birthdate => typed.birthdate,
            errors,
        }
    })
}

/// `GET /compte/regroupement`.
pub async fn form(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    jar: CookieJar,
) -> Result<Response, WebError> {
    guardians_only(&account)?;
    let typed = Typed {
        other: "",
        birthdate: "",
    };
    Ok(form_page(&app, jar, &account, typed, &[], StatusCode::OK))
}

/// `POST /compte/regroupement`: checks the other account → the confirmation.
pub async fn propose(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    guardians_only(&account)?;
    let typed = Typed {
        other: params.get("identifier").unwrap_or(""),
        birthdate: params.get("birthdate").unwrap_or(""),
    };
    let other = OtherAccount {
        identifier: typed.other.to_owned(),
        password: params.secret("password"),
        birthdate: typed.birthdate.to_owned(),
    };
    // Not a wrong password: none (a page that asked for the birth date
    // comes back without it, as password fields do); told with an empty
    // identifier at once.
    let empty: Vec<_> = [
        (
            "other_identifier",
            typed.other.trim(),
            "Le champ « identifiant du compte » est obligatoire.",
        ),
        (
            "other_password",
            params.get("password").unwrap_or(""),
            "Le champ « mot de passe du compte » est obligatoire.",
        ),
    ]
    .into_iter()
    .filter(|(_, value, _)| value.is_empty())
    .map(|(field, _, message)| (field, message))
    .collect();
    if !empty.is_empty() {
        return Ok(form_page(
            &app,
            jar,
            &account,
            typed,
            &empty,
            StatusCode::BAD_REQUEST,
        ));
    }
    let origin = cookies::origin_of(&app, &jar, address, typed.other).await?;
    match grouping::propose(&app, &account, other, &origin).await {
        Ok(Ok(proposal)) => {
            let principal_children: Vec<_> =
                proposal.principal_children.iter().map(child_view).collect();
            let other_children: Vec<_> = proposal.other_children.iter().map(child_view).collect();
            Ok(pages::form(
                &app,
                jar,
                StatusCode::OK,
                "pages/grouping_confirm.html",
                |csrf| {
                    minijinja::context! {
                        csrf, identifier => &account.identifier, other => &proposal.other_identifier,
                        proposal => &proposal.id, principal_children, other_children,
                    }
                },
            ))
        }
        Ok(Err(why)) => Ok(form_page(
            &app,
            jar,
            &account,
            typed,
            &[refusal(why)],
            StatusCode::BAD_REQUEST,
        )),
        Err(GroupingError::TooManyAttempts { retry_after }) => {
            let message = too_many_attempts(retry_after);
            let page = form_page(
                &app,
                jar,
                &account,
                typed,
                &[("other_identifier", &message)],
                StatusCode::TOO_MANY_REQUESTS,
            );
            Ok(pages::retry_after(page, retry_after))
        }
        Err(GroupingError::Password(e)) => Err(e.into()),
        Err(GroupingError::Internal(e)) => Err(e.into()),
    }
}

/// `POST /compte/regroupement/valider`.
pub async fn confirm(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    guardians_only(&account)?;
    let proposal = params.get("proposal").unwrap_or("");
    match grouping::confirm(&app, &account, proposal).await {
        // Told by a page of its own, so that a reload repeats nothing.
        Ok(Ok(_)) => Ok(cookies::tell(
            &app,
            jar,
            GROUPED.into(),
            "/compte/regroupement/effectue",
        )),
        Ok(Err(why)) => {
            let typed = Typed {
                other: "",
                birthdate: "",
            };
            Ok(form_page(
                &app,
                jar,
                &account,
                typed,
                &[refusal(why)],
                StatusCode::CONFLICT,
            ))
        }
        Err(GroupingError::TooManyAttempts { .. }) => {
            Err(anyhow::anyhow!("no attempt is counted at confirmation").into())
        }
        Err(GroupingError::Password(e)) => Err(e.into()),
        Err(GroupingError::Internal(e)) => Err(e.into()),
    }
}

/// What the page after a grouping is told (`cookies::tell`).
const GROUPED: &str = "regroupement";

/// `GET /compte/regroupement/effectue`: « Confirmation de regroupement de
/// comptes », once, after the grouping; « Mon compte »'s children otherwise.
pub async fn grouped(State(app): AppState, SignedIn { .. }: SignedIn, jar: CookieJar) -> Response {
    let (jar, told) = cookies::told(&app, jar);
    if told.as_deref() != Some(GROUPED) {
        let children = axum::response::Redirect::to("/compte#enfants");
        return axum::response::IntoResponse::into_response(children);
    }
    let page = pages::message_with_link(
        StatusCode::OK,
        "Confirmation de regroupement de comptes",
        "L'opération de regroupement des comptes a été effectuée avec succès. Seul le compte avec lequel vous êtes connecté reste disponible.",
        None,
        Some((
            "/compte#enfants",
            "Voir les enfants rattachés à votre compte",
        )),
    );
    axum::response::IntoResponse::into_response((jar, page))
}
