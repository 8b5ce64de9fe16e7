//! Configuration: a TOML file, then the `CLEF_*` environment, merged by figment; every setting has its variable, and every default works with nothing installed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// Where Clef listens, what it calls itself, and where it keeps its data.
#[derive(Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Socket address of the HTTP listener.
    pub listen: SocketAddr,
    /// A second listener answering `/metrics` alone (the Prometheus
    /// exposition), which `listen` then does not serve: a port the public
    /// proxy never reaches (`0.0.0.0:9090` in a pod). Unset, `/metrics` is on
    /// `listen`, to be kept off the proxy's public side.
    pub metrics_listen: Option<SocketAddr>,
    /// The issuer URL; every absolute URL Clef emits derives from it.
    #[serde(serialize_with = "issuer_shown")]
    pub issuer: Url,
    /// Folder for the embedded database and the outboxes.
    pub data_dir: PathBuf,
    /// Folder holding the signing keys (generated on first start, mode 0600).
    pub keys_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file under `data_dir`.
    #[serde(serialize_with = "credentials_masked")]
    pub database_url: Option<SecretString>,
    /// `redis://…` for the short-lived store; in-process when absent. With
    /// `redis_cluster`, one or more nodes of the cluster, comma-separated.
    #[serde(serialize_with = "credentials_masked")]
    pub redis_url: Option<SecretString>,
    /// `redis_url` names nodes of a Redis Cluster: keys are spread over its
    /// shards (every key and script of Clef's touches one key).
    pub redis_cluster: bool,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// With `rediss://` (TLS): a PEM file of the authority that signed the
    /// Redis server's certificate, when it is not a public one (a managed
    /// Redis's usually is: the Mozilla roots are built in).
    pub redis_ca_file: Option<PathBuf>,
    /// Reverse proxies (addresses or CIDR ranges) whose `Forwarded` and
    /// `X-Forwarded-For` headers are believed; the client is the rightmost hop
    /// that is not one of them. Empty: the TCP peer is the client.
    #[serde(
        deserialize_with = "deserialize_proxies",
        serialize_with = "proxies_shown"
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// The one header the trusted proxies write the client's address in; the
    /// other is ignored, as a proxy passes a client's own copy of it through.
    pub forwarded_header: ForwardedHeader,
    /// Lifetimes, in seconds.
    pub session_ttl: i64,
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    /// Refresh tokens: dead after this long unused, their family after this
    /// long whatever its use, and a reuse within `refresh_token_grace` seconds
    /// of the first use is a client's retry, not a theft.
    pub refresh_token_idle_ttl: i64,
    pub refresh_token_absolute_ttl: i64,
    pub refresh_token_grace: i64,
    /// Log as JSON lines (production) rather than human-readable text.
    pub log_json: bool,
    /// A letter's provisional account expires this many months after the letter date.
    pub letter_validity_months: u8,
    /// An email confirmation link works this many months.
    pub confirmation_validity_months: u8,
    /// Password rule (SPEC §3.2, seeds): length bounds, letters and digits required.
    pub password_min: usize,
    pub password_max: usize,
    /// `smtp://host:25`, `smtp://host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465`;
    /// without it, mail is written as `.eml` files under `data_dir/outbox`.
    #[serde(serialize_with = "credentials_masked")]
    pub smtp_url: Option<SecretString>,
    /// The From of every mail.
    pub mail_from: String,
    /// Connections served at once; beyond it Clef stops accepting until one
    /// ends. Lowered at start if the file-descriptor limit cannot hold it.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (slow clients are cut off).
    pub header_read_timeout: u64,
    /// Seconds a request may take, body included, before it is answered 408.
    pub request_timeout: u64,
    /// A password-reset link works this many seconds (SPEC §3.5).
    pub recovery_link_ttl: i64,
    /// Recovery screens say when an identifier is unknown or has no confirmed
    /// address (the seeds' messages), instead of answering the same to all (§3.7).
    pub recovery_explicit: bool,
    /// The SMS gateway: an `https` URL taking one POST per message. Without it,
    /// each SMS is written as a JSON file under `data_dir/outbox/sms`.
    #[serde(serialize_with = "url_shown")]
    pub sms_gateway_url: Option<Url>,
    /// HTTP Basic credentials for the gateway (when the user name is set).
    pub sms_gateway_username: Option<String>,
    #[serde(serialize_with = "masked")]
    pub sms_gateway_password: Option<SecretString>,
    /// A bearer token for the gateway, for providers that take one instead.
    #[serde(serialize_with = "masked")]
    pub sms_gateway_token: Option<SecretString>,
    /// The request body, a template with `to`, `text` and `sender`
    /// (`{{ to | tojson }}` in JSON, `{{ to | urlencode }}` in a form).
    pub sms_gateway_body: String,
    /// The body's `Content-Type`.
    pub sms_gateway_content_type: String,
    /// Seconds a gateway call may take, and how many times a failed call is retried.
    pub sms_gateway_timeout: u64,
    pub sms_gateway_retries: u32,
    /// The sender name shown on the phone (11 characters at most).
    pub sms_sender: String,
    /// SMS sent per day at most, whatever asks for them: bounds the bill.
    pub sms_daily_limit: u64,
    /// Dynamic client registration (RFC 7591) without an initial access token.
    pub registration_open: bool,
    /// Audit events are kept this many days.
    pub audit_retention_days: i64,
    /// A closed account (grouped into another, closed by the school, a
    /// letter's expired after use) keeps its credentials and contact details
    /// this many days, then loses them (see `accounts::retention`).
    pub closed_account_retention_days: i64,
    /// An academy's theme: templates replacing Clef's, and files served at
    /// `/theme/` (see `web::theme`).
    pub theme_dir: Option<PathBuf>,
    /// The time zone dates are shown in on the pages (IANA name: an overseas
    /// académie's own, `America/Cayenne`, `Indian/Reunion`…).
    pub time_zone: String,
    /// The `aud` a client's signed assertion (`private_key_jwt`) may carry.
    pub client_assertion_audience: AssertionAudience,
}

/// The audiences a client assertion may name (`client_assertion_audience`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum AssertionAudience {
    /// The issuer identifier, as one string: what draft-ietf-oauth-rfc7523bis
    /// requires since the audience-injection attack (2025, CVE-2025-27370),
    /// where a malicious server's metadata gets a client to address an
    /// assertion to another server's token endpoint and replays it there.
    /// Current libraries (openid-client, oauth4webapi, nimbus, Duende) send it.
    #[serde(rename = "issuer")]
    Issuer,
    /// Also the URL of the endpoint called (`/token`, `/par`, `/introspect`,
    /// `/revoke`), alone or in a list, as RFC 7523 §3 and OIDC Core §9 let
    /// clients built before send it: exposed to that attack.
    #[serde(rename = "issuer-or-endpoint")]
    IssuerOrEndpoint,
}

/// Which header carries the client's address through the trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, as nginx, ingress-nginx, HAProxy, Traefik and cloud
    /// load balancers write it.
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded` (`for=`), for proxies that write that one.
    #[serde(rename = "forwarded")]
    Forwarded,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            issuer: Url::parse("http://localhost:8080").expect("static URL"),
            data_dir: PathBuf::from("data"),
            keys_dir: PathBuf::from("keys"),
            database_url: None,
            redis_url: None,
            redis_cluster: false,
            redis_prefix: "clef:".into(),
            redis_ca_file: None,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            session_ttl: 12 * 3600,
            code_ttl: 60,
            access_token_ttl: 3600,
            id_token_ttl: 3600,
            refresh_token_idle_ttl: 14 * 24 * 3600,
            refresh_token_absolute_ttl: 90 * 24 * 3600,
            refresh_token_grace: 5,
            log_json: false,
            letter_validity_months: 3,
            confirmation_validity_months: 3,
            password_min: 8,
            password_max: 14,
            smtp_url: None,
            mail_from: "Clef <no-reply@localhost>".into(),
            max_connections: 10_000,
            header_read_timeout: 10,
            request_timeout: 30,
            recovery_link_ttl: 3600,
            recovery_explicit: false,
            sms_gateway_url: None,
            sms_gateway_username: None,
            sms_gateway_password: None,
            sms_gateway_token: None,
            sms_gateway_body: r#"{"to": {{ to | tojson }}, "text": {{ text | tojson }}, "sender": {{ sender | tojson }}}"#.into(),
            sms_gateway_content_type: "application/json".into(),
            sms_gateway_timeout: 5,
            sms_gateway_retries: 2,
            sms_sender: "Clef".into(),
            sms_daily_limit: 1000,
            registration_open: false,
            audit_retention_days: 365,
            closed_account_retention_days: 365,
            theme_dir: None,
            time_zone: "Europe/Paris".into(),
            client_assertion_audience: AssertionAudience::Issuer,
        }
    }
}

/// `10.0.0.0/8, 192.0.2.7, ::1`: addresses or ranges, separated by commas or spaces.
fn parse_proxies(list: &str) -> anyhow::Result<Vec<IpNet>> {
    list.split([',', ' '])
        .filter(|item| !item.is_empty())
        .map(parse_proxy)
        .collect()
}

/// `172.16.0.0/12` or a single address, `192.0.2.7`.
fn parse_proxy(item: &str) -> anyhow::Result<IpNet> {
    match item.parse::<IpNet>() {
        Ok(net) => Ok(net),
        Err(_) => Ok(IpNet::from(item.parse::<IpAddr>().with_context(|| {
            format!("{item:?} is neither an address nor a CIDR range")
        })?)),
    }
}

/// A list in the file (`["10.0.0.0/8", "::1"]`), or one string of them, as
/// the environment gives it (`CLEF_TRUSTED_PROXIES="10.0.0.0/8, ::1"`).
fn deserialize_proxies<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Proxies {
        List(Vec<String>),
        Text(String),
    }
    match Proxies::deserialize(d)? {
        Proxies::List(items) => items
            .iter()
            .map(|item| parse_proxy(item).map_err(serde::de::Error::custom))
            .collect(),
        Proxies::Text(list) => parse_proxies(&list).map_err(serde::de::Error::custom),
    }
}

/// A secret as `clef config check` prints it: whether it is set, never what it is.
fn masked<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("********"),
        None => s.serialize_none(),
    }
}

/// A URL that may hold credentials (a database's, Redis's, the mail
/// server's), as `clef config check` prints it: where it points, its
/// password and query masked (`postgres://clef:********@db:5432/clef`);
/// masked whole when it does not read as URLs (comma-separated for a Redis
/// Cluster's nodes).
fn credentials_masked<S: serde::Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let Some(secret) = secret else {
        return s.serialize_none();
    };
    use secrecy::ExposeSecret;
    let shown: Option<Vec<String>> = secret
        .expose_secret()
        .split(',')
        .map(|one| Url::parse(one.trim()).ok().map(|url| shown_url(&url)))
        .collect();
    match shown {
        Some(urls) => s.serialize_str(&urls.join(",")),
        None => s.serialize_str("********"),
    }
}

/// As `describe` shows it: secrets, and the SMS gateway's credentials in
/// its URL, masked.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe().map_err(|_| std::fmt::Error)?)
    }
}

/// The issuer as tokens and discovery say it (no trailing slash).
fn issuer_shown<S: serde::Serializer>(issuer: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(issuer.as_str().trim_end_matches('/'))
}

fn url_shown<S: serde::Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(&shown_url(url)),
        None => s.serialize_none(),
    }
}

/// A URL as shown (`config check`, errors): a password or a query, where
/// gateways put their credentials, masked.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("********"));
    }
    if shown.query().is_some() {
        shown.set_query(Some("********"));
    }
    shown.into()
}

fn proxies_shown<S: serde::Serializer>(proxies: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(proxies.len()))?;
    for proxy in proxies {
        seq.serialize_element(&proxy.to_string())?;
    }
    seq.end()
}

/// Settings whose value may hold credentials: an error about one does not quote it.
const SECRET_URLS: &[&str] = &["database_url", "redis_url", "smtp_url", "sms_gateway_url"];

/// `CLEF_*` variables that are not settings and are read elsewhere: the
/// configuration file, the log filter; and the prefixes of those the tests and
/// the benchmarks read.
const OTHER_VARIABLES: &[&str] = &["CLEF_CONFIG", "CLEF_LOG"];
const OTHER_PREFIXES: &[&str] = &["CLEF_TEST_", "CLEF_BENCH_"];

/// The `CLEF_*` variables of `env` that Clef does not read, each told with
/// the setting it likely stands for (`CLEF_SESSIONTTL`: `CLEF_SESSION_TTL`):
/// in a container configured by its environment alone, a misspelt variable
/// would otherwise leave its setting at the default without a word.
pub fn unknown_variables(env: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let names = setting_names();
    let mut unknown: Vec<String> = env
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !OTHER_VARIABLES.contains(&key.as_str()))
        .filter(|key| !OTHER_PREFIXES.iter().any(|p| key.starts_with(p)))
        .filter_map(|key| {
            let typed = key.strip_prefix("CLEF_")?.to_ascii_lowercase();
            (!names.contains(&typed.as_str())).then_some((key, typed))
        })
        .map(|(key, typed)| {
            let likely = names
                .iter()
                .map(|name| (strsim::damerau_levenshtein(&typed, name), name))
                .min()
                .filter(|(distance, _)| *distance <= 3);
            match likely {
                Some((_, name)) => format!("{key} (CLEF_{}?)", name.to_ascii_uppercase()),
                None => key,
            }
        })
        .collect();
    unknown.sort();
    unknown
}

/// The settings' names, as serde knows them: the keys a file may hold and,
/// upper-cased after `CLEF_`, the environment variables read.
fn setting_names() -> &'static [&'static str] {
    struct Names(Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &mut Names {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("names only"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(serde::de::Error::custom("names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    static NAMES: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = Names(None);
        let _ = Config::deserialize(&mut names);
        names.0.unwrap_or(&[])
    })
}

impl Config {
    /// Reads `path` if given (or `clef.toml` when it exists), then the
    /// `CLEF_*` environment, which wins.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let default_file = Path::new("clef.toml");
        let file = path.or_else(|| default_file.exists().then_some(default_file));
        Self::from_sources(file, std::env::vars())
    }

    /// The configuration of `file` (if any) and of the `CLEF_*` variables of
    /// `env`, through figment: every setting has its variable
    /// (`CLEF_` + its name in capitals); values are typed as the file's would
    /// be (`1`/`true`/`yes` for a switch); an empty variable counts as unset;
    /// other `CLEF_*` variables (`CLEF_LOG`, `CLEF_CONFIG`) are not settings.
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        use figment::Figment;
        use figment::providers::{Format, Serialized, Toml};
        let mut figment = Figment::new();
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "reading configuration {}: no such file",
                file.display()
            );
            figment = figment.merge(Toml::file_exact(file));
        }
        let names = setting_names();
        let overrides: std::collections::BTreeMap<String, String> = env
            .into_iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("CLEF_")?.to_ascii_lowercase();
                (names.contains(&name.as_str()) && !value.is_empty()).then_some((name, value))
            })
            .collect();
        let config: Self = figment
            .merge(Serialized::defaults(overrides))
            .extract_lossy()
            .map_err(|e| {
                // A URL that holds credentials is not echoed back (error
                // messages reach the container's logs).
                let secret: Vec<String> = e
                    .clone()
                    .into_iter()
                    .filter_map(|e| e.path.last().cloned())
                    .filter(|name| SECRET_URLS.contains(&name.as_str()))
                    .collect();
                if secret.is_empty() {
                    // Each bad setting by its names in the file and in the
                    // environment, and what is wrong with it (figment's own
                    // message names the provider, a Rust type).
                    let named: Vec<String> = e
                        .into_iter()
                        .map(|e| match e.path.last() {
                            Some(_) if matches!(e.kind, figment::error::Kind::UnknownField(..)) => {
                                e.kind.to_string()
                            }
                            Some(name) => format!(
                                "{name} (CLEF_{}): {}",
                                name.to_ascii_uppercase(),
                                e.kind
                            ),
                            None => e.kind.to_string(),
                        })
                        .collect();
                    anyhow::anyhow!("configuration: {}", named.join("; "))
                } else {
                    anyhow::anyhow!(
                        "configuration: {} is not a valid URL (its value is not shown: it may hold a secret)",
                        secret.join(", ")
                    )
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as TOML, secrets masked (`clef config check`).
    /// The stores in use head it: an unset URL has no line of its own.
    pub fn describe(&self) -> anyhow::Result<String> {
        let database = match &self.database_url {
            Some(_) => "database_url".to_owned(),
            None => format!(
                "SQLite in {} (database_url unset)",
                self.data_dir.join("clef.db").display()
            ),
        };
        let store = match &self.redis_url {
            Some(_) if self.redis_cluster => "Redis Cluster at redis_url",
            Some(_) => "Redis at redis_url",
            None => "in this process (redis_url unset): one instance only",
        };
        let mail = match &self.smtp_url {
            Some(_) => "SMTP at smtp_url".to_owned(),
            None => format!(
                "written to {} (smtp_url unset)",
                self.outbox_dir().join("mail").display()
            ),
        };
        Ok(format!(
            "# database: {database}\n# short-lived store: {store}\n# mail: {mail}\n{}",
            toml::to_string(self)?
        ))
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.metrics_listen == Some(self.listen) {
            bail!(
                "metrics_listen must differ from listen ({}): it is the port /metrics is moved to",
                self.listen
            );
        }
        let issuer = &self.issuer;
        if !matches!(issuer.scheme(), "https" | "http") || issuer.host().is_none() {
            bail!("issuer must be an http(s) URL, got {issuer}");
        }
        // Reset links, confirmation links and cookies would travel in clear
        // text: plain http on loopback only (a demo, a test, behind a proxy on
        // the same host, where the issuer names the proxy's https anyway).
        if issuer.scheme() == "http" && !crate::domain::is_loopback(issuer) {
            bail!(
                "issuer must be https (http only on loopback: 127.0.0.1, ::1, localhost), got {issuer}"
            );
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            bail!("issuer must have no query or fragment (OIDC Discovery §3), got {issuer}");
        }
        // Clef answers at the root of its host: its pages link to `/connexion`,
        // and discovery under a path (`/clef/.well-known/…`, RFC 8414 §3's
        // `/.well-known/…/clef`) would be another site's.
        if issuer.path() != "/" {
            bail!(
                "issuer must be the root of its host, without a path (give Clef a host name of its own), got {issuer}"
            );
        }
        for (name, ttl) in [
            ("session_ttl", self.session_ttl),
            ("code_ttl", self.code_ttl),
            ("access_token_ttl", self.access_token_ttl),
            ("id_token_ttl", self.id_token_ttl),
            ("refresh_token_idle_ttl", self.refresh_token_idle_ttl),
            (
                "refresh_token_absolute_ttl",
                self.refresh_token_absolute_ttl,
            ),
        ] {
            if ttl <= 0 {
                bail!("{name} must be positive, got {ttl}");
            }
        }
        // A key that stopped signing stays published this long: an ID token
        // must not outlive the key it can be checked with.
        if self.id_token_ttl > crate::keys::RETENTION {
            bail!(
                "id_token_ttl is at most {} seconds (2 days, as long as a retired key stays published), got {}",
                crate::keys::RETENTION,
                self.id_token_ttl
            );
        }
        // RFC 6749 §4.1.2: ten minutes at most is recommended; what withdraws
        // a consent is kept that long (`AccessTokens::revoke_for`).
        if self.code_ttl > crate::oidc::grants::MAX_CODE_TTL {
            bail!(
                "code_ttl is at most {} seconds (RFC 6749 §4.1.2), got {}",
                crate::oidc::grants::MAX_CODE_TTL,
                self.code_ttl
            );
        }
        if self.refresh_token_idle_ttl > self.refresh_token_absolute_ttl {
            bail!(
                "refresh_token_idle_ttl ({}) is longer than refresh_token_absolute_ttl ({}): a refresh token ends at the absolute lifetime whatever its use",
                self.refresh_token_idle_ttl,
                self.refresh_token_absolute_ttl
            );
        }
        if !(0..=60).contains(&self.refresh_token_grace) {
            bail!("refresh_token_grace is between 0 and 60 seconds");
        }
        if self.password_min < 8 || self.password_max < self.password_min || self.password_max > 128
        {
            bail!("the password rule needs 8 <= password_min <= password_max <= 128");
        }
        if !(1..=24).contains(&self.letter_validity_months) {
            bail!("letter_validity_months is between 1 and 24");
        }
        if !(1..=24).contains(&self.confirmation_validity_months) {
            bail!("confirmation_validity_months is between 1 and 24");
        }
        if self.max_connections == 0 || self.header_read_timeout == 0 || self.request_timeout == 0 {
            bail!("max_connections, header_read_timeout and request_timeout must be positive");
        }
        if !(1..=3650).contains(&self.audit_retention_days) {
            bail!("audit_retention_days is between 1 and 3650");
        }
        if !(1..=3650).contains(&self.closed_account_retention_days) {
            bail!("closed_account_retention_days is between 1 and 3650");
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            bail!(
                "time_zone must be an IANA time zone name (Europe/Paris, Indian/Reunion…), got {:?}",
                self.time_zone
            );
        }
        if !(300..=7 * 24 * 3600).contains(&self.recovery_link_ttl) {
            bail!("recovery_link_ttl is between 300 seconds and 7 days");
        }
        if let Some(url) = &self.sms_gateway_url
            && !(url.scheme() == "https"
                || (url.scheme() == "http" && crate::domain::is_loopback(url)))
        {
            bail!(
                "sms_gateway_url must be https (http only on loopback), got {}",
                shown_url(url)
            );
        }
        if self.sms_gateway_timeout == 0 || self.sms_gateway_retries > 5 {
            bail!("sms_gateway_timeout must be positive and sms_gateway_retries at most 5");
        }
        if self.sms_sender.is_empty() || self.sms_sender.chars().count() > 11 {
            bail!("sms_sender has 1 to 11 characters");
        }
        Ok(())
    }

    /// The time zone of [`Self::time_zone`] (checked at load).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The outbox folder for mail (and later SMS) when no gateway is configured.
    pub fn outbox_dir(&self) -> std::path::PathBuf {
        self.data_dir.join("outbox")
    }

    /// The issuer as it appears in tokens: no trailing slash.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// An absolute URL under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer_str(), path)
    }

    /// The refresh-token lifetimes in force for a client: its own, else the server's.
    pub fn refresh_policy(
        &self,
        client: &crate::oidc::clients::RefreshLifetimes,
    ) -> crate::oidc::refresh::Policy {
        crate::oidc::refresh::Policy {
            idle: client.idle.unwrap_or(self.refresh_token_idle_ttl),
            absolute: client.absolute.unwrap_or(self.refresh_token_absolute_ttl),
            grace: self.refresh_token_grace,
        }
    }

    /// Cookies carry `Secure` whenever the public face of Clef is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.scheme() == "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration file in a temporary folder, and its path.
    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clef.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn misspelt_variables_are_named_with_the_setting_they_likely_mean() {
        let unknown = unknown_variables(env(&[
            ("CLEF_SESSIONTTL", "5"),
            ("CLEF_TRUSTED_PROXY", "10.0.0.0/8"),
            ("CLEF_WHATEVER_THIS_IS", "1"),
            ("CLEF_SESSION_TTL", "600"),
            ("CLEF_LOG", "debug"),
            ("CLEF_CONFIG", "/etc/clef.toml"),
            ("CLEF_TEST_DATABASE_URL", "postgres://elsewhere"),
            ("HOME", "/root"),
        ]));
        assert_eq!(
            unknown,
            [
                "CLEF_SESSIONTTL (CLEF_SESSION_TTL?)",
                "CLEF_TRUSTED_PROXY (CLEF_TRUSTED_PROXIES?)",
                "CLEF_WHATEVER_THIS_IS",
            ]
        );
    }

    #[test]
    fn a_code_lives_ten_minutes_at_most() {
        let too_long = Config::from_sources(None, env(&[("CLEF_CODE_TTL", "601")]));
        assert!(
            too_long
                .unwrap_err()
                .to_string()
                .contains("code_ttl is at most 600 seconds")
        );
        assert!(Config::from_sources(None, env(&[("CLEF_CODE_TTL", "600")])).is_ok());
    }

    #[test]
    fn an_id_token_may_not_outlive_its_published_key_nor_a_bad_gateway_url_show_its_key() {
        let too_long = Config::from_sources(None, env(&[("CLEF_ID_TOKEN_TTL", "259200")]));
        assert!(
            too_long
                .unwrap_err()
                .to_string()
                .contains("id_token_ttl is at most 172800 seconds")
        );
        assert!(Config::from_sources(None, env(&[("CLEF_ID_TOKEN_TTL", "172800")])).is_ok());
        let bad = Config::from_sources(
            None,
            env(&[("CLEF_SMS_GATEWAY_URL", "sms.example/send?api_key=s3cret")]),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("sms_gateway_url is not a valid URL"), "{bad}");
        assert!(!bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let (_dir, path) = file("listen = \"0.0.0.0:9000\"\nissuer = \"https://a.example\"");
        let config = Config::from_sources(
            Some(&path),
            env(&[
                ("CLEF_ISSUER", "https://idp.example/"),
                ("CLEF_DATA_DIR", "/var/lib/clef"),
                ("CLEF_LOG", "debug"),
                ("CLEF_TEST_DATABASE_URL", "postgres://elsewhere"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.issuer_str(), "https://idp.example");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/clef"));
        assert_eq!(config.endpoint("/token"), "https://idp.example/token");
    }

    #[test]
    fn every_setting_has_its_variable_typed_like_the_file() {
        let config = Config::from_sources(
            None,
            env(&[
                ("CLEF_SESSION_TTL", "600"),
                ("CLEF_PASSWORD_MIN", "10"),
                ("CLEF_LETTER_VALIDITY_MONTHS", "4"),
                ("CLEF_LOG_JSON", "yes"),
                ("CLEF_RECOVERY_EXPLICIT", "1"),
                ("CLEF_SMS_SENDER", "Academie"),
                ("CLEF_DATABASE_URL", ""),
            ]),
        )
        .unwrap();
        assert_eq!(config.session_ttl, 600);
        assert_eq!(config.password_min, 10);
        assert_eq!(config.letter_validity_months, 4);
        assert!(config.log_json && config.recovery_explicit);
        assert_eq!(config.sms_sender, "Academie");
        assert!(config.database_url.is_none(), "an empty variable is unset");
        // Every field of the struct is a setting, so has a variable.
        assert!(setting_names().len() > 30, "{:?}", setting_names());
        assert!(setting_names().contains(&"audit_retention_days"));
        let wrong = Config::from_sources(None, env(&[("CLEF_SESSION_TTL", "soon")]));
        assert!(wrong.unwrap_err().to_string().contains("session_ttl"));
    }

    #[test]
    fn metrics_listen_is_another_port() {
        let moved = Config::from_sources(None, env(&[("CLEF_METRICS_LISTEN", "0.0.0.0:9090")]));
        assert_eq!(
            moved.unwrap().metrics_listen,
            Some(([0, 0, 0, 0], 9090).into())
        );
        let same = Config::from_sources(
            None,
            env(&[
                ("CLEF_LISTEN", "127.0.0.1:8080"),
                ("CLEF_METRICS_LISTEN", "127.0.0.1:8080"),
            ]),
        );
        assert!(same.unwrap_err().to_string().contains("metrics_listen"));
    }

    #[test]
    fn the_forwarded_header_is_x_forwarded_for_unless_set() {
        assert_eq!(
            Config::from_sources(None, env(&[]))
                .unwrap()
                .forwarded_header,
            ForwardedHeader::XForwardedFor
        );
        let config =
            Config::from_sources(None, env(&[("CLEF_FORWARDED_HEADER", "forwarded")])).unwrap();
        assert_eq!(config.forwarded_header, ForwardedHeader::Forwarded);
        assert!(
            Config::from_sources(None, env(&[("CLEF_FORWARDED_HEADER", "x-real-ip")])).is_err()
        );
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let (_dir, path) = file("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]");
        let config = Config::from_sources(Some(&path), env(&[])).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        let config = Config::from_sources(
            Some(&path),
            env(&[("CLEF_TRUSTED_PROXIES", "192.0.2.7, 172.16.0.0/12 ::1")]),
        )
        .unwrap();
        let shown: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["192.0.2.7/32", "172.16.0.0/12", "::1/128"]);
        assert!(
            Config::from_sources(None, env(&[("CLEF_TRUSTED_PROXIES", "proxy.local")])).is_err()
        );
    }

    #[test]
    fn unknown_keys_and_bad_issuers_are_refused() {
        let (_dir, path) = file("listne = \"x\"");
        assert!(Config::from_sources(Some(&path), env(&[])).is_err());
        let config = Config {
            issuer: Url::parse("https://idp.example/?a=b").unwrap(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        // Plain http on loopback only: links and cookies travel in clear text.
        for (issuer, valid) in [
            ("http://idp.example", false),
            ("http://10.0.0.5:8080", false),
            ("http://127.0.0.1:8080", true),
            ("http://localhost:8080", true),
            ("http://[::1]:8080", true),
            ("https://idp.example", true),
            ("https://idp.example/", true),
            // Served at the root only: nothing answers under a path.
            ("https://ent.example/clef", false),
            ("http://127.0.0.1:8080/clef/", false),
        ] {
            let config = Config {
                issuer: Url::parse(issuer).unwrap(),
                ..Config::default()
            };
            assert_eq!(config.validate().is_ok(), valid, "{issuer}");
        }
    }

    #[test]
    fn the_description_masks_secrets_and_reads_back() {
        let config = Config {
            database_url: Some(
                "postgres://u:hunter2@db/clef?sslpassword=x"
                    .to_string()
                    .into(),
            ),
            redis_url: Some(
                "redis://:hunter2@r1:6379,redis://:hunter2@r2:6379"
                    .to_string()
                    .into(),
            ),
            redis_cluster: true,
            smtp_url: Some("not a URL hunter2".to_string().into()),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Config::default()
        };
        let text = config.describe().unwrap();
        // Where each points, its password and query masked; masked whole if
        // it is not a URL.
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("database_url = \"postgres://u:********@db/clef?********\""),
            "{text}"
        );
        assert!(
            text.contains("redis_url = \"redis://:********@r1:6379,redis://:********@r2:6379\""),
            "{text}"
        );
        assert!(text.contains("smtp_url = \"********\""), "{text}");
        assert!(
            text.contains("trusted_proxies = [\"10.0.0.0/8\"]"),
            "{text}"
        );
        // Without secrets, the description is a configuration file of its own.
        let (_dir, path) = file(&Config::default().describe().unwrap());
        Config::from_sources(Some(&path), env(&[])).unwrap();
        // The issuer as tokens say it; the stores in use said when unset.
        let text = Config::default().describe().unwrap();
        assert!(
            text.contains("issuer = \"http://localhost:8080\"\n"),
            "{text}"
        );
        assert!(text.contains("# database: SQLite in "), "{text}");
        assert!(
            text.contains("# short-lived store: in this process"),
            "{text}"
        );
    }

    #[test]
    fn the_sms_gateway_s_credentials_do_not_show() {
        let config = Config {
            sms_gateway_url: Some(
                Url::parse("https://clef:hunter2@sms.example/send?api_key=s3cret").unwrap(),
            ),
            ..Config::default()
        };
        let text = config.describe().unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("sms.example/send"), "{text}");
        let plain = Config {
            sms_gateway_url: Some(Url::parse("http://sms.example/?key=s3cret").unwrap()),
            ..Config::default()
        };
        assert!(!plain.validate().unwrap_err().to_string().contains("s3cret"));
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let config = Config {
            database_url: Some("postgres://u:hunter2@db/clef".to_string().into()),
            sms_gateway_url: Some(Url::parse("https://sms.example/send?api_key=s3cret").unwrap()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("sms.example/send"), "{shown}");
    }

    #[test]
    fn connection_limits_come_from_the_environment_and_must_be_positive() {
        let config = Config::from_sources(
            None,
            env(&[
                ("CLEF_MAX_CONNECTIONS", "500"),
                ("CLEF_HEADER_READ_TIMEOUT", "5"),
                ("CLEF_REQUEST_TIMEOUT", "20"),
            ]),
        )
        .unwrap();
        assert_eq!(config.max_connections, 500);
        assert_eq!(config.header_read_timeout, 5);
        assert_eq!(config.request_timeout, 20);
        assert!(Config::from_sources(None, env(&[("CLEF_HEADER_READ_TIMEOUT", "0")])).is_err());
    }

    #[test]
    fn the_time_zone_is_paris_unless_set_and_must_exist() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config.zone().iana_name(), Some("Europe/Paris"));
        let reunion = Config::from_sources(None, env(&[("CLEF_TIME_ZONE", "Indian/Reunion")]));
        assert_eq!(reunion.unwrap().zone().iana_name(), Some("Indian/Reunion"));
        let refused = Config::from_sources(None, env(&[("CLEF_TIME_ZONE", "Paris")]));
        assert!(refused.unwrap_err().to_string().contains("time_zone"));
    }

    #[test]
    fn client_assertions_name_the_issuer_unless_the_endpoint_is_allowed() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config.client_assertion_audience, AssertionAudience::Issuer);
        let legacy = Config::from_sources(
            None,
            env(&[("CLEF_CLIENT_ASSERTION_AUDIENCE", "issuer-or-endpoint")]),
        );
        assert_eq!(
            legacy.unwrap().client_assertion_audience,
            AssertionAudience::IssuerOrEndpoint
        );
        let refused =
            Config::from_sources(None, env(&[("CLEF_CLIENT_ASSERTION_AUDIENCE", "endpoint")]));
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("CLEF_CLIENT_ASSERTION_AUDIENCE")
        );
    }

    #[test]
    fn a_bad_value_is_named_by_its_setting_and_its_variable() {
        let refused = Config::from_sources(None, env(&[("CLEF_SESSION_TTL", "abc")]))
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("configuration: session_ttl (CLEF_SESSION_TTL): invalid type"),
            "{refused}"
        );
        // Not figment's provider or a Rust type.
        assert!(
            !refused.contains("src/") && !refused.contains("BTreeMap"),
            "{refused}"
        );
    }
}
