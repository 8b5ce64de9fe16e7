//! Load generator for `bench/compare.sh`: the same client against Clef and panva's
//! oidc-provider, one subcommand per scenario, one line of JSON per run.
//!
//! Everything runs on one thread (a current-thread Tokio runtime) so that `taskset -c 1`
//! gives the load one core. Each connection is one worker with its own kept-alive HTTP/1.1
//! connection (hyper's connection-level client: no pool, no redirects followed behind our
//! back), optionally bound to its own loopback address (127.1.x.y) so that per-address
//! counters see one family per connection. A timed run has a warm-up, whose requests are
//! not counted, then a fixed measured window; an operation counts when it starts and ends
//! inside the window. Latency is the operation's, client side: one request for the GET
//! scenarios, code exchange and refresh, the whole flow (3 or 4 requests) for a login.
//!
//! The two servers differ only in what discovery says (authorization and token endpoints)
//! and in their login pages, which are read generically: the first form on the page with a
//! password field is posted with its hidden fields, `identifier` and `password`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::{Rng, RngCore};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpSocket;

#[derive(Parser)]
#[command(about = "Load generator for bench/compare.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// GET one path (discovery, JWKS) as fast as the connections allow.
    Get {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        path: String,
    },
    /// Full logins through the pages: authorization request, login form, code at the
    /// redirect URI. Each login is a new browser (no cookie) on the worker's connection.
    Login {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        oidc: OidcArgs,
    },
    /// Code exchange (authorization_code, client_secret_basic, PKCE S256) of codes minted
    /// beforehand through one signed-in session (prompt=none), in batches.
    Exchange {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        oidc: OidcArgs,
        /// Codes minted at most for the timed run.
        #[arg(long, default_value_t = 300_000)]
        max_codes: usize,
        /// Codes minted on one session before signing in again.
        #[arg(long, default_value_t = 200)]
        codes_per_session: usize,
    },
    /// Refresh-token grants, one chain per worker (each answer's refresh token is the
    /// next request's).
    Refresh {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        oidc: OidcArgs,
    },
    /// argon2id PHC strings with Clef's parameters for PREFIX.000…, as JSON (the peer's
    /// accounts).
    Hashes {
        #[arg(long)]
        count: usize,
        #[arg(long, default_value = "tempete")]
        prefix: String,
        #[arg(long)]
        password: String,
    },
    /// argon2id hashes per second, one thread, Clef's parameters (m=19456 KiB, t=2, p=1,
    /// 32-byte output) and Clef's way (one reused memory block).
    BoundArgon2 {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// RS256 (RSA-2048, PKCS#1 v1.5, SHA-256) compact JWS per second with josekit, as
    /// Clef signs its ID tokens (josekit over OpenSSL), one thread.
    BoundRsa {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// The server's base URL.
    #[arg(long)]
    base: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bind worker N's connection to 127.1.(N/200).(N%200+1).
    #[arg(long)]
    sources: bool,
    /// A label copied into the output.
    #[arg(long, default_value = "")]
    label: String,
    /// The server's PID: its CPU time (user + system, all threads) over the measured
    /// window is reported, from /proc/PID/stat.
    #[arg(long)]
    pid: Option<u32>,
    /// A `perf record --control fifo:FIFO` control pipe: "enable" is written to it as
    /// each measured phase of the exchange scenario starts, "disable" as it ends, so a
    /// profile holds the exchanges and not the minting between them.
    #[arg(long)]
    perf_control: Option<std::path::PathBuf>,
}

#[derive(Args, Clone)]
struct OidcArgs {
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    #[arg(long)]
    redirect_uri: String,
    #[arg(long, default_value = "openid profile")]
    scope: String,
    /// Accounts are PREFIX.000, PREFIX.001…; worker N logs in as N modulo ACCOUNTS.
    #[arg(long, default_value = "tempete")]
    prefix: String,
    #[arg(long, default_value_t = 256)]
    accounts: usize,
    #[arg(long)]
    password: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = match cli.command {
        Command::Get { run, path } => runtime.block_on(get(run, path))?,
        Command::Login { run, oidc } => runtime.block_on(login(run, oidc))?,
        Command::Exchange {
            run,
            oidc,
            max_codes,
            codes_per_session,
        } => runtime.block_on(exchange(run, oidc, max_codes, codes_per_session))?,
        Command::Refresh { run, oidc } => runtime.block_on(refresh(run, oidc))?,
        Command::Hashes {
            count,
            prefix,
            password,
        } => hashes(count, &prefix, &password)?,
        Command::BoundArgon2 { seconds } => bound_argon2(seconds)?,
        Command::BoundRsa { seconds } => bound_rsa(seconds)?,
    };
    println!("{out}");
    Ok(())
}

// ---------------------------------------------------------------- HTTP

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One kept-alive HTTP/1.1 connection, reopened when the server closed it.
struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    local: Option<IpAddr>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(base: &url::Url, local: Option<IpAddr>) -> anyhow::Result<Self> {
        let host = base.host_str().context("base URL without host")?;
        let port = base.port_or_known_default().unwrap_or(80);
        let addr = format!("{host}:{port}")
            .parse::<SocketAddr>()
            .context("base URL must name an IPv4 address and port")?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&format!("{host}:{port}"))?,
            local,
            sender: None,
        })
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let socket = TcpSocket::new_v4()?;
        if let Some(local) = self.local {
            socket.bind(SocketAddr::new(local, 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, String)],
        body: Option<String>,
    ) -> anyhow::Result<Response> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        if sender.ready().await.is_err() {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        let response = match sender.send_request(request.body(body)?).await {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Worker N's loopback source address, as bench/login_storm.py gives them.
fn source(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (n / 200) as u8, (n % 200 + 1) as u8))
}

/// A browser's cookies for one host (paths and expiry ignored but for deletions).
#[derive(Default, Clone)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let first = value.split(';').next().unwrap_or("");
            let Some((name, content)) = first.split_once('=') else {
                continue;
            };
            let (name, content) = (name.trim(), content.trim());
            let lower = value.to_ascii_lowercase();
            let deleted =
                content.is_empty() || lower.contains("max-age=0") || lower.contains("1970");
            self.0.retain(|(n, _)| n != name);
            if !deleted {
                self.0.push((name.to_owned(), content.to_owned()));
            }
        }
    }

    fn header(&self) -> Vec<(header::HeaderName, String)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let cookie = self
            .0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        vec![(header::COOKIE, cookie)]
    }
}

/// A path (and query) on the server from a Location or an endpoint URL.
fn local_path(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => location.to_owned(),
    }
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The login form of a page: its action and hidden fields.
fn login_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    for part in html.split("<form").skip(1) {
        let form = part.split("</form>").next().unwrap_or(part);
        if !form.contains("name=\"password\"") {
            continue;
        }
        let open = &form[..form.find('>')?];
        let action = attribute(open, "action")?;
        let mut hidden = Vec::new();
        for input in form.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            if attribute(tag, "type").as_deref() == Some("hidden") {
                if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value"))
                {
                    hidden.push((name, value));
                }
            }
        }
        return Some((action, hidden));
    }
    None
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn code_in(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
}

// ---------------------------------------------------------------- OIDC

struct Endpoints {
    authorization: String,
    token: String,
}

async fn discover(base: &url::Url) -> anyhow::Result<Endpoints> {
    let mut conn = Conn::new(base, None)?;
    let response = conn
        .send(
            Method::GET,
            "/.well-known/openid-configuration",
            &[],
            None,
        )
        .await?;
    if response.status != StatusCode::OK {
        bail!("discovery answered {}", response.status);
    }
    let doc: Value = serde_json::from_slice(&response.body)?;
    let field = |name: &str| -> anyhow::Result<String> {
        Ok(local_path(
            doc[name]
                .as_str()
                .ok_or_else(|| anyhow!("discovery has no {name}"))?,
        ))
    };
    Ok(Endpoints {
        authorization: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
    })
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

fn authorization_request(
    endpoints: &Endpoints,
    oidc: &OidcArgs,
    pkce: &Pkce,
    prompt_none: bool,
) -> String {
    let state = random_token(12);
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", oidc.client_id.as_str()),
        ("redirect_uri", oidc.redirect_uri.as_str()),
        ("scope", oidc.scope.as_str()),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if prompt_none {
        pairs.push(("prompt", "none"));
    }
    let separator = if endpoints.authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{}", endpoints.authorization, form(&pairs))
}

/// One login as a new browser: the authorization request, the login form posted, the
/// redirects followed to the code. Returns the code, its verifier and the browser's
/// cookies (the session), or what went wrong.
async fn login_flow(
    conn: &mut Conn,
    endpoints: &Endpoints,
    oidc: &OidcArgs,
    identifier: &str,
) -> Result<(Code, Jar), String> {
    let pkce = pkce();
    let mut jar = Jar::default();
    let mut method = Method::GET;
    let mut path = authorization_request(endpoints, oidc, &pkce, false);
    let mut body: Option<String> = None;
    let mut posted = false;
    for _ in 0..8 {
        let response = conn
            .send(method.clone(), &path, &jar.header(), body.take())
            .await
            .map_err(|e| format!("io:{}", short(&e)))?;
        jar.absorb(&response.headers);
        let status = response.status;
        if status.is_redirection() {
            let location = response
                .headers
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or("redirect without location")?;
            if location.starts_with(&oidc.redirect_uri) {
                return match code_in(location) {
                    Some(code) => Ok((
                        Code {
                            code,
                            verifier: pkce.verifier,
                        },
                        jar,
                    )),
                    None => Err(format!("{}:no-code", if posted { "post" } else { "get" })),
                };
            }
            method = Method::GET;
            path = local_path(location);
        } else if status == StatusCode::OK && !posted {
            let html = String::from_utf8_lossy(&response.body);
            let (action, hidden) = login_form(&html).ok_or("get:no-form")?;
            let mut pairs: Vec<(&str, &str)> = hidden
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            pairs.push(("identifier", identifier));
            pairs.push(("password", oidc.password.as_str()));
            body = Some(form(&pairs));
            method = Method::POST;
            path = local_path(&action);
            posted = true;
        } else {
            return Err(format!("{}:{}", if posted { "post" } else { "get" }, status.as_u16()));
        }
    }
    Err("too-many-redirects".into())
}

fn short(e: &anyhow::Error) -> String {
    let text = e.to_string();
    text.chars().take(40).collect()
}

#[derive(Clone)]
struct Code {
    code: String,
    verifier: String,
}

fn basic(oidc: &OidcArgs) -> String {
    let enc = |s: &str| form(&[("x", s)])[2..].to_owned();
    let pair = format!("{}:{}", enc(&oidc.client_id), enc(&oidc.client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// Mints `count` codes over `connections` connections. Worker N signs in through the pages
/// as account N (from its own address with `--sources`), then asks for codes with
/// prompt=none on that session, signing in again after `per_session` codes: a session
/// (and the peer's grant, whose in-memory index of tokens is rewritten on every write)
/// holds a realistic number of tokens, not the whole run's.
async fn mint(
    base: &url::Url,
    run: &RunArgs,
    endpoints: &Arc<Endpoints>,
    oidc: &Arc<OidcArgs>,
    count: usize,
    per_session: usize,
) -> anyhow::Result<Vec<Code>> {
    let left = Arc::new(Mutex::new(count));
    let mut handles = Vec::new();
    for n in 0..run.connections.min(count.max(1)) {
        let (left, endpoints, oidc) = (left.clone(), endpoints.clone(), oidc.clone());
        let mut conn = Conn::new(base, local(run, n))?;
        let who = identifier(&oidc, n);
        handles.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            let mut failures = Vec::new();
            let mut jar: Option<Jar> = None;
            let mut used = 0usize;
            loop {
                {
                    let mut left = left.lock().unwrap();
                    if *left == 0 {
                        break;
                    }
                    *left -= 1;
                }
                let code = if jar.is_none() || used >= per_session {
                    used = 0;
                    match login_flow(&mut conn, &endpoints, &oidc, &who).await {
                        Ok((code, session)) => {
                            jar = Some(session);
                            Ok(code)
                        }
                        Err(e) => Err(format!("login:{e}")),
                    }
                } else {
                    let pkce = pkce();
                    let path = authorization_request(&endpoints, &oidc, &pkce, true);
                    let cookies = jar.as_ref().map(Jar::header).unwrap_or_default();
                    match conn.send(Method::GET, &path, &cookies, None).await {
                        Ok(r) if r.status.is_redirection() => r
                            .headers
                            .get(header::LOCATION)
                            .and_then(|l| l.to_str().ok())
                            .and_then(code_in)
                            .map(|code| Code {
                                code,
                                verifier: pkce.verifier,
                            })
                            .ok_or_else(|| format!("authorize:{}:no-code", r.status.as_u16())),
                        Ok(r) => Err(format!("authorize:{}", r.status.as_u16())),
                        Err(e) => Err(format!("authorize:io:{}", short(&e))),
                    }
                };
                used += 1;
                match code {
                    Ok(code) => codes.push(code),
                    Err(e) => {
                        failures.push(e);
                        *left.lock().unwrap() += 1;
                        if failures.len() > 20 {
                            break;
                        }
                    }
                }
            }
            (codes, failures)
        }));
    }
    let mut codes = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for handle in handles {
        let (some, failed) = handle.await?;
        codes.extend(some);
        failures.extend(failed);
    }
    if codes.len() < count {
        failures.truncate(5);
        bail!("minted {} codes of {count}: {failures:?}", codes.len());
    }
    Ok(codes)
}

/// Exchanges one code; the answer's JSON when it carries an ID token.
async fn redeem(
    conn: &mut Conn,
    endpoints: &Endpoints,
    oidc: &OidcArgs,
    authorization: &str,
    code: &Code,
) -> Result<Bytes, String> {
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code.code),
        ("redirect_uri", &oidc.redirect_uri),
        ("code_verifier", &code.verifier),
    ]);
    let headers = [(header::AUTHORIZATION, authorization.to_owned())];
    match conn
        .send(Method::POST, &endpoints.token, &headers, Some(body))
        .await
    {
        Ok(r) if r.status == StatusCode::OK && contains(&r.body, b"\"id_token\"") => Ok(r.body),
        Ok(r) => {
            debug_answer(&r);
            Err(r.status.as_u16().to_string())
        }
        Err(e) => Err(format!("io:{}", short(&e))),
    }
}

/// With LOAD_DEBUG set, the first few unexpected answers go to stderr.
fn debug_answer(response: &Response) {
    static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if std::env::var_os("LOAD_DEBUG").is_some()
        && SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3
    {
        eprintln!(
            "unexpected answer {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(400)])
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- timing

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(run: &RunArgs) -> Self {
        let start = Instant::now() + Duration::from_secs_f64(run.warmup);
        Self {
            start,
            end: start + Duration::from_secs_f64(run.duration),
        }
    }

    fn over(&self) -> bool {
        Instant::now() >= self.end
    }
}

/// CPU seconds (user + system) the process has used, from /proc/PID/stat (100 ticks/s).
fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User and system time in a `stat` file of proc(5), in seconds.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds of Clef's password-hashing workers (threads `clef-hash-N`, which hash and do
/// nothing else), or None when the server has none (the peer's Node names every thread
/// `node`). Read over the same window as the process's CPU, it tells how much of the
/// server's CPU argon2 took, whatever the host's speed in other seconds.
fn hashing_cpu_seconds(pid: u32) -> Option<f64> {
    let mut sum = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with("clef-hash-") {
            let cpu = stat_cpu_seconds(&path.join("stat").to_string_lossy()).unwrap_or(0.0);
            sum = Some(sum.unwrap_or(0.0) + cpu);
        }
    }
    sum
}

/// The server's context switches, voluntary and not, summed over its threads.
fn context_switches(pid: u32) -> Option<u64> {
    let mut sum = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        sum += status
            .lines()
            .filter(|line| line.contains("ctxt_switches:"))
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(sum)
}

/// Writes a command to perf's control pipe (see `RunArgs::perf_control`).
fn perf_control(run: &RunArgs, command: &str) -> anyhow::Result<()> {
    if let Some(fifo) = &run.perf_control {
        use std::io::Write;
        let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo)?;
        writeln!(pipe, "{command}")?;
    }
    Ok(())
}

/// Reads the server's CPU time at the window's start and end.
/// The server's CPU seconds over the window, and those of its hashing threads if it has any.
type CpuWatch = tokio::task::JoinHandle<Option<(f64, Option<f64>)>>;

fn watch_cpu(pid: Option<u32>, window: Window) -> CpuWatch {
    tokio::spawn(async move {
        let pid = pid?;
        tokio::time::sleep_until(window.start.into()).await;
        let (before, hashing_before) = (cpu_seconds(pid)?, hashing_cpu_seconds(pid));
        tokio::time::sleep_until(window.end.into()).await;
        let hashing = hashing_cpu_seconds(pid)
            .zip(hashing_before)
            .map(|(after, before)| after - before);
        Some((cpu_seconds(pid)? - before, hashing))
    })
}

async fn cpu_extra(watch: CpuWatch, window: &Window) -> Value {
    if Instant::now() < window.end {
        watch.abort();
        return json!({});
    }
    match watch.await.ok().flatten() {
        Some((cpu, hashing)) => {
            let wall = (window.end - window.start).as_secs_f64();
            let mut extra = json!({ "server_cpu_s": (cpu * 100.0).round() / 100.0,
                    "server_cpu_util": (cpu / wall * 1000.0).round() / 1000.0 });
            if let Some(hashing) = hashing.filter(|h| *h > 0.0) {
                extra["hashing_cpu_s"] = json!((hashing * 100.0).round() / 100.0);
            }
            extra
        }
        None => json!({}),
    }
}

fn merged(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (a, _) => a,
    }
}

#[derive(Default)]
struct Record {
    ok: u64,
    latencies: Vec<u32>,
    errors: BTreeMap<String, u64>,
    last_end: Option<Instant>,
}

impl Record {
    fn note(&mut self, window: &Window, began: Instant, result: Result<(), String>) {
        let ended = Instant::now();
        if began < window.start || ended > window.end {
            return;
        }
        self.last_end = Some(self.last_end.map_or(ended, |t| t.max(ended)));
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latencies
                    .push((ended - began).as_micros().min(u32::MAX as u128) as u32);
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Record) {
        self.ok += other.ok;
        self.latencies.extend(other.latencies);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.last_end = match (self.last_end, other.last_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn report(self, scenario: &str, run: &RunArgs, window: &Window, extra: Value) -> String {
        let full = window.end - window.start;
        let seconds = if Instant::now() + Duration::from_millis(50) < window.end {
            // The work ran out before the window closed.
            self.last_end.map_or(full, |t| t - window.start)
        } else {
            full
        };
        self.report_seconds(scenario, run, seconds.as_secs_f64(), extra)
    }

    fn report_seconds(mut self, scenario: &str, run: &RunArgs, seconds: f64, extra: Value) -> String {
        self.latencies.sort_unstable();
        let pick = |q: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64) * q) as usize;
            f64::from(self.latencies[i.min(self.latencies.len() - 1)]) / 1000.0
        };
        let seconds = seconds.max(1e-6);
        let errors: u64 = self.errors.values().sum();
        let mut out = json!({
            "scenario": scenario,
            "label": run.label,
            "connections": run.connections,
            "count": self.ok,
            "errors": errors,
            "error_kinds": self.errors,
            "duration_s": (seconds * 1000.0).round() / 1000.0,
            "rps": ((self.ok as f64 / seconds) * 10.0).round() / 10.0,
            "p50_ms": (pick(0.50) * 1000.0).round() / 1000.0,
            "p99_ms": (pick(0.99) * 1000.0).round() / 1000.0,
        });
        if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
            out.extend(extra);
        }
        out.to_string()
    }
}

fn parse_base(run: &RunArgs) -> anyhow::Result<url::Url> {
    url::Url::parse(&run.base).context("--base")
}

fn local(run: &RunArgs, n: usize) -> Option<IpAddr> {
    run.sources.then(|| source(n))
}

async fn join(handles: Vec<tokio::task::JoinHandle<Record>>) -> anyhow::Result<Record> {
    let mut total = Record::default();
    for handle in handles {
        total.merge(handle.await?);
    }
    Ok(total)
}

// ---------------------------------------------------------------- scenarios

async fn get(run: RunArgs, path: String) -> anyhow::Result<String> {
    let base = parse_base(&run)?;
    let window = Window::new(&run);
    let cpu = watch_cpu(run.pid, window);
    let mut handles = Vec::new();
    for n in 0..run.connections {
        let mut conn = Conn::new(&base, local(&run, n))?;
        let path = path.clone();
        handles.push(tokio::spawn(async move {
            let mut record = Record::default();
            while !window.over() {
                let began = Instant::now();
                let result = match conn.send(Method::GET, &path, &[], None).await {
                    Ok(r) if r.status == StatusCode::OK => Ok(()),
                    Ok(r) => Err(r.status.as_u16().to_string()),
                    Err(e) => Err(format!("io:{}", short(&e))),
                };
                record.note(&window, began, result);
            }
            record
        }));
    }
    let record = join(handles).await?;
    let extra = merged(json!({ "path": path }), cpu_extra(cpu, &window).await);
    Ok(record.report("get", &run, &window, extra))
}

fn identifier(oidc: &OidcArgs, n: usize) -> String {
    format!("{}.{:03}", oidc.prefix, n % oidc.accounts.max(1))
}

async fn login(run: RunArgs, oidc: OidcArgs) -> anyhow::Result<String> {
    let base = parse_base(&run)?;
    let endpoints = Arc::new(discover(&base).await?);
    let oidc = Arc::new(oidc);
    let window = Window::new(&run);
    let cpu = watch_cpu(run.pid, window);
    let mut handles = Vec::new();
    for n in 0..run.connections {
        let mut conn = Conn::new(&base, local(&run, n))?;
        let (endpoints, oidc) = (endpoints.clone(), oidc.clone());
        handles.push(tokio::spawn(async move {
            let mut record = Record::default();
            let who = identifier(&oidc, n);
            while !window.over() {
                let began = Instant::now();
                let result = login_flow(&mut conn, &endpoints, &oidc, &who)
                    .await
                    .map(|_| ());
                record.note(&window, began, result);
            }
            record
        }));
    }
    let record = join(handles).await?;
    let extra = cpu_extra(cpu, &window).await;
    Ok(record.report("login", &run, &window, extra))
}

/// Exchanges the codes of `queue` over `connections` workers; within `window` if given.
async fn exchange_all(
    base: &url::Url,
    run: &RunArgs,
    endpoints: &Arc<Endpoints>,
    oidc: &Arc<OidcArgs>,
    queue: Vec<Code>,
    window: Window,
) -> anyhow::Result<Record> {
    let queue = Arc::new(Mutex::new(queue));
    let authorization = Arc::new(basic(oidc));
    let mut handles = Vec::new();
    for n in 0..run.connections {
        let mut conn = Conn::new(base, local(run, n))?;
        let (endpoints, oidc, queue, authorization) =
            (endpoints.clone(), oidc.clone(), queue.clone(), authorization.clone());
        handles.push(tokio::spawn(async move {
            let mut record = Record::default();
            while !window.over() {
                let Some(code) = queue.lock().unwrap().pop() else {
                    break;
                };
                let began = Instant::now();
                let result = redeem(&mut conn, &endpoints, &oidc, &authorization, &code)
                    .await
                    .map(|_| ());
                record.note(&window, began, result);
            }
            record
        }));
    }
    join(handles).await
}

async fn exchange(
    run: RunArgs,
    oidc: OidcArgs,
    max_codes: usize,
    per_session: usize,
) -> anyhow::Result<String> {
    let base = parse_base(&run)?;
    let endpoints = Arc::new(discover(&base).await?);
    let oidc = Arc::new(oidc);

    // Calibration batch: its rate sizes the batch of the timed run (not reported).
    let calibration = (run.connections * 40).max(2000);
    let began = Instant::now();
    let codes = mint(&base, &run, &endpoints, &oidc, calibration, per_session).await?;
    let mint_rate = calibration as f64 / began.elapsed().as_secs_f64();
    let began = Instant::now();
    let open = Window {
        start: began,
        end: began + Duration::from_secs(3600),
    };
    let record = exchange_all(&base, &run, &endpoints, &oidc, codes, open).await?;
    let rate = record.ok as f64 / began.elapsed().as_secs_f64();
    if record.ok == 0 {
        bail!("no code exchanged in calibration: {:?}", record.errors);
    }

    // Measured phases: mint a batch sized from the last rate, exchange it until it runs
    // out or the measured time is reached, again until DURATION seconds are measured.
    // Minting is never inside a measured phase.
    let mut total = Record::default();
    let (mut measured, mut wall, mut cpu) = (0.0f64, 0.0f64, Some(0.0f64));
    let mut switches = Some(0u64);
    let (mut minted, mut mint_seconds, mut batches) = (0usize, 0.0f64, 0usize);
    let mut rate = rate;
    while measured < run.duration - 0.05 {
        let remaining = run.duration - measured;
        let wanted = ((rate * remaining * 1.3) as usize + run.connections * 4).min(max_codes);
        let began = Instant::now();
        let codes = mint(&base, &run, &endpoints, &oidc, wanted, per_session).await?;
        mint_seconds += began.elapsed().as_secs_f64();
        minted += wanted;
        batches += 1;
        let start = Instant::now();
        let window = Window {
            start,
            end: start + Duration::from_secs_f64(remaining),
        };
        let cpu_before = run.pid.and_then(cpu_seconds);
        let switches_before = run.pid.and_then(context_switches);
        perf_control(&run, "enable")?;
        let record = exchange_all(&base, &run, &endpoints, &oidc, codes, window).await?;
        perf_control(&run, "disable")?;
        let phase = if window.over() {
            remaining
        } else {
            record
                .last_end
                .map_or(0.0, |t| (t - start).as_secs_f64())
        };
        let cpu_after = run.pid.and_then(cpu_seconds);
        switches = match (switches, switches_before, run.pid.and_then(context_switches)) {
            (Some(sum), Some(a), Some(b)) => Some(sum + b - a),
            _ => None,
        };
        wall += start.elapsed().as_secs_f64();
        cpu = match (cpu, cpu_before, cpu_after) {
            (Some(sum), Some(a), Some(b)) => Some(sum + b - a),
            _ => None,
        };
        if record.ok == 0 || phase <= 0.0 {
            bail!("no code exchanged in a measured phase: {:?}", record.errors);
        }
        rate = record.ok as f64 / phase;
        measured += phase;
        total.merge(record);
        if batches >= 20 {
            break;
        }
    }
    let mut extra = json!({
        "codes_minted": minted,
        "batches": batches,
        "mint_rps": (mint_rate * 10.0).round() / 10.0,
        "mint_s": (mint_seconds * 10.0).round() / 10.0,
        "calibration_rps": (rate * 10.0).round() / 10.0,
    });
    if let (Some(cpu), Value::Object(extra)) = (cpu, &mut extra) {
        extra.insert("server_cpu_s".into(), json!((cpu * 100.0).round() / 100.0));
        extra.insert(
            "server_cpu_util".into(),
            json!((cpu / wall.max(1e-6) * 1000.0).round() / 1000.0),
        );
        if let Some(switches) = switches {
            extra.insert("server_context_switches".into(), json!(switches));
        }
    }
    Ok(total.report_seconds("exchange", &run, measured, extra))
}

async fn refresh(run: RunArgs, oidc: OidcArgs) -> anyhow::Result<String> {
    let base = parse_base(&run)?;
    let endpoints = Arc::new(discover(&base).await?);
    let oidc = Arc::new(oidc);
    let codes = mint(&base, &run, &endpoints, &oidc, run.connections, 1).await?;
    let authorization = Arc::new(basic(&oidc));
    let mut first = Vec::new();
    {
        let mut conn = Conn::new(&base, None)?;
        for code in &codes {
            let body = redeem(&mut conn, &endpoints, &oidc, &authorization, code)
                .await
                .map_err(|e| anyhow!("exchange for a refresh token failed: {e}"))?;
            let answer: Value = serde_json::from_slice(&body)?;
            let token = answer["refresh_token"]
                .as_str()
                .ok_or_else(|| anyhow!("no refresh token in the code exchange"))?;
            first.push(token.to_owned());
        }
    }
    let window = Window::new(&run);
    let cpu = watch_cpu(run.pid, window);
    let mut handles = Vec::new();
    for (n, token) in first.into_iter().enumerate() {
        let mut conn = Conn::new(&base, local(&run, n))?;
        let (endpoints, authorization) = (endpoints.clone(), authorization.clone());
        handles.push(tokio::spawn(async move {
            let mut record = Record::default();
            let mut token = token;
            while !window.over() {
                let began = Instant::now();
                let body = form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]);
                let headers = [(header::AUTHORIZATION, authorization.to_string())];
                let result = match conn
                    .send(Method::POST, &endpoints.token, &headers, Some(body))
                    .await
                {
                    Ok(r) if r.status == StatusCode::OK => {
                        match serde_json::from_slice::<Value>(&r.body)
                            .ok()
                            .and_then(|v| v["refresh_token"].as_str().map(str::to_owned))
                        {
                            Some(next) if contains(&r.body, b"\"id_token\"") => {
                                token = next;
                                Ok(())
                            }
                            _ => Err("200:no-refresh-token".to_owned()),
                        }
                    }
                    Ok(r) => Err(r.status.as_u16().to_string()),
                    Err(e) => Err(format!("io:{}", short(&e))),
                };
                let failed = result.is_err();
                record.note(&window, began, result);
                if failed {
                    break; // the chain is broken
                }
            }
            record
        }));
    }
    let record = join(handles).await?;
    let extra = cpu_extra(cpu, &window).await;
    Ok(record.report("refresh", &run, &window, extra))
}

// ---------------------------------------------------------------- argon2, RSA

fn clef_argon2() -> anyhow::Result<argon2::Argon2<'static>> {
    let params = argon2::Params::new(19456, 2, 1, Some(32)).map_err(|e| anyhow!("{e}"))?;
    Ok(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

fn hashes(count: usize, prefix: &str, password: &str) -> anyhow::Result<String> {
    let argon = clef_argon2()?;
    let mut accounts = Vec::new();
    for n in 0..count {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill(&mut salt);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(password.as_bytes(), &salt, &mut out)
            .map_err(|e| anyhow!("{e}"))?;
        let phc = format!(
            "$argon2id$v=19$m=19456,t=2,p=1${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        );
        accounts.push(json!({ "identifier": format!("{prefix}.{n:03}"), "hash": phc }));
    }
    Ok(Value::Array(accounts).to_string())
}

fn bound_argon2(seconds: f64) -> anyhow::Result<String> {
    let argon = clef_argon2()?;
    let mut blocks = vec![argon2::Block::default(); 19456];
    let salt = [7u8; 16];
    let mut out = [0u8; 32];
    let began = Instant::now();
    let mut n = 0u64;
    while began.elapsed().as_secs_f64() < seconds {
        argon
            .hash_password_into_with_memory(b"Demo2026clef", &salt, &mut out, &mut blocks)
            .map_err(|e| anyhow!("{e}"))?;
        n += 1;
    }
    let elapsed = began.elapsed().as_secs_f64();
    Ok(json!({
        "bound": "argon2id",
        "params": "m=19456,t=2,p=1",
        "crate": "argon2 0.6 (RustCrypto), one thread, one reused block",
        "hashes": n,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "per_s": ((n as f64 / elapsed) * 100.0).round() / 100.0,
        "ms_each": ((elapsed * 1000.0 / n as f64) * 100.0).round() / 100.0,
    })
    .to_string())
}

fn bound_rsa(seconds: f64) -> anyhow::Result<String> {
    use josekit::jws::{JwsHeader, RS256};
    let pair = RS256.generate_key_pair(2048)?;
    let signer = RS256.signer_from_pem(pair.to_pem_private_key())?;
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id("bench-rs256");
    // About the size of Clef's ID token for `openid profile`.
    let claims = json!({
        "sub": "0f0e7a4c-2d9b-4d5a-8f1e-3c2b1a0d9e8f", "given_name": "Camille",
        "family_name": "Tempete", "name": "Camille Tempete", "iss": "http://127.0.0.1:8080",
        "aud": "clef-0123456789abcdef", "exp": 1_900_000_000, "iat": 1_899_996_400,
        "auth_time": 1_899_996_000, "sid": "Yk3p7fQm2Zr8s9T0uVwXyA", "amr": ["pwd"],
        "at_hash": "bWFkZSB1cCBhdCBoYXNo",
    });
    let payload = serde_json::to_vec(&claims)?;
    let began = Instant::now();
    let mut n = 0u64;
    while began.elapsed().as_secs_f64() < seconds {
        let token = josekit::jws::serialize_compact(&payload, &header, &signer)?;
        std::hint::black_box(token);
        n += 1;
    }
    let elapsed = began.elapsed().as_secs_f64();
    Ok(json!({
        "bound": "rs256",
        "crate": "josekit 0.10 (OpenSSL), compact JWS of an ID-token-sized payload, one thread",
        "signs": n,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "per_s": ((n as f64 / elapsed) * 10.0).round() / 10.0,
    })
    .to_string())
}
