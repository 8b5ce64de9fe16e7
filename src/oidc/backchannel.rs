//! Back-Channel Logout 1.0: when a session ends, every client that received
//! tokens in it and registered a `backchannel_logout_uri` gets a signed logout
//! token, POSTed in the background — with retries and bounds on deliveries
//! in flight — so the person's page never waits for a relying party.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::Semaphore;

use super::clients;
use super::outbound::Reach;
use crate::app::Clef;
use crate::clock::Clock;
use crate::keys::{KeyRing, SigningAlg};
use crate::secret::random_token;

/// The event that marks a logout token (§2.4).
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Attempts per delivery, and the wait before each retry.
const RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(4)];
/// A relying party that does not answer within this is tried again.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Requests in flight, in all and to one client: a relying party that is down
/// (each attempt waits out `TIMEOUT`) takes its own share, never the others'.
const IN_FLIGHT: usize = 64;
const IN_FLIGHT_PER_CLIENT: usize = 8;
/// Deliveries waiting for one client, beyond which a new one is dropped (and
/// said so in the log): a relying party down through a morning's logouts
/// does not make the waiting ones grow without end.
const WAITING_PER_CLIENT: usize = 1_000;
/// How long a logout token is valid after it is signed (its `exp`).
const VALIDITY: i64 = 120;

/// What posts logout tokens: an HTTP client and the bounds on requests in flight.
#[derive(Clone)]
pub struct Courier {
    /// To any address (`outbound::Reach::Anywhere`), and to public ones only.
    anywhere: reqwest::Client,
    public_only: reqwest::Client,
    in_flight: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<String, Arc<ClientSlots>>>>,
}

/// One client's bounds: requests in flight, deliveries under way.
struct ClientSlots {
    sending: Semaphore,
    under_way: Arc<Semaphore>,
}

/// A logout token to sign at each attempt: its `iat` and `exp` then say
/// when it was sent, however long it waited for its turn (§2.6: a relying
/// party refuses an expired or stale token), with a `jti` of its own.
struct Letter {
    claims: Value,
    alg: SigningAlg,
    keys: KeyRing,
    clock: Arc<dyn Clock>,
}

impl Letter {
    fn sign(&self) -> anyhow::Result<String> {
        let now = self.clock.now();
        let mut claims = self.claims.clone();
        claims["iat"] = now.into();
        claims["exp"] = (now + VALIDITY).into();
        claims["jti"] = random_token(16).into();
        self.keys.sign_with(self.alg, &claims, "logout+jwt")
    }
}

impl Courier {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            anywhere: Reach::Anywhere.http(TIMEOUT)?,
            public_only: Reach::PublicOnly.http(TIMEOUT)?,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            per_client: Arc::default(),
        })
    }

    /// Every client's bounds (a panic elsewhere leaves them usable).
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ClientSlots>>> {
        self.per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `client_id`'s bounds.
    fn client_slots(&self, client_id: &str) -> Arc<ClientSlots> {
        let mut slots = self.slots();
        Arc::clone(slots.entry(client_id.to_owned()).or_insert_with(|| {
            Arc::new(ClientSlots {
                sending: Semaphore::new(IN_FLIGHT_PER_CLIENT),
                under_way: Arc::new(Semaphore::new(WAITING_PER_CLIENT)),
            })
        }))
    }

    /// Posts `letter` to `uri` in the background, at an address the client
    /// may make Clef reach (`outbound`). A slot is held for each attempt, not
    /// through the waits between them. Whether it was taken on.
    fn deliver(&self, uri: url::Url, letter: Letter, client_id: String, reach: Reach) -> bool {
        if !reach.allows(&uri) {
            tracing::warn!(%client_id, "back-channel logout URI is not a public address: not sent");
            return false;
        }
        let client_slots = self.client_slots(&client_id);
        let Ok(place) = Arc::clone(&client_slots.under_way).try_acquire_owned() else {
            tracing::error!(%client_id, "back-channel logout dropped: too many under way for this client");
            return false;
        };
        let courier = self.clone();
        // In the request's span: its log lines carry the request's id.
        let deliver = async move {
            courier
                .post(&uri, &letter, &client_id, reach, &client_slots.sending)
                .await;
            drop((place, client_slots));
            courier.forget_idle(&client_id);
        };
        tokio::spawn(tracing::Instrument::in_current_span(deliver));
        true
    }

    /// No delivery to `client_id` under way: its bound goes (a deleted or a
    /// one-off client leaves nothing behind).
    fn forget_idle(&self, client_id: &str) {
        let mut slots = self.slots();
        if slots
            .get(client_id)
            .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            slots.remove(client_id);
        }
    }

    /// Every attempt at one delivery, until one is taken.
    async fn post(
        &self,
        uri: &url::Url,
        letter: &Letter,
        client_id: &str,
        reach: Reach,
        client_slots: &Semaphore,
    ) {
        let http = match reach {
            Reach::Anywhere => &self.anywhere,
            Reach::PublicOnly => &self.public_only,
        };
        for wait in std::iter::once(Duration::ZERO).chain(RETRIES) {
            tokio::time::sleep(wait).await;
            let (Ok(_mine), Ok(_any)) =
                (client_slots.acquire().await, self.in_flight.acquire().await)
            else {
                return;
            };
            let token = match letter.sign() {
                Ok(token) => token,
                Err(e) => {
                    tracing::error!(%client_id, error = %e, "logout token not signed");
                    return;
                }
            };
            let sent = http
                .post(uri.clone())
                .form(&[("logout_token", token.as_str())])
                .send()
                .await;
            match sent {
                // §2.8: 200 (or 204) means the relying party logged the session out.
                Ok(response) if response.status().is_success() => {
                    tracing::info!(%client_id, "back-channel logout delivered");
                    return;
                }
                Ok(response) => {
                    tracing::warn!(%client_id, status = %response.status(), "back-channel logout refused");
                }
                Err(e) => {
                    // Without the URL: a client's URL may carry a token.
                    let e = e.without_url();
                    tracing::warn!(%client_id, error = %e, "back-channel logout not delivered")
                }
            }
        }
        tracing::error!(%client_id, "back-channel logout abandoned after retries");
    }
}

/// Tells the clients that received tokens in session `sid` that it ended.
pub async fn notify(app: &Clef, sid: &str, account_id: &str) -> anyhow::Result<()> {
    let client_ids: Vec<String> =
        sqlx::query("SELECT client_id FROM session_clients WHERE sid = $1")
            .bind(sid)
            .fetch_all(&app.db)
            .await?
            .iter()
            .map(|row| row.try_get("client_id"))
            .collect::<Result<_, _>>()?;
    for client_id in client_ids {
        let Some(client) = clients::find(&app.db, &client_id).await? else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        // §2.4: no nonce; sid since the client asked for sessions (the
        // default); iat, exp and jti when sent.
        let claims = json!({
            "iss": app.config.issuer_str(),
            "sub": app.subjects.of(&client, account_id),
            "aud": client.id,
            "sid": app.subjects.session_of(&client, sid),
            "events": { EVENT: {} },
        });
        // §2.6: validated as the client validates its ID tokens, so signed alike.
        let alg =
            SigningAlg::parse(&client.id_token_signed_response_alg).unwrap_or(SigningAlg::RS256);
        let letter = Letter {
            claims,
            alg,
            keys: app.keys.clone(),
            clock: Arc::clone(&app.clock),
        };
        let reach = Reach::of(app, client.is_first_party);
        app.courier.deliver(uri, letter, client.id, reach);
    }
    Ok(())
}

/// Records, for each `(sid, client_id, at)`, that the client received tokens
/// in that session (once), in a few multi-row statements (`storage::in_prepared_sizes`).
pub async fn record_all(
    db: &mut sqlx::AnyConnection,
    records: &[(&str, &str, i64)],
) -> Result<(), sqlx::Error> {
    for run in crate::storage::in_prepared_sizes(records) {
        // Sessions opened before the registry existed are not in it: nothing to record.
        let sql = format!(
            "INSERT INTO session_clients (sid, client_id, created_at) \
             SELECT v.column1, v.column2, v.column3 FROM (VALUES {}) AS v \
             WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.sid = v.column1) \
             ON CONFLICT (sid, client_id) DO NOTHING",
            crate::storage::values_list(run.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (sid, client_id, at) in run {
            query = query.bind(*sid).bind(*client_id).bind(*at);
        }
        query.execute(&mut *db).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relying party down in the worst way (connections accepted, never
    /// answered) gets a bounded number of deliveries under way; another
    /// client's still go.
    #[tokio::test]
    async fn deliveries_under_way_to_one_client_are_bounded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: url::Url = format!("http://{}/backchannel", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_generate(dir.path(), 0).unwrap();
        let courier = Courier::new().unwrap();
        let letter = || Letter {
            claims: json!({ "aud": "rp" }),
            alg: SigningAlg::RS256,
            keys: keys.clone(),
            clock: Arc::new(crate::clock::SystemClock),
        };
        for n in 0..WAITING_PER_CLIENT {
            let taken = courier.deliver(uri.clone(), letter(), "dead".into(), Reach::Anywhere);
            assert!(taken, "delivery {n}");
        }
        assert!(
            !courier.deliver(uri.clone(), letter(), "dead".into(), Reach::Anywhere),
            "one too many for that client"
        );
        assert!(
            courier.deliver(uri, letter(), "alive".into(), Reach::Anywhere),
            "another client's goes"
        );
    }
}
