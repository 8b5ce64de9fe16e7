//! What an operator watches (issue 6, item 10): Prometheus metrics and log
//! lines that carry the request id, the client address and, for a failed
//! login, the identifier tried.

use std::process::{Command, Stdio};

use crate::helpers::*;

/// `clef serve --demo` on a free port, in `dir`, with the embedded defaults
/// but `envs` (no proxy trusted unless they say so): the process, its
/// address, and the file its log goes to.
async fn serve_demo(
    dir: &std::path::Path,
    envs: &[(&str, &str)],
) -> (std::process::Child, String, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_clef"))
        .args(["serve", "--demo"])
        .env("CLEF_DATA_DIR", dir.join("data"))
        .env("CLEF_KEYS_DIR", dir.join("keys"))
        .env("CLEF_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("CLEF_TRUSTED_PROXIES")
        .env_remove("CLEF_DATABASE_URL")
        .env_remove("CLEF_REDIS_URL")
        .env_remove("CLEF_LOG")
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(format!("{address}/healthz")).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "clef serve --demo answers");
    (child, address, log_path)
}

/// A wrong password for `identifier` at the Clef listening at `address`.
async fn failed_login(
    address: &str,
    identifier: &str,
    request_id: &str,
    forwarded_for: &str,
) -> reqwest::Response {
    let browser = browser();
    let page = page_text(&browser, &format!("{address}/login")).await;
    browser
        .post(format!("{address}/login"))
        .header("x-request-id", request_id)
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("identifier", identifier),
            ("password", "Mauvais0000"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_by_route_logins_by_outcome_and_tokens() {
    let app = spawn_app_behind_proxy().await;
    app.family().await;
    let failed = failed_login(&app.address, "claire.martin", "essai-1", "198.51.100.1").await;
    assert_eq!(failed.status(), 401);
    assert_eq!(
        failed.headers()["x-request-id"],
        "essai-1",
        "a trusted proxy's id is echoed"
    );
    // An id that is no id (too long, odd characters) is not carried into
    // every log line: Clef makes its own.
    for odd in ["x".repeat(129), "a b".to_owned(), "<script>".to_owned()] {
        let answer = reqwest::Client::new()
            .get(app.url("/healthz"))
            .header("x-request-id", &odd)
            .send()
            .await
            .unwrap();
        let id = answer.headers()["x-request-id"].to_str().unwrap();
        assert!(id != odd && id.len() >= 32, "{odd:?} → {id}");
    }
    let client = app.client(true).await;
    let (verifier, challenge) = pkce();
    let browser = browser();
    let url = authorize_url(
        &app,
        &client.0,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = authorize_and_login(&app, &browser, &url, "claire.martin").await;
    let code = location_param(&back, "code").unwrap();
    let tokens = exchange(&app, &client, &code, Some(&verifier)).await;
    assert_eq!(tokens.status(), 200);

    let metrics = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["x-request-id"].to_str().unwrap().len() >= 32,
        "an id is made when none is given"
    );
    // The documents served without a span (discovery, JWKS) carry one too.
    for path in ["/.well-known/openid-configuration", "/jwks.json"] {
        let document = reqwest::Client::new()
            .get(app.url(path))
            .header("x-request-id", "essai-document-1")
            .send()
            .await
            .unwrap();
        assert_eq!(
            document.headers()["x-request-id"],
            "essai-document-1",
            "{path}"
        );
    }
    let text = metrics.text().await.unwrap();
    for expected in [
        r#"clef_logins_total{outcome="failed"} 1"#,
        r#"clef_logins_total{outcome="ok"} 1"#,
        r#"clef_http_requests_total{route="/login",method="POST",status="401"} 1"#,
        r#"clef_http_requests_total{route="/token",method="POST",status="200"} 1"#,
        r#"clef_tokens_issued_total{kind="id_token"} 1"#,
        r#"clef_http_request_duration_seconds_count{route="/token"} 1"#,
        "clef_password_hashing_queue 0",
        "clef_password_hashing_rejected_total 0",
        // Series an alert watches are there before their first event.
        r#"clef_logins_total{outcome="locked"} 0"#,
        r#"clef_store_errors_total{store="short_lived"} 0"#,
        r#"clef_store_errors_total{store="database"} 0"#,
        r#"clef_mail_total{outcome="failed"} 0"#,
        r#"clef_sms_total{outcome="held_back"} 0"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // The database pool as it stands, and the process's standard series.
    let value = |name: &str| {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    let max = value("clef_database_connections_max");
    let open = value(r#"clef_database_connections{state="idle"}"#)
        + value(r#"clef_database_connections{state="in_use"}"#);
    assert!(max >= 1.0 && (1.0..=max).contains(&open), "{open} of {max}");
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_cpu_seconds_total") > 0.0);
    assert!(value("process_open_fds") >= 3.0);
}

#[tokio::test]
async fn a_failed_login_logs_the_identifier_with_the_request_id_and_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address, log_path) = serve_demo(
        dir.path(),
        &[
            ("CLEF_LOG_JSON", "1"),
            ("CLEF_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let failed = failed_login(&address, "parent.martin", "essai-log-7", "198.51.100.77").await;
    assert_eq!(failed.status(), 401);
    // A letter's password typed in the identifier box names no account: it
    // is logged as a keyed tag, never as typed.
    let swapped = failed_login(&address, "2BUYJ9C8", "essai-log-8", "198.51.100.77").await;
    assert_eq!(swapped.status(), 401);
    // A mail sent after the answer (the identifier reminder) is logged in
    // the request's span too: an undelivered mail is traced to its request.
    let browser = browser();
    let page = page_text(&browser, &format!("{address}/identifiant-oublie")).await;
    let asked = browser
        .post(format!("{address}/identifiant-oublie"))
        .header("x-request-id", "essai-log-9")
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("email", "claire.martin@example.org"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let mut sent = false;
    for _ in 0..50 {
        sent = std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("mail sent");
        if sent {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(sent, "the reminder went out");
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !log.contains("trusted_proxies is empty"),
        "its proxy is trusted: {log}"
    );
    let line = log
        .lines()
        .find(|line| line.contains("failed login"))
        .unwrap_or_else(|| panic!("no failed-login line in:\n{log}"));
    let line: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(line["fields"]["identifier"], "parent.martin", "{line}");
    assert_eq!(line["span"]["request_id"], "essai-log-7", "{line}");
    assert_eq!(line["span"]["client"], "198.51.100.77", "{line}");
    assert!(
        !line.to_string().contains("Mauvais0000"),
        "never the password"
    );
    assert!(!log.to_lowercase().contains("2buyj9c8"), "{log}");
    let swapped = log
        .lines()
        .filter(|line| line.contains("failed login"))
        .nth(1)
        .expect("the second failed login");
    assert!(swapped.contains("\"identifier\":\"inconnu:"), "{swapped}");
    let mail = log.lines().find(|line| line.contains("mail sent")).unwrap();
    let mail: serde_json::Value = serde_json::from_str(mail).unwrap();
    assert_eq!(mail["span"]["request_id"], "essai-log-9", "{mail}");
}

/// The audit trail keeps what was typed in the identifier box only when it
/// names an account.
/// A request id is a trusted proxy's to set: a client's own would pin its
/// log lines on whatever request it names.
#[tokio::test]
async fn a_client_s_own_request_id_is_replaced() {
    let app = spawn_app().await;
    let answer = reqwest::Client::new()
        .get(app.url("/healthz"))
        .header("x-request-id", "someone-elses-request")
        .send()
        .await
        .unwrap();
    let id = answer.headers()["x-request-id"].to_str().unwrap();
    assert!(id != "someone-elses-request" && id.len() >= 32, "{id}");
}

#[tokio::test]
async fn the_audit_trail_keeps_no_unknown_identifier_as_typed() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    for identifier in ["2BUYJ9C8", "claire.martin"] {
        let page = page_text(&browser, &app.url("/login")).await;
        let response = submit_login(&app, &browser, &page, identifier, "pas-le-bon").await;
        assert_eq!(response.status(), 401);
    }
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_events WHERE event = 'login' ORDER BY at")
            .fetch_all(&app.app.db)
            .await
            .unwrap();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details.iter().all(|d| !d.contains("2buyj9c8")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("inconnu:")),
        "{details:?}"
    );
    assert!(details.iter().any(|d| d == "claire.martin"), "{details:?}");

    // Nor do the attempt counters in Redis, where it is.
    let config = &app.app.config;
    if let Some(url) = &config.redis_url {
        use secrecy::ExposeSecret;
        let redis = redis::Client::open(url.expose_secret()).unwrap();
        let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", config.redis_prefix))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            keys.iter().any(|k| k.contains("attempts:account:")),
            "{keys:?}"
        );
        assert!(
            keys.iter()
                .all(|k| !k.contains("2buyj9c8") && !k.contains("claire.martin")),
            "{keys:?}"
        );
    }
}

/// hyper takes any token as a method: made-up ones share one label, so a
/// client cannot grow the metrics (and the server's memory) without bound.
#[tokio::test]
async fn made_up_methods_share_one_metrics_label() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for n in 0..50 {
        let method = reqwest::Method::from_bytes(format!("ZZ{n}").as_bytes()).unwrap();
        http.request(method, app.url("/nowhere"))
            .send()
            .await
            .unwrap();
    }
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("ZZ"), "{text}");
    assert!(
        text.contains(
            r#"clef_http_requests_total{route="unmatched",method="other",status="404"} 50"#
        ),
        "{text}"
    );
}

/// Forwarding headers reaching a Clef that trusts no proxy: the operator is
/// warned, once, that every client counts as the proxy's address.
#[tokio::test]
async fn forwarding_headers_without_trusted_proxies_are_warned_of_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address, log_path) = serve_demo(dir.path(), &[]).await;
    for n in 0..3 {
        let failed = failed_login(
            &address,
            "parent.martin",
            &format!("proxy-{n}"),
            "198.51.100.9",
        )
        .await;
        assert_eq!(failed.status(), 401);
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(log.matches("trusted_proxies is empty").count(), 1, "{log}");
}

/// An outage is told once, not at every probe (every few seconds per pod):
/// `/readyz` says « not ready » on the first failure, and its 503s are not
/// logged again as errors; « ready again » once it answers (where a
/// redis-server can be started). The start names the version; the end is told.
#[tokio::test]
async fn readiness_is_logged_when_it_changes_and_the_version_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // No Redis there yet: Clef serves, not ready.
    let port = crate::helpers::free_port();
    let redis_url = format!("redis://127.0.0.1:{port}");
    let (mut child, address, log_path) =
        serve_demo(dir.path(), &[("CLEF_REDIS_URL", &redis_url)]).await;
    let readyz = async || {
        reqwest::get(format!("{address}/readyz"))
            .await
            .unwrap()
            .status()
    };
    for _ in 0..5 {
        assert_eq!(readyz().await, 503);
    }
    let back = crate::resilience::redis_available();
    let _redis = match back {
        true => Some(crate::resilience::RedisServer::start(port).await),
        false => None,
    };
    if back {
        crate::resilience::eventually("/readyz once Redis answers", || async {
            readyz().await == 200
        })
        .await;
        for _ in 0..3 {
            assert_eq!(readyz().await, 200);
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(log.matches("clef::web: not ready").count(), 1, "{log}");
    let again = usize::from(back);
    assert_eq!(
        log.matches("clef::web: ready again").count(),
        again,
        "{log}"
    );
    assert!(!log.contains("response failed"), "{log}");
    let serving = log
        .lines()
        .find(|l| l.contains("clef is serving"))
        .expect(&log);
    assert!(serving.contains(env!("CARGO_PKG_VERSION")), "{serving}");
    assert!(log.contains("clef stopped"), "{log}");
}
