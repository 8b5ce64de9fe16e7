//! Mail through lettre: SMTP (plain, STARTTLS or TLS) when `smtp_url` is set,
//! else `.eml` files under the outbox folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::domain::typography::{french_html, french_text};
use crate::domain::{EmailAddress, Locale};
use crate::metrics::{Delivery, Metrics};

#[derive(Clone)]
enum Transport {
    /// The relay, and its URL to connect anew: a send cut off by
    /// `SEND_TIMEOUT` may leave its connection in the pool, mid-command, for
    /// the next mail to stumble on; the transport is then built again, which
    /// closes the pool's connections.
    Smtp {
        url: secrecy::SecretString,
        live: Arc<RwLock<AsyncSmtpTransport<Tokio1Executor>>>,
    },
    /// The folder of `.eml` files.
    Outbox(PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    metrics: Metrics,
    /// `SEND_TIMEOUT` (shorter in tests).
    send_timeout: std::time::Duration,
}

/// A message ready to send: text and HTML bodies from the same template, in the
/// language of the person being served (`mail/en/…` for English).
pub struct Mail {
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The language it is written in (its `Content-Language`).
    pub language: Locale,
}

/// `Content-Language` (RFC 3282): what a mail reader or a screen reader
/// takes the text for.
#[derive(Clone)]
struct ContentLanguage(Locale);

impl lettre::message::header::Header for ContentLanguage {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Locale::from_tag(s)
            .map(Self)
            .ok_or_else(|| format!("not a language of Clef: {s}").into())
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.code().into())
    }
}

/// Each template in French (`mail/…`) and in English (`mail/en/…`).
macro_rules! mails {
    ($($name:literal),* $(,)?) => {
        &[
            $((concat!("mail/", $name), include_str!(concat!("../../templates/mail/", $name))),)*
            $((concat!("mail/en/", $name), include_str!(concat!("../../templates/mail/en/", $name))),)*
        ]
    };
}

const TEMPLATES: &[(&str, &str)] = mails![
    "base.html",
    "confirm_email.txt",
    "confirm_email.html",
    "email_change_notice.txt",
    "email_change_notice.html",
    "identifier_reminder.txt",
    "identifier_reminder.html",
    "reset_password.txt",
    "reset_password.html",
    "password_changed.txt",
    "password_changed.html",
    "grouped_notice.txt",
    "grouped_notice.html",
    "phone_change_notice.txt",
    "phone_change_notice.html",
];

/// Every mail template, by name (an academy's theme may replace them).
pub fn templates() -> &'static [(&'static str, &'static str)] {
    TEMPLATES
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        crate::web::theme::environment(TEMPLATES, crate::web::theme::installed(), |_| {})
            .unwrap_or_else(|e| panic!("{e:#}"))
    })
}

/// A mail's subject in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub french: &'a str,
    pub english: &'a str,
}

impl Mail {
    /// Renders `mail/<name>.txt` and `mail/<name>.html` (auto-escaped) with `context`,
    /// or `mail/en/<name>.*` and the English subject when the person is served in English.
    pub fn render(
        to: EmailAddress,
        subject: Subject<'_>,
        name: &str,
        context: minijinja::Value,
    ) -> anyhow::Result<Self> {
        let env = environment();
        let language = Locale::current();
        let (folder, subject) = match language {
            Locale::Fr => ("mail", subject.french),
            Locale::En => ("mail/en", subject.english),
        };
        let text = env
            .get_template(&format!("{folder}/{name}.txt"))?
            .render(&context)?;
        let html = env
            .get_template(&format!("{folder}/{name}.html"))?
            .render(&context)?;
        let (text, html) = match language {
            Locale::Fr => (french_text(&text), french_html(&html)),
            Locale::En => (text, html),
        };
        Ok(Self {
            to,
            subject: subject.into(),
            text,
            html,
            language,
        })
    }
}

/// `claire.martin@example.org` → `c***@example.org`: enough to follow a
/// delivery in the logs without writing addresses down.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// A delivery's error, its cause chain as the logs show it: a server's
/// refusal often quotes the recipient, so every address in it is masked.
pub fn masked_error(error: &anyhow::Error) -> String {
    masked_addresses(&format!("{error:#}"))
}

/// `text` with every address in it masked (`c***@example.org`).
fn masked_addresses(text: &str) -> String {
    let is_address = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if is_address(c) {
            word.push(c);
            continue;
        }
        if word.contains('@') {
            out.push_str(&mask(&word));
        } else {
            out.push_str(&word);
        }
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// The sender and the SMTP server's URL read, without connecting (also
/// `clef config check`).
pub fn check(config: &Config) -> anyhow::Result<()> {
    sender(config)?;
    if let Some(url) = &config.smtp_url {
        smtp(url)?;
    }
    Ok(())
}

fn sender(config: &Config) -> anyhow::Result<Mailbox> {
    config
        .mail_from
        .parse()
        .with_context(|| format!("mail_from {:?}", config.mail_from))
}

/// The transport `url` names, or what is wrong with it in the operator's
/// words (lettre's one message covers every case); never its value, which
/// may hold the server's password.
fn smtp(
    url: &secrecy::SecretString,
) -> anyhow::Result<lettre::transport::smtp::AsyncSmtpTransportBuilder> {
    let parsed = url::Url::parse(url.expose_secret()).map_err(|_| {
        anyhow::anyhow!("smtp_url is not a URL (its value is not shown: it may hold a secret)")
    })?;
    let tls = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v);
    match (parsed.scheme(), tls.as_deref()) {
        ("smtp", None | Some("required" | "opportunistic")) | ("smtps", _) => {}
        ("smtp", Some(other)) => anyhow::bail!(
            "smtp_url: tls={other:?} is not a choice: tls=required (STARTTLS, refused without \
             it) or tls=opportunistic; smtps:// for TLS from the start"
        ),
        (scheme, _) => {
            anyhow::bail!("smtp_url: the scheme must be smtp:// or smtps://, not {scheme}://")
        }
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
        .map_err(|e| anyhow::anyhow!("smtp_url: {}", anyhow::Error::from(e).root_cause()))
}

/// How long a mail may take to hand to the relay, greeting to the end of the
/// message: lettre bounds only the connection, and a relay that accepts it
/// but never answers would hold the send (and the page waiting for it)
/// forever, uncounted.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn smtp_transport(
    url: &secrecy::SecretString,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(smtp(url)?.build())
}

impl Mailer {
    pub fn from_config(config: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        let from = sender(config)?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp {
                url: url.clone(),
                live: Arc::new(RwLock::new(smtp_transport(url)?)),
            },
            None => {
                let dir = config.outbox_dir().join("mail");
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder
                    .create(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Transport::Outbox(dir)
            }
        };
        Ok(Self {
            transport,
            from,
            metrics,
            send_timeout: SEND_TIMEOUT,
        })
    }

    /// Sends in the background: the answer to the person neither waits for
    /// the mail server nor shows by its timing whether a mail went out (the
    /// recovery screens). A failure is logged and counted, as with `send`.
    pub fn dispatch(&self, mail: Mail) {
        let mailer = self.clone();
        // In the request's span: its log lines carry the request's id.
        let send = async move {
            // `send` logs and counts the failure; no one is waiting for it.
            let _ = mailer.send(mail).await;
        };
        tokio::spawn(tracing::Instrument::in_current_span(send));
    }

    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let to: Mailbox = mail.to.as_str().parse().context("recipient address")?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentLanguage(mail.language))
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .context("building the message")?;
        let (via, result) = match &self.transport {
            Transport::Smtp { url, live } => {
                let smtp = live.read().unwrap_or_else(PoisonError::into_inner).clone();
                let sent = match tokio::time::timeout(self.send_timeout, smtp.send(message)).await {
                    Ok(sent) => sent.map(|_| ()).map_err(anyhow::Error::from),
                    Err(_) => {
                        // The URL was read at start: it builds again.
                        if let Ok(fresh) = smtp_transport(url) {
                            *live.write().unwrap_or_else(PoisonError::into_inner) = fresh;
                        }
                        Err(anyhow::anyhow!(
                            "the mail server did not answer within {} ms",
                            self.send_timeout.as_millis()
                        ))
                    }
                };
                ("smtp", sent)
            }
            Transport::Outbox(dir) => ("outbox", write_eml(dir, &message).await),
        };
        match &result {
            Ok(()) => {
                self.metrics.mail(Delivery::sent);
                tracing::info!(to = %mask(mail.to.as_str()), subject = %mail.subject, via, "mail sent")
            }
            Err(e) => {
                self.metrics.mail(Delivery::failed);
                let error = masked_error(e);
                tracing::error!(to = %mask(mail.to.as_str()), subject = %mail.subject, via, error, "mail not sent")
            }
        }
        result
    }
}

/// Writes the message as `<uuid>.eml`, as lettre's file transport would, but
/// created `0600` whatever the umask and the folder: mail carries links that
/// open accounts. It is written as a hidden file first and renamed whole, so
/// whoever reads the outbox never sees half a message.
async fn write_eml(dir: &Path, message: &Message) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let id = uuid::Uuid::new_v4();
    let writing = dir.join(format!(".{id}.eml"));
    let path = dir.join(format!("{id}.eml"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(&writing)
        .await
        .with_context(|| format!("creating {}", writing.display()))?;
    file.write_all(&message.formatted()).await?;
    file.flush().await?;
    tokio::fs::rename(&writing, &path)
        .await
        .with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_in_logs() {
        assert_eq!(mask("claire.martin@example.org"), "c***@example.org");
        assert_eq!(
            masked_addresses(
                "permanent error (550): 5.1.1 <claire.martin@example.org>: Recipient address rejected"
            ),
            "permanent error (550): 5.1.1 <c***@example.org>: Recipient address rejected"
        );
    }

    /// A relay that takes the connection and never says a word: the send
    /// fails after `SEND_TIMEOUT` and is counted, instead of waiting forever.
    #[tokio::test]
    async fn a_relay_that_never_answers_fails_the_send_and_is_counted() {
        let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", relay.local_addr().unwrap());
        let config = Config {
            smtp_url: Some(secrecy::SecretString::from(url)),
            ..Config::default()
        };
        let metrics = Metrics::default();
        let mut mailer = Mailer::from_config(&config, metrics.clone()).unwrap();
        mailer.send_timeout = TEST_TIMEOUT;
        let sending = tokio::spawn(async move { mailer.send(notice()).await });
        let (_held, _) = relay.accept().await.unwrap();
        let error = sending.await.unwrap().unwrap_err();
        assert!(error.to_string().contains("did not answer"), "{error:#}");
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("clef_mail_total{outcome=\"failed\"} 1"),
            "{}",
            metrics.render().unwrap()
        );
    }

    /// Long enough for a loopback relay on a loaded machine, short enough
    /// for a test that waits it out.
    const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

    /// A relay that speaks SMTP, but leaves the end of its `stall`-th
    /// message unanswered: how many messages it accepted.
    async fn relay(stall: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let (seen, accepted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (seen, accepted) = (seen.clone(), counted.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 relay ESMTP\r\n").await.unwrap();
                    let mut in_data = false;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let answer: &[u8] = if in_data {
                            if line != "." {
                                continue;
                            }
                            in_data = false;
                            if seen.fetch_add(1, Ordering::SeqCst) + 1 == stall {
                                std::future::pending::<()>().await;
                            }
                            accepted.fetch_add(1, Ordering::SeqCst);
                            b"250 queued\r\n"
                        } else {
                            match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                                "DATA" => {
                                    in_data = true;
                                    b"354 go on\r\n"
                                }
                                "QUIT" => b"221 bye\r\n",
                                _ => b"250 ok\r\n",
                            }
                        };
                        if write.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn notice() -> Mail {
        Locale::Fr
            .sync_scope(|| {
                Mail::render(
                    EmailAddress::parse("claire.martin@example.org").unwrap(),
                    Subject {
                        french: "Regroupement de votre compte",
                        english: "Your account was grouped",
                    },
                    "grouped_notice",
                    minijinja::context! { name => "Claire", identifier => "c", principal => "p" },
                )
            })
            .unwrap()
    }

    /// A relay that stops answering in the middle of a message: that mail
    /// fails; the next goes through on a new connection, not on the one left
    /// mid-command in the pool.
    #[tokio::test]
    async fn after_a_relay_stalled_the_next_mail_goes_through() {
        let (url, accepted) = relay(2).await;
        let config = Config {
            smtp_url: Some(secrecy::SecretString::from(url)),
            ..Config::default()
        };
        let mut mailer = Mailer::from_config(&config, Metrics::default()).unwrap();
        mailer.send_timeout = TEST_TIMEOUT;
        mailer.send(notice()).await.unwrap();
        let stalled = mailer.send(notice()).await.unwrap_err();
        assert!(
            stalled.to_string().contains("did not answer"),
            "{stalled:#}"
        );
        // lettre puts a dropped connection back in its pool from a task of
        // its own: let it.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        mailer.send(notice()).await.unwrap();
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    fn locale_code(locale: Locale) -> &'static str {
        match locale {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }

    #[test]
    fn every_mail_template_renders() {
        let to = EmailAddress::parse("a@example.org").unwrap();
        let accounts = vec![
            minijinja::context! { identifier => "lea", kind => "guardian", people => vec!["Léa <b>"] },
        ];
        let context = minijinja::context! {
            name => "Léa <b>", link => "https://idp/x?a=1&b=2", identifier => "lea", new_email => "n@example.org",
            deadline => "01/01/2027", reference => "1419347900823", minutes => 60, login => "https://idp/login", accounts,
            principal => "claire.martin",
        };
        let subject = Subject {
            french: "sujet",
            english: "subject",
        };
        for (locale, hello) in [(Locale::Fr, "Bonjour"), (Locale::En, "Hello")] {
            for name in [
                "confirm_email",
                "email_change_notice",
                "identifier_reminder",
                "reset_password",
                "password_changed",
                "grouped_notice",
                "phone_change_notice",
            ] {
                let mail = locale
                    .sync_scope(|| Mail::render(to.clone(), subject, name, context.clone()))
                    .unwrap();
                assert!(
                    mail.html.contains("Léa &lt;b&gt;"),
                    "{name}: HTML is escaped"
                );
                assert!(mail.text.contains("Léa <b>"), "{name}: text is not");
                assert!(
                    mail.text.starts_with(hello)
                        && mail
                            .html
                            .contains(&format!("lang=\"{}\"", locale_code(locale)))
                );
            }
        }
    }
}
