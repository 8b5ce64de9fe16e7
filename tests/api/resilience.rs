//! Clef under stress and faults: slow clients holding connections open, and
//! Redis or PostgreSQL frozen or down. Requests must fail fast with 503 and
//! Retry-After, `/readyz` must say so within a second, and everything must
//! recover without restarting Clef.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use crate::helpers::*;

/// Generous for a loaded CI machine; the bounds in Clef are ~1–2 s.
const FAIL_FAST: Duration = Duration::from_secs(5);
const READY_FAST: Duration = Duration::from_secs(2);

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Opens a connection that sends the start of a request line and never finishes it.
async fn slow_client(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /healthz HT").await.unwrap();
    stream
}

#[tokio::test]
async fn slow_clients_are_cut_off_at_the_header_deadline_and_a_normal_request_gets_through() {
    let app = spawn_app_with(|config| {
        config.max_connections = 8;
        config.header_read_timeout = 1;
    })
    .await;
    let address = host_port(&app);
    let started = Instant::now();
    // Three times the cap: the first eight are served (and cut off), the
    // others wait their turn in the backlog.
    let mut slow = Vec::new();
    for _ in 0..24 {
        slow.push(slow_client(&address).await);
    }
    let healthz = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("/healthz answers behind the slow clients");
    assert_eq!(healthz.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "three rounds of one-second deadlines, not {:?}",
        started.elapsed()
    );
    for mut stream in slow {
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("Clef closes a connection whose headers do not come");
        if closed.is_ok() {
            assert!(answer.is_empty(), "an unfinished request gets no answer");
        }
    }
}

#[tokio::test]
async fn beyond_the_connection_cap_clients_wait_and_clef_serves_again_when_slots_free() {
    let app = spawn_app_with(|config| {
        config.max_connections = 4;
        config.header_read_timeout = 60;
    })
    .await;
    let address = host_port(&app);
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_client(&address).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Many more held open beyond the cap: they wait in the listener's backlog
    // (128 deep, as the standard library's), unaccepted.
    for _ in 0..100 {
        slow.push(slow_client(&address).await);
    }
    let waiting = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "at the cap, Clef accepts no further connection"
    );

    drop(slow);
    let started = Instant::now();
    let healthz = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("Clef serves again once the slow clients are gone");
    assert_eq!(healthz.status(), 200);
    assert!(started.elapsed() < FAIL_FAST);
}

// --- Dependencies that freeze or go away -----------------------------------

async fn timed<T>(request: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = request.await;
    (output, started.elapsed())
}

/// Retries `check` until it holds, for at most 15 s.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a client holds before the outage.
struct Session {
    client: (String, Option<String>),
    access_token: String,
    /// Codes minted before the outage, one for each exchange tried during it:
    /// a made-up code is refused from Redis alone, a real one needs the
    /// database too.
    codes: std::sync::Mutex<Vec<String>>,
}

/// The parent signs in through the test client and gets an access token.
async fn signed_in(app: &TestApp) -> Session {
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        app,
        &client.0,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let browser = browser();
    let back = authorize_and_login(app, &browser, &url, "claire.martin").await;
    let code = location_param(&back, "code").unwrap();
    let tokens: Value = exchange(app, &client, &code, Some(&verifier))
        .await
        .json()
        .await
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..4 {
        let back = browser
            .get(authorize_url(app, &client.0, &[]))
            .send()
            .await
            .unwrap();
        codes.push(location_param(&back, "code").expect("a code from the session"));
    }
    Session {
        client,
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        codes: std::sync::Mutex::new(codes),
    }
}

async fn login_status(app: &TestApp, identifier: &str) -> u16 {
    let browser = browser();
    let page = browser.get(app.url("/login")).send().await.unwrap();
    if page.status() != 200 {
        // The form itself is refused while the database is known down.
        return page.status().as_u16();
    }
    let page = page.text().await.unwrap();
    submit_login(app, &browser, &page, identifier, PASSWORD)
        .await
        .status()
        .as_u16()
}

async fn readyz_status(app: &TestApp) -> u16 {
    reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn assert_retry_after(response: &reqwest::Response) {
    assert!(
        response.headers().contains_key("retry-after"),
        "a 503 says when to come back"
    );
}

/// With a dependency frozen or down: a person gets a 503 page, a client a
/// `temporarily_unavailable` JSON error, both with Retry-After and fast; and
/// `/readyz` says 503 within a second or two.
async fn assert_fails_fast(app: &TestApp, session: &Session, dependency: &str) {
    let browser = browser();
    let page = browser.get(app.url("/login")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let (login, took) = timed(submit_login(
        app,
        &browser,
        &page,
        "claire.martin",
        PASSWORD,
    ))
    .await;
    assert_eq!(login.status(), 503, "login with {dependency} unavailable");
    assert!(took < FAIL_FAST, "login answered in {took:?}");
    assert_retry_after(&login);
    assert!(login.text().await.unwrap().contains("indisponible"));
    if !dependency.starts_with("PostgreSQL") {
        // Not checked, so not a failed login on Claire's trail.
        let failed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE event = 'login' AND outcome <> 'ok'",
        )
        .fetch_one(&app.app.db)
        .await
        .unwrap();
        assert_eq!(failed, 0, "audit trail with {dependency} unavailable");
    }

    let code = session.codes.lock().unwrap().pop().expect("a spare code");
    let (token, took) = timed(exchange(app, &session.client, &code, None)).await;
    assert_eq!(token.status(), 503, "/token with {dependency} unavailable");
    assert!(took < FAIL_FAST, "/token answered in {took:?}");
    assert_retry_after(&token);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    let (userinfo, took) = timed(
        reqwest::Client::new()
            .get(app.url("/userinfo"))
            .bearer_auth(&session.access_token)
            .send(),
    )
    .await;
    let userinfo = userinfo.unwrap();
    assert_eq!(
        userinfo.status(),
        503,
        "/userinfo with {dependency} unavailable"
    );
    assert!(took < FAIL_FAST, "/userinfo answered in {took:?}");
    assert_retry_after(&userinfo);
    let body: Value = userinfo.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    let (ready, took) = timed(readyz_status(app)).await;
    assert_eq!(ready, 503, "/readyz with {dependency} unavailable");
    assert!(took < READY_FAST, "/readyz answered in {took:?}");
}

/// With Redis unavailable, an authorization request whose client and
/// redirect URI are known goes back to the client with
/// `temporarily_unavailable` (RFC 6749 §4.1.2.1), its `state` kept: not a
/// page the client never hears of.
async fn assert_authorize_tells_the_client(app: &TestApp, session: &Session, dependency: &str) {
    let errors = store_errors(app, "short_lived").await;
    let url = authorize_url(app, &session.client.0, &[("state", "down-1")]);
    let (back, took) = timed(browser().get(url).send()).await;
    let back = back.unwrap();
    assert_eq!(
        back.status(),
        302,
        "/authorize with {dependency} unavailable"
    );
    assert!(took < FAIL_FAST, "/authorize answered in {took:?}");
    assert!(
        location(&back).starts_with(REDIRECT_URI),
        "{}",
        location(&back)
    );
    assert_eq!(
        location_param(&back, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    assert_eq!(location_param(&back, "state").as_deref(), Some("down-1"));
    assert_eq!(location_param(&back, "code"), None);
    // Counted where operators' alerts look, though not a 5xx.
    assert!(
        store_errors(app, "short_lived").await > errors,
        "/authorize's failure counted in /metrics"
    );
}

/// `clef_store_errors_total{store="…"}` as `/metrics` shows it.
async fn store_errors(app: &TestApp, store: &str) -> u64 {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("clef_store_errors_total{{store=\"{store}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

async fn assert_recovers(app: &TestApp, dependency: &str) {
    eventually(&format!("login once {dependency} is back"), || async {
        login_status(app, "claire.martin").await == 303
    })
    .await;
    eventually(&format!("/readyz once {dependency} is back"), || async {
        readyz_status(app).await == 200
    })
    .await;
}

/// A redis-server of the test's own, on its own port, without persistence.
pub(crate) struct RedisServer {
    port: u16,
    process: Child,
}

impl RedisServer {
    pub(crate) async fn start(port: u16) -> Self {
        let process = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed where CLEF_TEST_REDIS_URL is set");
        let server = Self { port, process };
        eventually("redis-server to start", || async { server.answers().await }).await;
        server
    }

    async fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").await.is_ok()
            && stream.read_exact(&mut reply).await.is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn redis_available() -> bool {
    // CI sets it and installs redis-server; elsewhere these tests have nothing to run against.
    std::env::var("CLEF_TEST_REDIS_URL").is_ok()
}

#[tokio::test]
async fn with_redis_frozen_or_down_requests_fail_fast_with_503_and_recover_when_it_returns() {
    if !redis_available() {
        return;
    }
    let mut redis = RedisServer::start(free_port()).await;
    let url = redis.url();
    let app = spawn_app_with(|config| config.redis_url = Some(SecretString::from(url))).await;
    let session = signed_in(&app).await;
    assert_eq!(readyz_status(&app).await, 200);

    // Frozen: the connection stays open and nothing answers.
    redis.signal("-STOP");
    assert_fails_fast(&app, &session, "Redis frozen").await;
    assert_authorize_tells_the_client(&app, &session, "Redis frozen").await;
    assert!(
        store_errors(&app, "short_lived").await >= 3,
        "counted in /metrics"
    );
    redis.signal("-CONT");
    assert_recovers(&app, "Redis").await;
    assert_eq!(
        userinfo_status(&app, &session.access_token).await,
        200,
        "the token outlived the freeze"
    );

    // Down: connections refused.
    redis.stop();
    assert_fails_fast(&app, &session, "Redis down").await;
    assert_authorize_tells_the_client(&app, &session, "Redis down").await;
    let _redis = RedisServer::start(redis.port).await;
    assert_recovers(&app, "Redis").await;
}

#[tokio::test]
async fn clef_starts_while_redis_is_down_reports_not_ready_and_serves_once_it_is_up() {
    if !redis_available() {
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let (app, took) = timed(spawn_app_with(|config| {
        config.redis_url = Some(SecretString::from(url));
    }))
    .await;
    assert!(took < FAIL_FAST, "start does not hang on Redis: {took:?}");
    app.family().await;
    let (ready, took) = timed(readyz_status(&app)).await;
    assert_eq!(ready, 503);
    assert!(took < READY_FAST);
    assert_eq!(login_status(&app, "claire.martin").await, 503);

    let _redis = RedisServer::start(port).await;
    assert_recovers(&app, "Redis").await;
}

// --- PostgreSQL, through a proxy the test can freeze and cut ---------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    /// Connections stay up; nothing is forwarded (a frozen server or network).
    Frozen,
    /// Every connection dropped, new ones refused (a server that is down).
    Cut,
}

/// A TCP relay to PostgreSQL: the shared server is never stopped.
struct Proxy {
    port: u16,
    flow: watch::Sender<Flow>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (flow, mut changes) = watch::channel(Flow::Open);
        let relays = flow.subscribe();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let current = *changes.borrow_and_update();
                match (current, &listener) {
                    (Flow::Cut, Some(_)) => listener = None,
                    (Flow::Cut, None) => {
                        if changes.changed().await.is_err() {
                            return;
                        }
                    }
                    (_, None) => listener = Some(rebind(port).await),
                    (_, Some(open)) => tokio::select! {
                        accepted = open.accept() => if let Ok((client, _)) = accepted {
                            tokio::spawn(relay(client, upstream.clone(), relays.clone()));
                        },
                        changed = changes.changed() => if changed.is_err() {
                            return;
                        },
                    },
                }
            }
        });
        Self { port, flow }
    }

    fn set(&self, flow: Flow) {
        self.flow.send_replace(flow);
    }
}

async fn rebind(port: u16) -> tokio::net::TcpListener {
    for _ in 0..50 {
        if let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot listen again on port {port}");
}

async fn relay(client: TcpStream, upstream: String, flow: watch::Receiver<Flow>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    // Either direction ending ends both: dropping the halves closes the sockets.
    tokio::select! {
        () = pump(from_client, to_server, flow.clone()) => {}
        () = pump(from_server, to_client, flow) => {}
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut flow: watch::Receiver<Flow>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let current = *flow.borrow_and_update();
        match current {
            Flow::Cut => return,
            Flow::Frozen => {
                if flow.changed().await.is_err() {
                    return;
                }
            }
            Flow::Open => tokio::select! {
                read = from.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    },
                },
                changed = flow.changed() => if changed.is_err() {
                    return;
                },
            },
        }
    }
}

#[tokio::test]
async fn with_postgresql_frozen_or_down_requests_fail_fast_with_503_and_recover_when_it_returns() {
    let Ok(server) = std::env::var("CLEF_TEST_DATABASE_URL") else {
        return;
    };
    let server = url::Url::parse(&server).unwrap();
    let upstream = format!(
        "{}:{}",
        server.host_str().unwrap(),
        server.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream).await;
    let proxy_port = proxy.port;
    let app = spawn_app_with(|config| {
        // Only PostgreSQL is under test: sessions and tokens stay in process.
        config.redis_url = None;
        let database = config.database_url.take().expect("a fresh database");
        let mut through_proxy = url::Url::parse(database.expose_secret()).unwrap();
        through_proxy.set_host(Some("127.0.0.1")).unwrap();
        through_proxy.set_port(Some(proxy_port)).unwrap();
        config.database_url = Some(SecretString::from(through_proxy.to_string()));
    })
    .await;
    let session = signed_in(&app).await;
    assert_eq!(readyz_status(&app).await, 200);

    proxy.set(Flow::Frozen);
    assert_fails_fast(&app, &session, "PostgreSQL frozen").await;
    assert!(
        store_errors(&app, "database").await >= 1,
        "counted in /metrics"
    );
    proxy.set(Flow::Open);
    assert_recovers(&app, "PostgreSQL").await;

    proxy.set(Flow::Cut);
    assert_fails_fast(&app, &session, "PostgreSQL down").await;
    proxy.set(Flow::Open);
    assert_recovers(&app, "PostgreSQL").await;
    assert_eq!(userinfo_status(&app, &session.access_token).await, 200);
}

/// A table held by someone else (an upgrade's migration building an index,
/// an operator's long transaction): the requests that need it fail with 503
/// and Retry-After once PostgreSQL's lock timeout is over, not at the
/// request timeout (30 s) as a 408; PostgreSQL answers, so the breaker stays
/// closed and `/readyz` ready; the table released, they are served.
#[tokio::test]
async fn a_table_held_by_a_migration_gives_503_within_seconds() {
    if std::env::var("CLEF_TEST_DATABASE_URL").is_err() {
        return;
    }
    let app = spawn_app().await;
    let session = signed_in(&app).await;
    let mut holder = app.app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let code = session.codes.lock().unwrap().pop().unwrap();
    let (token, took) = timed(exchange(&app, &session.client, &code, None)).await;
    assert_eq!(token.status(), 503, "/token while accounts is held");
    assert!(took < FAIL_FAST, "/token answered in {took:?}");
    assert_retry_after(&token);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        store_errors(&app, "database").await >= 1,
        "counted in /metrics"
    );
    assert!(!app.app.breaker.is_open(), "PostgreSQL answers");
    assert_eq!(readyz_status(&app).await, 200);
    holder.rollback().await.unwrap();
    let code = session.codes.lock().unwrap().pop().unwrap();
    assert_eq!(
        exchange(&app, &session.client, &code, None).await.status(),
        200
    );
}

/// An import is not a request: behind a table held longer than the lock
/// timeout (another import of the school, an operator's transaction) it
/// waits, and goes in once the table is free.
#[tokio::test]
async fn an_import_waits_for_a_table_held_longer_than_the_lock_timeout() {
    if std::env::var("CLEF_TEST_DATABASE_URL").is_err() {
        return;
    }
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    let mut holder = app.app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE accounts IN EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let csv = "N° élève;Nom;Prénom;Date de naissance;Classe\n1;Durand;Inès;01/02/2013;6 A\n";
    let import = app.import("0590001A", csv.as_bytes());
    let release = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        holder.rollback().await.unwrap();
    };
    let (report, ()) = tokio::join!(import, release);
    assert_eq!(
        report
            .expect("imported once the table is free")
            .students_created,
        1
    );
}

/// Clef's connections are named in `pg_stat_activity` (whose query holds a
/// lock, whose are idle in a transaction).
#[tokio::test]
async fn postgresql_sees_clefs_connections_by_name() {
    if std::env::var("CLEF_TEST_DATABASE_URL").is_err() {
        return;
    }
    let app = spawn_app().await;
    let name: String = sqlx::query_scalar(
        "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
    )
    .fetch_one(&app.app.db)
    .await
    .unwrap();
    assert_eq!(name, "clef");
}

/// A pool whose every connection is busy is not a database down: the
/// breaker's own check finds PostgreSQL answering and leaves it closed, so
/// a burst that waits out the pool sheds nothing more.
#[tokio::test]
async fn a_busy_pool_does_not_open_the_breaker() {
    if std::env::var("CLEF_TEST_DATABASE_URL").is_err() {
        return;
    }
    let app = spawn_app().await;
    let db = &app.app.db;
    let mut held = Vec::new();
    for _ in 0..db.options().get_max_connections() {
        held.push(db.acquire().await.unwrap());
    }
    let waited = sqlx::query("SELECT 1").execute(db).await.unwrap_err();
    assert!(
        matches!(waited, sqlx::Error::PoolTimedOut),
        "the pool is busy: {waited:?}"
    );
    let breaker = &app.app.breaker;
    breaker.trip();
    let checked = Instant::now();
    while checked.elapsed() < Duration::from_millis(1500) {
        assert!(!breaker.is_open(), "PostgreSQL answers: nothing is shed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(held);
    assert_eq!(readyz_status(&app).await, 200);
}

/// A body that stops arriving is cut off at `request_timeout` with what any
/// other error gets: an OAuth error in JSON for a client, a page for a
/// person; so is a body over the limit.
#[tokio::test]
async fn a_request_cut_off_gets_a_json_error_or_a_page() {
    let app = spawn_app_with(|config| config.request_timeout = 1).await;
    let cut_off = |path: &'static str| {
        let address = host_port(&app);
        async move {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type="
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = String::new();
            let mut buffer = [0u8; 4096];
            // Until the answer's body has come (the connection may stay open).
            while !(answer.contains("\r\n\r\n")
                && (answer.ends_with('}') || answer.contains("</html>")))
            {
                let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
                    .await
                    .expect("an answer")
                    .unwrap();
                if read == 0 {
                    break;
                }
                answer.push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
            answer
        }
    };
    let token = cut_off("/token").await;
    assert!(token.starts_with("HTTP/1.1 408"), "{token}");
    assert!(
        token.contains("application/json") && token.contains("\"invalid_request\""),
        "{token}"
    );
    let page = cut_off("/login").await;
    assert!(page.starts_with("HTTP/1.1 408"), "{page}");
    assert!(
        page.contains("text/html") && page.contains("Délai dépassé"),
        "{page}"
    );

    let too_large = reqwest::Client::new()
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"client_name\": \"{}\"}}",
            "a".repeat(200 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    let body: Value = too_large.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

/// A Redis reached over TLS (`rediss://`, as managed Redis services ask),
/// its certificate signed by an authority of the academy's own named by
/// `redis_ca_file`: Clef serves through it; without that authority it does
/// not trust the server, and says not ready rather than talk to it.
#[tokio::test]
async fn a_redis_over_tls_is_trusted_through_the_named_authority_only() {
    if !redis_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed where CLEF_TEST_REDIS_URL is set");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=Rectorat test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.path().join("san"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.crt",
        "-days",
        "2",
        "-extfile",
        "san",
    ]);
    let port = free_port();
    let mut process = Command::new("redis-server")
        .current_dir(dir.path())
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "redis.crt",
            "--tls-key-file",
            "redis.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eventually("redis-server to listen with TLS", || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    let url = format!("rediss://127.0.0.1:{port}");
    let ca = dir.path().join("ca.crt");
    let trusted = spawn_app_with(|config| {
        config.redis_url = Some(SecretString::from(url.clone()));
        config.redis_ca_file = Some(ca);
    })
    .await;
    assert_eq!(readyz_status(&trusted).await, 200);
    let session = signed_in(&trusted).await;
    assert_eq!(userinfo_status(&trusted, &session.access_token).await, 200);

    let untrusting =
        spawn_app_with(|config| config.redis_url = Some(SecretString::from(url))).await;
    assert_eq!(
        readyz_status(&untrusting).await,
        503,
        "a server the Mozilla roots do not vouch for is not talked to"
    );
    let _ = process.kill();
    let _ = process.wait();
}
