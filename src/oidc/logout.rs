//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the end-session
//! request, the `id_token_hint` check, where the browser goes afterwards — and
//! `end_session`, the one place a browser's session ends.

use serde_json::{Map, Value};

use super::clients::{self, Client};
use super::session::{self, Session};
use super::{backchannel, refresh};
use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::domain::{FieldError, Params, Problem, RedirectUri};

/// A logout request as a relying party (or Clef's own pages) sends it,
/// parsed once. `ui_locales` and `logout_hint` are accepted and ignored
/// (RP-Initiated Logout 1.0 §2 makes both optional for the OP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndSessionRequest {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl EndSessionRequest {
    const MAX_CLIENT_ID: usize = 256;
    const MAX_STATE: usize = 2048;

    pub fn parse(params: &Params) -> Result<Self, FieldError> {
        let bounded = |name: &'static str, max: usize| match params.get(name) {
            Some(value) if value.chars().count() > max => {
                Err(FieldError::new(name, Problem::TooLong { max }))
            }
            value => Ok(value.map(str::to_owned)),
        };
        Ok(Self {
            id_token_hint: bounded("id_token_hint", Params::MAX_TOKEN)?,
            client_id: bounded("client_id", Self::MAX_CLIENT_ID)?,
            post_logout_redirect_uri: bounded("post_logout_redirect_uri", RedirectUri::MAX)?,
            state: bounded("state", Self::MAX_STATE)?,
        })
    }
}

/// What an `id_token_hint` says, once Clef has checked that it signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The client the ID token was issued to (its `aud`, or `azp`).
    pub client_id: String,
    pub subject: String,
    pub sid: Option<String>,
}

impl IdTokenHint {
    /// §2: the OP must have issued the hint. Its signature (one of Clef's keys)
    /// and `iss` are checked; its expiry is not — the hint of a session long
    /// idle is exactly the one a relying party has in hand.
    pub fn verify(app: &Clef, raw: &str) -> Option<Self> {
        let claims = app.keys.verify(raw).ok()?;
        Self::from_claims(&claims, app.config.issuer_str())
    }

    fn from_claims(claims: &Map<String, Value>, issuer: &str) -> Option<Self> {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return None;
        }
        // An ID token, not another JWT Clef signed for the client: every ID
        // token of Clef's carries `auth_time`, a logout token (`events`) and
        // a signed UserInfo response none.
        if claims.get("auth_time").and_then(Value::as_i64).is_none()
            || claims.contains_key("events")
        {
            return None;
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        // OIDC Core §2: `aud` is one string or an array; with several
        // audiences, `azp` names the client the token was for.
        let client_id = match claims.get("aud")? {
            Value::String(aud) => aud.clone(),
            Value::Array(auds) => {
                let auds: Vec<&str> = auds.iter().filter_map(Value::as_str).collect();
                match (auds.as_slice(), text("azp")) {
                    ([only], None) => (*only).to_owned(),
                    (_, Some(azp)) if auds.contains(&azp.as_str()) => azp,
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(Self {
            client_id,
            subject: text("sub")?,
            sid: text("sid"),
        })
    }
}

/// Where the browser goes once the session is over: a URI registered for the
/// client, with the relying party's `state` (§3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostLogoutRedirect {
    pub uri: RedirectUri,
    pub state: Option<String>,
}

impl PostLogoutRedirect {
    pub fn location(&self) -> String {
        match &self.state {
            Some(state) => self.uri.with_params(&[("state", state)]),
            None => self.uri.as_str().to_owned(),
        }
    }
}

/// A logout Clef accepts to carry out.
#[derive(Debug, Clone)]
pub struct Logout {
    /// The relying party that asked, when it is known (named on the pages).
    pub client: Option<Client>,
    pub redirect: Option<PostLogoutRedirect>,
}

/// What an end-session request leads to.
#[derive(Debug)]
pub enum EndSessionOutcome {
    /// Nobody is signed in in this browser: nothing to end, go on.
    NotSignedIn(Logout),
    /// The hint names the person signed in here: end the session now.
    Confirmed(Logout),
    /// Ask the person first: no hint, or a stale one, another account's, or
    /// one Clef did not sign (then nothing of the request is trusted).
    ConfirmationRequired(Logout),
}

/// Why a logout request is refused. Shown to the person, never redirected:
/// like an unregistered `redirect_uri` at `/authorize`.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("unknown client_id")]
    UnknownClient,
    /// §2: client_id and the hint's audience must agree.
    #[error("client_id does not match the id_token_hint")]
    ClientMismatch,
    #[error("post_logout_redirect_uri needs client_id or id_token_hint")]
    RedirectWithoutClient,
    /// §3: only an exact match of a registered URI is ever redirected to.
    #[error("post_logout_redirect_uri is not registered for this client")]
    UnregisteredRedirectUri,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LogoutError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// Judges an end-session request for the browser whose session is `session`.
pub async fn request(
    app: &Clef,
    request: &EndSessionRequest,
    session: Option<&Session>,
) -> Result<EndSessionOutcome, LogoutError> {
    let hint = match &request.id_token_hint {
        None => None,
        Some(raw) => match IdTokenHint::verify(app, raw) {
            Some(hint) => Some(hint),
            None => {
                // A hint Clef did not sign, or not for this issuer: the
                // request may be forged, so it sends the browser nowhere.
                tracing::info!("logout with an id_token_hint Clef did not issue");
                let logout = Logout {
                    client: None,
                    redirect: None,
                };
                return Ok(match session {
                    None => EndSessionOutcome::NotSignedIn(logout),
                    Some(_) => EndSessionOutcome::ConfirmationRequired(logout),
                });
            }
        },
    };
    let client_id = match (&hint, request.client_id.as_deref()) {
        (Some(hint), Some(client_id)) if hint.client_id != client_id => {
            return Err(LogoutError::ClientMismatch);
        }
        (Some(hint), _) => Some(hint.client_id.as_str()),
        (None, client_id) => client_id,
    };
    let client = match client_id {
        Some(id) => Some(
            clients::find(&app.db, id)
                .await?
                .ok_or(LogoutError::UnknownClient)?,
        ),
        None => None,
    };
    let redirect = match (&request.post_logout_redirect_uri, &client) {
        (None, _) => None,
        (Some(_), None) => return Err(LogoutError::RedirectWithoutClient),
        (Some(candidate), Some(client)) => Some(PostLogoutRedirect {
            uri: registered(client, candidate)
                .cloned()
                .ok_or(LogoutError::UnregisteredRedirectUri)?,
            state: request.state.clone(),
        }),
    };
    let names_session = session.is_some_and(|session| match (&hint, &client) {
        (Some(hint), Some(client)) => names(app, hint, client, session),
        _ => false,
    });
    let logout = Logout { client, redirect };
    Ok(match session {
        None => EndSessionOutcome::NotSignedIn(logout),
        Some(_) if names_session => EndSessionOutcome::Confirmed(logout),
        Some(_) => EndSessionOutcome::ConfirmationRequired(logout),
    })
}

/// Whether the hint is for the person signed in: the very session (`sid` as
/// this client sees it), or at least the same account (`sub` likewise).
fn names(app: &Clef, hint: &IdTokenHint, client: &Client, session: &Session) -> bool {
    hint.sid.as_deref() == Some(app.subjects.session_of(client, &session.sid).as_str())
        || hint.subject == app.subjects.of(client, &session.account_id)
}

/// The registered post-logout URI equal to `candidate`, compared as strings.
fn registered<'a>(client: &'a Client, candidate: &str) -> Option<&'a RedirectUri> {
    client
        .post_logout_redirect_uris
        .iter()
        .find(|uri| uri.as_str() == candidate)
}

/// Ends a browser's session, whatever asked for it (a relying party, « Se
/// déconnecter »). The one place a session ends: the relying parties that
/// received tokens in it are to be told from here (Back-Channel Logout 1.0).
pub async fn end_session(app: &Clef, cookie: &str) -> anyhow::Result<()> {
    let Some(session) = session::close(app, cookie).await? else {
        return Ok(());
    };
    refresh::revoke_session_bound(&app.db, &session.account_id, &session.sid, app.now()).await?;
    app.access_tokens
        .revoke_session(&session.sid, app.now_ms())
        .await?;
    tracing::info!(sid = %session.sid, account = %session.account_id, "session ended");
    backchannel::notify(app, &session.sid, &session.account_id).await
}

/// Ends every session of the account opened before its session epoch
/// `epoch`, but the one kept (a password change, « se déconnecter partout »):
/// their cookies stopped working when the epoch moved on; their clients are
/// told.
pub async fn end_other_sessions(
    app: &Clef,
    account_id: &str,
    epoch: i64,
    keep: Option<&Session>,
) -> anyhow::Result<()> {
    let ended = session::end_others(app, account_id, epoch, keep.map(|s| s.sid.as_str())).await?;
    for sid in &ended {
        refresh::revoke_session_bound(&app.db, account_id, sid, app.now()).await?;
        app.access_tokens.revoke_session(sid, app.now_ms()).await?;
        backchannel::notify(app, sid, account_id).await?;
    }
    tracing::info!(account = %account_id, sessions = ended.len(), "other sessions ended");
    Ok(())
}

/// Ends every session of the account, the clients told, and revokes every
/// refresh family and access token of the account (a staff reset or
/// closure, grouping): also a family a code exchange wrote after the
/// caller's own revocation and before the sessions ended here, which that
/// exchange, having found its session still open, handed out.
pub async fn sign_out_everywhere(app: &Clef, account_id: &str) -> anyhow::Result<()> {
    let epoch = accounts::next_session_epoch(&app.db, account_id, app.now()).await?;
    signed_out_everywhere(app, account_id, epoch).await
}

/// [`sign_out_everywhere`] once the account has moved to the session epoch
/// `epoch` in the transaction that changed its password (a reset): the
/// cookies stopped working with its commit; their records end here.
pub async fn signed_out_everywhere(app: &Clef, account_id: &str, epoch: i64) -> anyhow::Result<()> {
    end_other_sessions(app, account_id, epoch, None).await?;
    refresh::revoke_all_of(&app.db, account_id, app.now()).await?;
    app.access_tokens
        .revoke_all_for(account_id, app.now_ms())
        .await?;
    Ok(())
}

/// « Se déconnecter partout »: every session of the account ends but the
/// one whose cookie value is `keep_token`. The account moves to a new
/// session epoch, so the others' cookies stop working at once.
pub async fn sign_out_everywhere_else(
    app: &Clef,
    account_id: &str,
    keep_token: &str,
) -> anyhow::Result<()> {
    let epoch = accounts::next_session_epoch(&app.db, account_id, app.now()).await?;
    signed_out_everywhere_else(app, account_id, epoch, keep_token).await
}

/// [`sign_out_everywhere_else`] once the account has moved to the session
/// epoch `epoch` (a password change, in its transaction): the session kept
/// is carried into it, the others' clients are told, and every access token
/// of the account issued until now stops working. Those of the session kept
/// too: a token records its session but the revocation is one record per
/// account, read with the token's; that session's services get new ones
/// without asking the person (a refresh, or a sign-in on the session kept).
pub async fn signed_out_everywhere_else(
    app: &Clef,
    account_id: &str,
    epoch: i64,
    keep_token: &str,
) -> anyhow::Result<()> {
    let kept = session::carry_over(app, keep_token, epoch).await?;
    end_other_sessions(app, account_id, epoch, kept.as_ref()).await?;
    // « Sur tous vos appareils »: the refresh tokens the other sessions got
    // with `offline_access` too (an ENT app on a lost phone), which their
    // end alone leaves, and which no page lists for a first-party service.
    let keep_sid = kept.as_ref().map(|s| s.sid.as_str());
    refresh::revoke_all_but_session(&app.db, account_id, keep_sid, app.now()).await?;
    // And the access tokens handed out without a refresh family, which no
    // family's revocation reaches: each would live on for its hour.
    app.access_tokens
        .revoke_all_for(account_id, app.now_ms())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://clef.example";

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_hint_names_its_client_by_aud_or_azp_and_must_be_ours() {
        let hint = |value| IdTokenHint::from_claims(&claims(value), ISSUER);
        assert_eq!(
            hint(json!({"iss": ISSUER, "aud": "ent", "sub": "s", "sid": "x", "auth_time": 1})),
            Some(IdTokenHint {
                client_id: "ent".into(),
                subject: "s".into(),
                sid: Some("x".into())
            })
        );
        assert_eq!(
            hint(json!({"iss": ISSUER, "aud": ["ent"], "sub": "s", "auth_time": 1}))
                .map(|h| h.client_id),
            Some("ent".into())
        );
        assert_eq!(
            hint(json!({"iss": ISSUER, "aud": ["a", "ent"], "azp": "ent", "sub": "s", "auth_time": 1}))
                .map(|h| h.client_id),
            Some("ent".into())
        );
        for refused in [
            json!({"iss": "https://other.example", "aud": "ent", "sub": "s"}),
            json!({"aud": "ent", "sub": "s"}),
            json!({"iss": ISSUER, "sub": "s"}),
            json!({"iss": ISSUER, "aud": "ent"}),
            json!({"iss": ISSUER, "aud": ["a", "b"], "sub": "s"}),
            json!({"iss": ISSUER, "aud": ["a", "b"], "azp": "c", "sub": "s"}),
            json!({"iss": ISSUER, "aud": 7, "sub": "s"}),
            // Not ID tokens: a logout token, a signed UserInfo response.
            json!({"iss": ISSUER, "aud": "ent", "sub": "s", "sid": "x", "iat": 1, "jti": "j",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
            json!({"iss": ISSUER, "aud": "ent", "sub": "s", "name": "Claire Martin"}),
            json!({"iss": ISSUER, "aud": "ent", "sub": "s", "auth_time": 1, "events": {}}),
        ] {
            assert_eq!(hint(refused.clone()), None, "{refused}");
        }
    }

    #[test]
    fn the_request_is_read_strictly_and_ignores_what_clef_does_not_use() {
        let params = Params::parse(
            b"id_token_hint=h&client_id=c&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=s&ui_locales=fr&logout_hint=x",
        )
        .unwrap();
        assert_eq!(
            EndSessionRequest::parse(&params).unwrap(),
            EndSessionRequest {
                id_token_hint: Some("h".into()),
                client_id: Some("c".into()),
                post_logout_redirect_uri: Some("https://rp.example/bye".into()),
                state: Some("s".into()),
            }
        );
        let long = format!("state={}", "a".repeat(EndSessionRequest::MAX_STATE + 1));
        let params = Params::parse(long.as_bytes()).unwrap();
        assert_eq!(
            EndSessionRequest::parse(&params).unwrap_err().field,
            "state"
        );
    }

    #[test]
    fn the_state_rides_on_the_registered_uri() {
        let redirect = PostLogoutRedirect {
            uri: RedirectUri::parse("https://rp.example/bye?tenant=a").unwrap(),
            state: Some("x y".into()),
        };
        assert_eq!(
            redirect.location(),
            "https://rp.example/bye?tenant=a&state=x+y"
        );
        let bare = PostLogoutRedirect {
            state: None,
            ..redirect
        };
        assert_eq!(bare.location(), "https://rp.example/bye?tenant=a");
    }
}
