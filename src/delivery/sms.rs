//! SMS through an HTTP gateway when `sms_gateway_url` is set (one POST per
//! message, its body rendered from the `sms_gateway_body` template), else
//! `.json` files under the outbox folder. The text carries a code: it is never
//! logged, and the number only masked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::TypicalDuration;
use crate::config::Config;
use crate::metrics::{Delivery, Metrics};

/// The name the body template is registered under: no extension, so that
/// minijinja escapes nothing (neither HTML nor JSON).
const BODY: &str = "sms_gateway_body";
/// The wait before the first retry; doubled before each of the next.
const BACKOFF: Duration = Duration::from_millis(200);
/// Where the gateway's moving average starts, before any send is measured.
const GATEWAY_LATENCY_START: Duration = Duration::from_millis(50);

enum Transport {
    /// Boxed: the client and the template are large, the outbox a path.
    Gateway(Box<Gateway>),
    /// The folder of `.json` files.
    Outbox(PathBuf),
}

struct Gateway {
    http: reqwest::Client,
    url: url::Url,
    /// Holds the body template only.
    templates: Environment<'static>,
    content_type: HeaderValue,
    auth: Auth,
    retries: u32,
}

enum Auth {
    None,
    Basic {
        username: String,
        password: Option<SecretString>,
    },
    Bearer(SecretString),
}

/// Sends the SMS of the flows that need one (account recovery).
pub struct SmsSender {
    transport: Transport,
    sender: String,
    metrics: Metrics,
    /// How long a successful send takes.
    latency: TypicalDuration,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway answered, but not 2xx (the last answer, after any retries).
    #[error("the SMS gateway refused the message (HTTP {status}: {reason})")]
    Rejected { status: u16, reason: String },
    /// No answer from the gateway, after the retries.
    #[error("the SMS gateway could not be reached: {0}")]
    Unreachable(String),
    /// The body template failed to render for this message.
    #[error("rendering sms_gateway_body: {0}")]
    Body(String),
    #[error("writing the SMS to the outbox: {0:#}")]
    Outbox(anyhow::Error),
}

/// `0612345678` → `06 •• •• •• 78`, `+33612345678` → `+33 6 •• •• •• 78`:
/// the first digits and the last two, enough to recognise one's own number on
/// a screen or to follow a delivery in the logs.
pub fn mask_phone(phone: &str) -> String {
    let trimmed = phone.trim();
    let mut digits: Vec<char> = trimmed.chars().filter(char::is_ascii_digit).collect();
    let mut international = trimmed.starts_with('+');
    if !international && digits.len() > 10 && digits.starts_with(&['0', '0']) {
        // 0033612345678: the international prefix written with zeros.
        digits.drain(..2);
        international = true;
    }
    let shown = if international { 3 } else { 2 };
    if digits.len() < shown + 2 + 4 {
        // Too short to hide enough of it.
        return "••••".into();
    }
    let head: String = if international {
        format!("+{} {}", digits[..2].iter().collect::<String>(), digits[2])
    } else {
        digits[..2].iter().collect()
    };
    let hidden = digits.len() - shown - 2;
    let mut masked = head;
    for group in 0..hidden.div_ceil(2) {
        masked.push(' ');
        masked.push_str(if group * 2 + 1 < hidden {
            "••"
        } else {
            "•"
        });
    }
    masked.push(' ');
    masked.extend(&digits[digits.len() - 2..]);
    masked
}

/// The gateway's settings read (its body rendered once), without sending
/// anything (also `clef config check`).
pub fn check(config: &Config) -> anyhow::Result<()> {
    if let Some(url) = &config.sms_gateway_url {
        Gateway::from_config(url, config)?;
    }
    Ok(())
}

impl SmsSender {
    pub fn from_config(config: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        let (transport, start) = match &config.sms_gateway_url {
            Some(url) => (
                Transport::Gateway(Box::new(Gateway::from_config(url, config)?)),
                GATEWAY_LATENCY_START,
            ),
            None => {
                let dir = config.outbox_dir().join("sms");
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder
                    .create(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                (Transport::Outbox(dir), Duration::ZERO)
            }
        };
        Ok(Self {
            transport,
            sender: config.sms_sender.clone(),
            metrics,
            latency: TypicalDuration::starting_at(start),
        })
    }

    /// Sends one SMS; `Err` when the gateway refused it or could not be reached
    /// after the retries (or the outbox could not be written).
    pub async fn send(&self, to: &str, text: &str) -> Result<(), SmsError> {
        let started = Instant::now();
        let (via, attempts, result) = match &self.transport {
            Transport::Gateway(gateway) => {
                let (attempts, result) = gateway.send(to, text, &self.sender).await;
                ("gateway", attempts, result)
            }
            Transport::Outbox(dir) => (
                "outbox",
                1,
                write_json(dir, to, text, &self.sender)
                    .await
                    .map_err(SmsError::Outbox),
            ),
        };
        let elapsed = started.elapsed();
        let to = mask_phone(to);
        match &result {
            Ok(()) => {
                self.latency.record(elapsed);
                self.metrics.sms(Delivery::sent);
                tracing::info!(%to, via, attempts, elapsed_ms = elapsed.as_millis() as u64, "sms sent");
            }
            Err(e) => {
                self.metrics.sms(Delivery::failed);
                tracing::error!(%to, via, attempts, elapsed_ms = elapsed.as_millis() as u64, error = %e, "sms not sent");
            }
        }
        result
    }

    /// How long a successful send usually takes: a moving average of the last
    /// successful sends (zero for a fresh outbox, 50 ms for a fresh gateway).
    /// Answers that send nothing wait this long too, so that timing does not
    /// tell which accounts exist.
    pub fn typical_latency(&self) -> Duration {
        self.latency.get()
    }
}

impl Gateway {
    fn from_config(url: &url::Url, config: &Config) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(config.sms_gateway_timeout);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the SMS gateway's HTTP client")?;

        let mut templates = Environment::new();
        templates.set_auto_escape_callback(|_| AutoEscape::None);
        // A misspelt variable is an error, not an empty string sent to the gateway.
        templates.set_undefined_behavior(UndefinedBehavior::Strict);
        templates
            .add_template_owned(BODY, config.sms_gateway_body.clone())
            .map_err(|e| anyhow::anyhow!("sms_gateway_body: {e:#}"))?;
        // Unknown filters and variables show only when rendering: try it once now.
        render(&templates, "+33612345678", "123456", &config.sms_sender)
            .map_err(|e| anyhow::anyhow!("sms_gateway_body: {e:#}"))?;

        let content_type =
            HeaderValue::from_str(&config.sms_gateway_content_type).with_context(|| {
                format!(
                    "sms_gateway_content_type {:?}",
                    config.sms_gateway_content_type
                )
            })?;
        let auth = match (&config.sms_gateway_username, &config.sms_gateway_token) {
            (Some(username), _) => Auth::Basic {
                username: username.clone(),
                password: config.sms_gateway_password.clone(),
            },
            (None, Some(token)) => Auth::Bearer(token.clone()),
            (None, None) => Auth::None,
        };
        Ok(Self {
            http,
            url: url.clone(),
            templates,
            content_type,
            auth,
            retries: config.sms_gateway_retries,
        })
    }

    /// Posts the message, retrying on no answer, 5xx and 429; returns the
    /// number of attempts made and the outcome.
    async fn send(&self, to: &str, text: &str, sender: &str) -> (u32, Result<(), SmsError>) {
        let body = match render(&self.templates, to, text, sender) {
            Ok(body) => body,
            // `{e}`, not `{e:#}`: the alternate form lists the variables, the text among them.
            Err(e) => return (0, Err(SmsError::Body(e.to_string()))),
        };
        let masked = mask_phone(to);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self.request(body.clone()).send().await {
                Ok(response) if response.status().is_success() => return (attempt, Ok(())),
                Ok(response) => {
                    let status = response.status();
                    let retry = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                    (
                        retry,
                        SmsError::Rejected {
                            status: status.as_u16(),
                            reason: gateway_reason(response).await,
                        },
                    )
                }
                Err(e) => (!e.is_builder(), SmsError::Unreachable(describe(e))),
            };
            let (retry, error) = outcome;
            if !retry || attempt > self.retries {
                return (attempt, Err(error));
            }
            let wait = BACKOFF * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(to = %masked, attempt, error = %error, retry_in_ms = wait.as_millis() as u64, "sms gateway failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn request(&self, body: String) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, self.content_type.clone())
            .body(body);
        match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(
                username,
                password.as_ref().map(|p| p.expose_secret().to_owned()),
            ),
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
        }
    }
}

fn render(
    templates: &Environment<'static>,
    to: &str,
    text: &str,
    sender: &str,
) -> Result<String, minijinja::Error> {
    templates
        .get_template(BODY)?
        .render(minijinja::context! { to, text, sender })
}

/// Why the gateway says it refused (its answer's first 200 characters, on
/// one line), for the log: « insufficient credit », « invalid sender ».
async fn gateway_reason(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < 1024 {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    shown_reason(&String::from_utf8_lossy(&body))
}

/// [`gateway_reason`]'s text: on one line, and every number of four digits
/// or more masked, written in one piece or in groups (`+33 6 12 34 56 78`,
/// `06.12.34.56.78`), in case the answer quotes the phone or the message,
/// whose code opens an account. Shorter ones (an error code) stay.
fn shown_reason(body: &str) -> String {
    let text: Vec<char> = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let mut shown: Vec<char> = text.clone();
    let mut start = 0;
    while start < text.len() {
        if !(text[start].is_ascii_digit() || text[start] == '+') {
            start += 1;
            continue;
        }
        // A number: digits, and the signs that group them.
        let mut end = start;
        while end < text.len()
            && (text[end].is_ascii_digit()
                || matches!(text[end], '+' | ' ' | '.' | '-' | '(' | ')'))
        {
            end += 1;
        }
        if text[start..end]
            .iter()
            .filter(|c| c.is_ascii_digit())
            .count()
            >= 4
        {
            for c in &mut shown[start..end] {
                if c.is_ascii_digit() {
                    *c = '•';
                }
            }
        }
        start = end.max(start + 1);
    }
    let shown: String = shown.into_iter().collect();
    match shown.trim() {
        "" => "no reason given".into(),
        reason => reason.to_owned(),
    }
}

/// A transport error in one line, without the URL (it may carry credentials):
/// what failed and its deepest cause (`connection refused`, `timed out`…).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut cause: &dyn std::error::Error = &error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    format!("{kind}: {cause}")
}

/// Writes the message as `<uuid>.json`, created `0600` whatever the umask and
/// the folder: the text carries a code that opens an account. Written as a
/// hidden file first and renamed whole, so whoever reads the outbox never
/// sees half a message (as `mail::write_eml`).
async fn write_json(dir: &Path, to: &str, text: &str, sender: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let message = serde_json::json!({
        "to": to,
        "text": text,
        "sender": sender,
        "created_at": time::OffsetDateTime::now_utc().unix_timestamp(),
    });
    let id = uuid::Uuid::new_v4();
    let writing = dir.join(format!(".{id}.json"));
    let path = dir.join(format!("{id}.json"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(&writing)
        .await
        .with_context(|| format!("creating {}", writing.display()))?;
    file.write_all(&serde_json::to_vec_pretty(&message)?)
        .await?;
    file.flush().await?;
    tokio::fs::rename(&writing, &path)
        .await
        .with_context(|| format!("renaming {}", writing.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_reason_keeps_its_words_and_masks_numbers_however_grouped() {
        for (body, shown) in [
            ("insufficient credit (E21)", "insufficient credit (E21)"),
            (
                "bad number +33 6 12 34 56 78",
                "bad number +•• • •• •• •• ••",
            ),
            ("to 06.12.34.56.78: refused", "to ••.••.••.••.••: refused"),
            ("text was \"code 123456\"", "text was \"code ••••••\""),
            ("line1\r\nline2", "line1  line2"),
            ("   ", "no reason given"),
        ] {
            assert_eq!(shown_reason(body), shown, "{body:?}");
        }
    }

    #[test]
    fn phone_numbers_are_masked() {
        assert_eq!(mask_phone("0612345678"), "06 •• •• •• 78");
        assert_eq!(mask_phone("06 12 34 56 78"), "06 •• •• •• 78");
        assert_eq!(mask_phone("+33612345678"), "+33 6 •• •• •• 78");
        assert_eq!(mask_phone("+33 6 12 34 56 78"), "+33 6 •• •• •• 78");
        assert_eq!(mask_phone("0033612345678"), "+33 6 •• •• •• 78");
        assert_eq!(mask_phone("+447911123456"), "+44 7 •• •• •• • 56");
        for short in ["", "12", "+3361", "061234"] {
            assert_eq!(mask_phone(short), "••••", "{short:?}");
        }
        for phone in ["0612345678", "+33612345678", "+447911123456"] {
            let masked = mask_phone(phone);
            assert!(!masked.contains("1234"), "{masked}");
        }
    }

    #[tokio::test]
    async fn the_outbox_holds_one_private_json_file_per_sms() {
        let data = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        let sms = SmsSender::from_config(&config, Metrics::default()).unwrap();
        assert_eq!(sms.typical_latency(), Duration::ZERO);
        sms.send("+33612345678", "Votre code : 123456")
            .await
            .unwrap();

        let dir = config.outbox_dir().join("sms");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "json");
        let message: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(message["to"], "+33612345678");
        assert_eq!(message["text"], "Votre code : 123456");
        assert_eq!(message["sender"], "Clef");
        let created_at = message["created_at"].as_i64().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - 60..=now).contains(&created_at), "{created_at}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&files[0]), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let text = sms.metrics.render().unwrap();
        assert!(
            text.contains("clef_sms_total{outcome=\"sent\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn a_broken_body_template_is_a_configuration_error() {
        let data = tempfile::tempdir().unwrap();
        for body in ["{{ to | tojson ", "{{ to | nosuchfilter }}", "{{ phone }}"] {
            let config = Config {
                data_dir: data.path().to_owned(),
                sms_gateway_url: Some("http://127.0.0.1:9/sms".parse().unwrap()),
                sms_gateway_body: body.into(),
                ..Config::default()
            };
            let error = SmsSender::from_config(&config, Metrics::default())
                .err()
                .expect(body);
            assert!(error.to_string().contains("sms_gateway_body"), "{error}");
        }
    }

    #[test]
    fn the_gateway_average_moves_towards_recent_sends() {
        let data = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: data.path().to_owned(),
            sms_gateway_url: Some("http://127.0.0.1:9/sms".parse().unwrap()),
            ..Config::default()
        };
        let sms = SmsSender::from_config(&config, Metrics::default()).unwrap();
        assert_eq!(sms.typical_latency(), GATEWAY_LATENCY_START);
        for _ in 0..50 {
            sms.latency.record(Duration::from_millis(300));
        }
        let latency = sms.typical_latency();
        assert!(
            (Duration::from_millis(295)..=Duration::from_millis(300)).contains(&latency),
            "{latency:?}"
        );
    }
}
