//! What the protocol hands out, each kind in its typed store: authorization
//! codes (single-use, a replay revokes what the code issued), access tokens,
//! and the authorization requests parked while a person logs in. Codes and
//! tokens are random; the stores keep them only under their SHA-256.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Scopes;
use super::authorize::AuthorizationRequest;
use crate::secret::{digest, random_token};
use crate::storage::{Kind, ShortLived};

/// The longest a code may live (`code_ttl`; RFC 6749 §4.1.2).
pub const MAX_CODE_TTL: i64 = 600;

/// What an authorization code stands for until it is exchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub account_id: String,
    pub scopes: Scopes,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub sid: String,
    pub amr: Vec<String>,
    /// When the code was issued (0 for a code stored before this field).
    #[serde(default)]
    pub issued_at: i64,
    /// The same in milliseconds (0 for a code stored before this field:
    /// see [`issued_ms`]).
    #[serde(default)]
    pub issued_ms: i64,
    pub expires_at: i64,
    /// When the session the code was issued in ends (`None` for a code
    /// stored before this field): a refresh family without
    /// `offline_access` ends with it.
    #[serde(default)]
    pub session_expires_at: Option<i64>,
}

/// When a grant was issued, in milliseconds: `ms`, or for a grant stored
/// before its milliseconds were, the start of its second `at`.
pub fn issued_ms(ms: i64, at: i64) -> i64 {
    match ms {
        0 => at * 1000,
        ms => ms,
    }
}

/// A revocation's time in milliseconds: as written, or `plus` milliseconds
/// into the second an earlier version wrote (milliseconds are past 10^11
/// since 1973).
fn in_ms(at: i64, plus: i64) -> i64 {
    match at < 100_000_000_000 {
        true => at * 1000 + plus,
        false => at,
    }
}

/// A code in the store: issued and waiting for its exchange, then spent,
/// its grant kept as long as a token it issued may live, so that a replay is
/// recognised — and judged as the exchange was: only the code's client, with
/// its redirect URI and verifier, replays it. `Redeemed`: spent by an
/// earlier version, which kept no grant. Untagged, so a code stored as a
/// bare grant (before this type) still reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum CodeState {
    Issued(Box<CodeGrant>),
    Spent { spent: Box<CodeGrant> },
    Redeemed,
}

/// A code as presented at the token endpoint, before anything is taken.
#[derive(Debug)]
pub enum PresentedCode {
    /// Waiting for its exchange.
    Issued(CodeGrant),
    /// Exchanged before: its grant, unless an earlier version spent it.
    Spent(Option<CodeGrant>),
    /// Never issued, or expired long ago.
    Unknown,
}

/// What an access token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessGrant {
    pub client_id: String,
    /// The person the token acts for; `None` for a service's own token
    /// (client_credentials), which carries `service_scopes` instead.
    pub account_id: Option<String>,
    pub scopes: Scopes,
    #[serde(default)]
    pub service_scopes: Vec<String>,
    pub sid: Option<String>,
    pub expires_at: i64,
    /// The refresh-token family issued alongside: revoking it ends this token too.
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub issued_at: i64,
    /// `issued_at` to the millisecond (0 in a grant stored by an earlier
    /// version): a revocation of all the account's tokens in the same second
    /// tells the tokens before it from those after it.
    #[serde(default)]
    pub issued_ms: i64,
}

/// The stored name of a code or token: its digest, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantId(String);

impl GrantId {
    fn of(secret: &str) -> Self {
        Self(digest(secret))
    }
}

/// What a redeemed code issued, to revoke on replay: the access token, and
/// the refresh family started with it (named here, not only in the access
/// token's grant, which a revocation or its expiry removes first).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StoredCodeTokens")]
pub struct CodeTokens {
    pub access: GrantId,
    pub family: Option<String>,
}

/// [`CodeTokens`] as stored, also as stored before it: the bare access token.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredCodeTokens {
    Both {
        access: GrantId,
        family: Option<String>,
    },
    Access(GrantId),
}

impl From<StoredCodeTokens> for CodeTokens {
    fn from(stored: StoredCodeTokens) -> Self {
        match stored {
            StoredCodeTokens::Both { access, family } => Self { access, family },
            StoredCodeTokens::Access(access) => Self {
                access,
                family: None,
            },
        }
    }
}

/// Why a code cannot be exchanged.
#[derive(Debug)]
pub enum Redeem {
    /// Never issued, or expired long ago.
    Unknown,
    /// RFC 6749 §4.1.2: used before. What it issued must be revoked.
    Replayed {
        issued: Option<CodeTokens>,
    },
    Store(anyhow::Error),
}

impl From<anyhow::Error> for Redeem {
    fn from(e: anyhow::Error) -> Self {
        Self::Store(e)
    }
}

#[derive(Clone)]
pub struct Codes {
    /// Each code's state; its redemption is one atomic replacement, so of
    /// concurrent exchanges only the first finds it issued.
    grants: Kind<CodeState>,
    /// What a code issued, to revoke on replay.
    issued: Kind<CodeTokens>,
    /// Set by a replay, so an exchange racing it revokes what it just issued.
    revoked: Kind<bool>,
    code_ttl: i64,
    /// How long replays are recognised: as long as a token it issued lives.
    memory: Duration,
}

impl Codes {
    pub fn new(store: &ShortLived, code_ttl: i64, access_token_ttl: i64) -> Self {
        Self {
            grants: Kind::new(store, "code"),
            issued: Kind::new(store, "code-tokens"),
            revoked: Kind::new(store, "code-revoked"),
            code_ttl,
            memory: Duration::from_secs((access_token_ttl + code_ttl).max(1) as u64),
        }
    }

    /// Stores the grant; returns the code for the client.
    pub async fn issue(&self, grant: CodeGrant) -> anyhow::Result<String> {
        let code = random_token(32);
        // Kept a little longer than the code lives, so an expired code is told
        // apart from an unknown one by the clock, not by chance.
        let ttl = Duration::from_secs((self.code_ttl + 300) as u64);
        let issued = CodeState::Issued(Box::new(grant));
        self.grants.put(&GrantId::of(&code).0, &issued, ttl).await?;
        Ok(code)
    }

    /// What `code` stands for, without taking it: the exchange is judged
    /// (its client, redirect URI, verifier) before the code is spent, so
    /// that whoever holds a leaked code but neither the client's credentials
    /// nor the verifier cannot spend it, however many requests they send at
    /// once.
    pub async fn look(&self, code: &str) -> anyhow::Result<(GrantId, PresentedCode)> {
        let id = GrantId::of(code);
        let presented = match self.grants.get(&id.0).await? {
            Some(CodeState::Issued(grant)) => PresentedCode::Issued(*grant),
            Some(CodeState::Spent { spent }) => PresentedCode::Spent(Some(*spent)),
            Some(CodeState::Redeemed) => PresentedCode::Spent(None),
            None => PresentedCode::Unknown,
        };
        Ok((id, presented))
    }

    /// Spends the code whose `grant` [`Codes::look`] found and the exchange
    /// fits, once. Of two concurrent exchanges exactly one succeeds; the
    /// other is a replay.
    pub async fn redeem(&self, id: &GrantId, grant: &CodeGrant) -> Result<(), Redeem> {
        let spent = CodeState::Spent {
            spent: Box::new(grant.clone()),
        };
        match self.grants.replace(&id.0, &spent, self.memory).await? {
            Some(CodeState::Issued(_)) => Ok(()),
            Some(CodeState::Spent { .. } | CodeState::Redeemed) => Err(self.replayed(id).await?),
            None => Err(Redeem::Unknown),
        }
    }

    /// A spent code presented again by its client: marked, so an exchange
    /// racing it revokes what it just issued; answers what to revoke.
    pub async fn replayed(&self, id: &GrantId) -> anyhow::Result<Redeem> {
        self.revoked.put(&id.0, &true, self.memory).await?;
        Ok(Redeem::Replayed {
            issued: self.issued.get(&id.0).await?,
        })
    }

    /// Records what a redeemed code issued; a replay that raced the
    /// exchange has marked the code, and then the tokens must go.
    pub async fn record_issued(&self, code: &GrantId, tokens: CodeTokens) -> Result<(), Redeem> {
        self.issued.put(&code.0, &tokens, self.memory).await?;
        if self.revoked.get(&code.0).await?.is_some() {
            return Err(Redeem::Replayed {
                issued: Some(tokens),
            });
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct AccessTokens {
    grants: Kind<AccessGrant>,
    /// When an account's tokens for a client were revoked (its consent
    /// withdrawn), under `account:client`, or all its tokens (its sessions
    /// ended everywhere), under `account`: tokens issued until then are
    /// dead. Kept as long as such a token could live.
    revoked: Kind<i64>,
    /// The stored name of the access token issued with a refresh token,
    /// under the refresh token's id, as long as the access token lives.
    with_refresh: Kind<String>,
    /// Refresh tokens a retry in the grace window ended, by id.
    superseded: Kind<bool>,
    ttl: i64,
}

impl AccessTokens {
    pub fn new(store: &ShortLived, ttl: i64) -> Self {
        Self {
            grants: Kind::new(store, "access"),
            revoked: Kind::new(store, "access-revoked"),
            with_refresh: Kind::new(store, "access-with-refresh"),
            superseded: Kind::new(store, "refresh-superseded"),
            ttl,
        }
    }

    /// How long an access token lives, and what is kept about it.
    fn lifetime(&self) -> Duration {
        Duration::from_secs(self.ttl.max(1) as u64)
    }

    /// Remembers that `id` was issued with the refresh token `refresh_id`;
    /// ends it at once if a retry ended that refresh token meanwhile. (Each
    /// side writes, then reads the other's: of a refresh and its retry
    /// racing, at least one sees the other.)
    pub async fn issued_with(&self, refresh_id: &str, id: &GrantId) -> anyhow::Result<()> {
        self.with_refresh
            .put(refresh_id, &id.0, self.lifetime())
            .await?;
        if self.superseded.get(refresh_id).await?.is_some() {
            self.grants.delete(&id.0).await?;
        }
        Ok(())
    }

    /// A refresh token a retry ended takes the access token issued with it.
    pub async fn revoke_issued_with(&self, refresh_id: &str) -> anyhow::Result<()> {
        self.superseded
            .put(refresh_id, &true, self.lifetime())
            .await?;
        if let Some(id) = self.with_refresh.take(refresh_id).await? {
            self.grants.delete(&id).await?;
        }
        Ok(())
    }

    /// Stores the grant; returns the token for the client and its stored name.
    pub async fn issue(&self, grant: &AccessGrant) -> anyhow::Result<(String, GrantId)> {
        let token = random_token(32);
        let id = GrantId::of(&token);
        self.grants.put(&id.0, grant, self.lifetime()).await?;
        Ok((token, id))
    }

    /// The live grant behind a token presented at `now`.
    pub async fn find(&self, token: &str, now: i64) -> anyhow::Result<Option<AccessGrant>> {
        let Some(grant) = self
            .grants
            .get(&GrantId::of(token).0)
            .await?
            .filter(|grant| grant.expires_at > now)
        else {
            return Ok(None);
        };
        if let Some(account_id) = &grant.account_id {
            // The revocations read at once: one round trip's wait on Redis.
            let issued_ms = issued_ms(grant.issued_ms, grant.issued_at);
            // A token without `offline_access` lives with its session, as
            // its refresh family does (`revoke_session`).
            let session = grant
                .sid
                .as_deref()
                .filter(|_| !grant.scopes.contains("offline_access"));
            let (for_client, for_all, for_session) = tokio::try_join!(
                self.revoked_since(account_id, &grant.client_id, issued_ms),
                // Every token of the account issued before (`revoke_all_for`).
                self.ended_after(account_id, issued_ms),
                async {
                    match session {
                        Some(sid) => self.ended_after(&session_key(sid), issued_ms).await,
                        None => Ok(false),
                    }
                },
            )?;
            if for_client || for_all || for_session {
                return Ok(None);
            }
        }
        Ok(Some(grant))
    }

    /// Every access token issued in the session `sid` before `now_ms`, but
    /// those granted `offline_access`, stops working: the session ended (a
    /// logout, « Se déconnecter »), and a token without a refresh family —
    /// a third party's without `offline_access` — lived on for its hour,
    /// where a first party's died with its family.
    pub async fn revoke_session(&self, sid: &str, now_ms: i64) -> anyhow::Result<()> {
        self.end_at(&session_key(sid), now_ms).await
    }

    /// Records that the tokens `key` names (an account's, a session's)
    /// issued before `now_ms` are over, as long as such a token could live.
    async fn end_at(&self, key: &str, now_ms: i64) -> anyhow::Result<()> {
        let ttl = Duration::from_secs(self.ttl.max(1) as u64 + 1);
        self.revoked.put(key, &now_ms, ttl).await
    }

    /// Whether the revocation recorded under `key` (an account's, a
    /// session's) came after a token issued at `issued_ms`.
    async fn ended_after(&self, key: &str, issued_ms: i64) -> anyhow::Result<bool> {
        let revoked: Option<i64> = self.revoked.get(key).await?;
        // A record in seconds, as an earlier version wrote it during a
        // rolling upgrade, is its second's first millisecond.
        let revoked_ms = revoked.map(|at| in_ms(at, 0));
        Ok(revoked_ms.is_some_and(|revoked_ms| issued_ms < revoked_ms))
    }

    /// Every access token of `account_id` issued before `now_ms`, whichever
    /// client holds it, stops working: a password reset, a closure, what
    /// ends every session of the account (a token without a refresh family
    /// lived on for its hour, at UserInfo and introspection), also one
    /// issued a moment before in the same second. Those issued after live:
    /// the sign-in that follows a reset, the refresh of the session kept.
    /// (An earlier version reads the milliseconds as seconds during a
    /// rolling upgrade: it ends all of the account's tokens for their hour,
    /// never keeps one alive.)
    pub async fn revoke_all_for(&self, account_id: &str, now_ms: i64) -> anyhow::Result<()> {
        self.end_at(account_id, now_ms).await
    }

    /// Whether `client_id`'s access for `account_id` was ended (`revoke_for`)
    /// at `since_ms` or later: what was granted at `since_ms` is over; what
    /// was granted after, as the person consents again a moment later, lives.
    pub async fn revoked_since(
        &self,
        account_id: &str,
        client_id: &str,
        since_ms: i64,
    ) -> anyhow::Result<bool> {
        let revoked: Option<i64> = self
            .revoked
            .get(&format!("{account_id}:{client_id}"))
            .await?;
        // A record in seconds, as an earlier version wrote it during a
        // rolling upgrade, is its second's last millisecond.
        let revoked_ms = revoked.map(|at| in_ms(at, 999));
        Ok(revoked_ms.is_some_and(|revoked_ms| since_ms <= revoked_ms))
    }

    /// Every access token `client_id` holds for `account_id` stops working,
    /// and every code it has not exchanged yet (`revoked_since`): those
    /// issued up to `now_ms`. (An earlier version reads the milliseconds as
    /// seconds during a rolling upgrade: it refuses the client's codes and
    /// tokens for this account, those of a consent given again too, until
    /// the mark lapses, at most an access token's lifetime; never keeps one
    /// alive.)
    pub async fn revoke_for(
        &self,
        account_id: &str,
        client_id: &str,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        let ttl = Duration::from_secs(self.ttl.max(MAX_CODE_TTL) as u64 + 1);
        self.revoked
            .put(&format!("{account_id}:{client_id}"), &now_ms, ttl)
            .await
    }

    /// The grant stored under `id`, whatever its age.
    pub async fn by_id(&self, id: &GrantId) -> anyhow::Result<Option<AccessGrant>> {
        self.grants.get(&id.0).await
    }

    pub async fn revoke(&self, id: &GrantId) -> anyhow::Result<()> {
        self.grants.delete(&id.0).await
    }

    /// The stored name of a token a client presents (to revoke it).
    pub fn id_of(token: &str) -> GrantId {
        GrantId::of(token)
    }
}

/// Where a session's end is recorded among the revocations (an account's
/// are under its id, a client's under `account:client`).
fn session_key(sid: &str) -> String {
    format!("session:{sid}")
}

/// An authorization request parked while the person logs in or consents.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub request: AuthorizationRequest,
    /// The session that was there and was not good enough (`prompt=login`,
    /// `max_age`): only a new login may answer the request, not that session.
    pub stale_sid: Option<String>,
    /// That session's password entry then (`Session::authentication`): the
    /// same session may answer once its person typed their password again
    /// (`session::renew`). `None` for a request parked before this field.
    #[serde(default)]
    pub stale_authentication: Option<String>,
    pub awaiting: Awaiting,
    /// When it was parked (0 for a request parked before this field): a
    /// sign-in since then is fresh whatever `prompt=login` or `max_age` says.
    #[serde(default)]
    pub parked_at: i64,
}

/// What a parked request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Awaiting {
    Login,
    /// The consent of the account of this session id.
    Consent,
    /// The person of this session id going on, or another signing in
    /// (`prompt=select_account`).
    Account,
    /// Nothing: the consent page of this session id was answered a moment
    /// ago. A second click of the same button (a double-click, whose first
    /// answer the browser drops) is answered alike rather than « expirée ».
    Answered {
        accepted: bool,
    },
}

#[derive(Clone)]
pub struct PendingRequests {
    requests: Kind<Pending>,
}

/// How long an authorization request waits for its sign-in or consent.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// How long an answered consent page's second click is answered alike.
const ANSWERED_TTL: Duration = Duration::from_secs(60);

impl PendingRequests {
    pub fn new(store: &ShortLived) -> Self {
        Self {
            requests: Kind::new(store, "pending"),
        }
    }

    /// Parks the request; returns the id the login form carries.
    pub async fn park(&self, pending: &Pending) -> anyhow::Result<String> {
        let id = random_token(24);
        self.requests.put(&id, pending, PENDING_TTL).await?;
        Ok(id)
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Pending>> {
        if !well_formed(id) {
            return Ok(None);
        }
        self.requests.get(id).await
    }

    /// Puts a request back under its id (it now waits for something else).
    pub async fn repark(&self, id: &str, pending: &Pending) -> anyhow::Result<()> {
        self.requests.put(id, pending, PENDING_TTL).await
    }

    /// Keeps, for a minute, the trace of a request just answered
    /// (`Awaiting::Answered`).
    pub async fn answered(&self, id: &str, pending: Pending, accepted: bool) -> anyhow::Result<()> {
        let answered = Pending {
            awaiting: Awaiting::Answered { accepted },
            ..pending
        };
        self.requests.put(id, &answered, ANSWERED_TTL).await
    }

    /// Takes the request to answer it, once.
    pub async fn take(&self, id: &str) -> anyhow::Result<Option<Pending>> {
        if !well_formed(id) {
            return Ok(None);
        }
        self.requests.take(id).await
    }
}

/// 24 random bytes in base64url: anything else was never issued.
fn well_formed(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> CodeGrant {
        CodeGrant {
            client_id: "ent".into(),
            redirect_uri: "https://ent.example/cb".into(),
            account_id: "a1".into(),
            scopes: Scopes::parse(Some("openid")).unwrap(),
            nonce: None,
            code_challenge: None,
            auth_time: 0,
            sid: "s1".into(),
            amr: vec!["pwd".into()],
            issued_at: 0,
            issued_ms: 0,
            expires_at: 60,
            session_expires_at: Some(3600),
        }
    }

    #[test]
    fn what_a_code_issued_reads_as_stored_before_the_family_was_named() {
        let old: CodeTokens = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!((old.access, old.family), (GrantId("abc".into()), None));
        let new = CodeTokens {
            access: GrantId("abc".into()),
            family: Some("f".into()),
        };
        let read: CodeTokens = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(read.family.as_deref(), Some("f"));
    }

    /// The code as `look` finds it: its grant, waiting.
    async fn waiting(codes: &Codes, code: &str) -> (GrantId, CodeGrant) {
        match codes.look(code).await.unwrap() {
            (id, PresentedCode::Issued(grant)) => (id, grant),
            (_, other) => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_and_a_replay_names_what_it_issued() {
        let codes = Codes::new(&ShortLived::memory(), 60, 3600);
        let code = codes.issue(grant()).await.unwrap();
        let (id, found) = waiting(&codes, &code).await;
        assert_eq!(found.account_id, "a1");
        // Looked at, not taken.
        assert!(matches!(
            codes.look(&code).await.unwrap().1,
            PresentedCode::Issued(_)
        ));
        codes.redeem(&id, &found).await.unwrap();
        let tokens = CodeTokens {
            access: GrantId::of("the-access-token"),
            family: Some("f1".into()),
        };
        codes.record_issued(&id, tokens).await.unwrap();
        // Spent, its grant kept to judge a replay.
        match codes.look(&code).await.unwrap().1 {
            PresentedCode::Spent(Some(kept)) => assert_eq!(kept.client_id, "ent"),
            other => panic!("{other:?}"),
        }
        match codes.redeem(&id, &found).await {
            Err(Redeem::Replayed {
                issued: Some(CodeTokens { access, family }),
            }) => {
                assert_eq!(access, GrantId::of("the-access-token"));
                assert_eq!(family.as_deref(), Some("f1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            codes.look("never-issued").await.unwrap().1,
            PresentedCode::Unknown
        ));
    }

    /// A code spent by the version before, which kept no grant, is still
    /// recognised as spent.
    #[tokio::test]
    async fn a_code_spent_before_grants_were_kept_reads_as_spent() {
        let store = ShortLived::memory();
        let codes = Codes::new(&store, 60, 3600);
        let id = GrantId::of("old-code");
        store
            .put(&format!("code:{}", id.0), "null", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(
            codes.look("old-code").await.unwrap().1,
            PresentedCode::Spent(None)
        ));
    }

    #[tokio::test]
    async fn concurrent_exchanges_of_one_code_let_exactly_one_through() {
        let codes = Codes::new(&ShortLived::memory(), 60, 3600);
        let code = codes.issue(grant()).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (codes, code) = (codes.clone(), code.clone());
            tasks.spawn(async move {
                match codes.look(&code).await.unwrap() {
                    (id, PresentedCode::Issued(grant)) => codes.redeem(&id, &grant).await.is_ok(),
                    _ => false,
                }
            });
        }
        let mut winners = 0;
        while let Some(won) = tasks.join_next().await {
            winners += usize::from(won.unwrap());
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn an_exchange_raced_by_a_replay_gives_up_its_token() {
        let codes = Codes::new(&ShortLived::memory(), 60, 3600);
        let code = codes.issue(grant()).await.unwrap();
        let (id, found) = waiting(&codes, &code).await;
        codes.redeem(&id, &found).await.unwrap();
        // The replay arrives before the winner recorded its token.
        assert!(matches!(
            codes.redeem(&id, &found).await,
            Err(Redeem::Replayed { issued: None })
        ));
        let tokens = CodeTokens {
            access: GrantId::of("t"),
            family: None,
        };
        assert!(matches!(
            codes.record_issued(&id, tokens).await,
            Err(Redeem::Replayed { issued: Some(_) })
        ));
    }

    /// A revocation of all of an account's tokens ends those issued before
    /// it in its own second, not those after; one an earlier version wrote
    /// in seconds still ends what it ended.
    #[tokio::test]
    async fn revoking_all_tokens_tells_apart_the_moments_of_one_second() {
        let store = ShortLived::memory();
        let tokens = AccessTokens::new(&store, 3600);
        let second = 1_800_000_000;
        let issue = |ms: i64| {
            let tokens = tokens.clone();
            async move {
                let grant = AccessGrant {
                    client_id: "ent".into(),
                    account_id: Some("a1".into()),
                    scopes: Scopes::parse(Some("openid")).unwrap(),
                    service_scopes: Vec::new(),
                    sid: Some("s1".into()),
                    expires_at: second + 3600,
                    family: None,
                    issued_at: ms / 1000,
                    issued_ms: ms,
                };
                tokens.issue(&grant).await.unwrap().0
            }
        };
        let before = issue(second * 1000 + 100).await;
        let after = issue(second * 1000 + 900).await;
        tokens
            .revoke_all_for("a1", second * 1000 + 500)
            .await
            .unwrap();
        assert!(tokens.find(&before, second).await.unwrap().is_none());
        assert!(tokens.find(&after, second).await.unwrap().is_some());

        tokens.revoke_all_for("a1", second + 1).await.unwrap();
        assert!(tokens.find(&after, second).await.unwrap().is_none());
    }
}
