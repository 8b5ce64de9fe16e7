//! Extractors for strictly decoded parameters. They never reject on their own:
//! each handler decides whether a bad parameter gets a page or a JSON error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};

use crate::domain::{FieldError, Params, Problem};

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
pub struct Form(pub Result<Params, FieldError>);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
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
            return Ok(Self(Err(FieldError::new("Content-Type", Problem::Invalid))));
        }
        match Bytes::from_request(request, state).await {
            Ok(body) => Ok(Self(Params::parse(&body))),
            Err(_) => Ok(Self(Err(FieldError::new(
                "corps de la requête",
                Problem::TooLong {
                    max: super::MAX_BODY,
                },
            )))),
        }
    }
}

/// The parameters of an endpoint that accepts GET (query) and POST (form), as
/// `/authorize` must (OIDC Core §3.1.2.1).
pub struct QueryOrForm(pub Result<Params, FieldError>);

impl<S: Send + Sync> FromRequest<S> for QueryOrForm {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.method() == Method::POST {
            let Form(params) = Form::from_request(request, state).await?;
            Ok(Self(params))
        } else {
            let (mut parts, _) = request.into_parts();
            let Query(params) = Query::from_request_parts(&mut parts, state).await?;
            Ok(Self(params))
        }
    }
}
