//! « Mon compte » (SPEC §3.6, profile part): identifier, address and its
//! validation, resend validation, change password, change address, last login.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, SignedIn};
use super::login::too_many_attempts;
use super::{AppState, cookies, pages};
use crate::accounts::activation::{self, ProfileError};
use crate::accounts::{Account, store};
use crate::app::Clef;

fn datetime(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:02}/{:02}/{} à {:02}:{:02} (UTC)",
            t.day(),
            u8::from(t.month()),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => String::new(),
    }
}

fn render(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let can_resend = account.pending_email.is_some()
        || (account.email.is_some() && account.email_verified_at.is_none());
    pages::form(app, jar, status, "pages/account.html", |csrf| {
        minijinja::context! {
            identifier => &account.identifier,
            name => format!("{} {}", account.given_name, account.family_name),
            email => &account.email,
            email_verified => account.email_verified_at.is_some(),
            pending_email => &account.pending_email,
            last_login => account.last_login_at.map(datetime),
            rule => activation::password_rule(app).describe(),
            can_resend, csrf, notice, error,
        }
    })
}

/// `GET /compte`.
pub async fn page(State(app): AppState, signed_in: SignedIn, jar: CookieJar) -> Response {
    render(&app, jar, &signed_in.account, None, None, StatusCode::OK)
}

async fn outcome(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    result: Result<&str, ProfileError>,
) -> Result<Response, WebError> {
    let account = store::account_by_id(&app.db, &account.id)
        .await?
        .unwrap_or_else(|| account.clone());
    match result {
        Ok(notice) => Ok(render(
            app,
            jar,
            &account,
            Some(notice),
            None,
            StatusCode::OK,
        )),
        Err(ProfileError::Invalid(message)) => Ok(render(
            app,
            jar,
            &account,
            None,
            Some(&message),
            StatusCode::BAD_REQUEST,
        )),
        Err(ProfileError::TooManyAttempts { retry_after }) => {
            let message = too_many_attempts(retry_after);
            let page = render(
                app,
                jar,
                &account,
                None,
                Some(&message),
                StatusCode::TOO_MANY_REQUESTS,
            );
            Ok(([(header::RETRY_AFTER, retry_after.to_string())], page).into_response())
        }
        Err(ProfileError::Password(e)) => Err(e.into()),
        Err(ProfileError::Internal(e)) => Err(e.into()),
    }
}

/// `POST /compte/renvoyer`.
pub async fn resend(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    jar: CookieJar,
    CheckedForm(_): CheckedForm,
) -> Result<Response, WebError> {
    let sent = activation::resend_confirmation(&app, &account, None).await?;
    let result = if sent {
        Ok(
            "Un email de validation vient d'être envoyé. Seul le lien de ce dernier mail fonctionne.",
        )
    } else {
        Err(ProfileError::Invalid(
            "Votre adresse mail est déjà validée.".into(),
        ))
    };
    outcome(&app, jar, &account, result).await
}

/// `POST /compte/mot-de-passe`.
pub async fn change_password(
    State(app): AppState,
    SignedIn {
        account,
        session_token,
    }: SignedIn,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let origin = cookies::origin(&app, &jar, address, &account.identifier);
    let result = activation::change_password(
        &app,
        &account,
        &params.secret("current_password"),
        &params.secret("new_password"),
        &params.secret("new_password_confirmation"),
        &origin,
        &session_token,
    )
    .await
    .map(|()| "Votre mot de passe a été modifié.");
    outcome(&app, jar, &account, result).await
}

/// `POST /compte/adresse`.
pub async fn change_email(
    State(app): AppState,
    SignedIn { account, .. }: SignedIn,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let origin = cookies::origin(&app, &jar, address, &account.identifier);
    let result = activation::change_email(
        &app,
        &account,
        &params.secret("current_password"),
        params.get("email").unwrap_or(""),
        params.get("email_confirmation").unwrap_or(""),
        &origin,
    )
    .await
    .map(|_| "Un mail de confirmation a été envoyé à la nouvelle adresse : elle remplacera l'actuelle dès que vous aurez cliqué sur son lien.");
    outcome(&app, jar, &account, result).await
}
