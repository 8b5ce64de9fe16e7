//! The `clef` subcommands.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::accounts::staff::{self, Revoked};
use crate::accounts::store::{self as accounts, NewAccount};
use crate::accounts::{
    Account, AccountError, AccountKind, AccountState, EstablishmentChange, Passwords,
};
use crate::app::Clef;
use crate::audit;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::{
    BirthDate, ClassName, EmailAddress, Identifier, PersonName, Rank, RedirectUri, Uai,
};
use crate::oidc::clients::{self, NewClient, RefreshLifetimes};
use crate::storage::{self, Db};

#[derive(Parser)]
#[command(
    name = "clef",
    version,
    about = "OpenID Connect identity provider for school families"
)]
pub struct Cli {
    /// Configuration file (TOML), else `CLEF_CONFIG` (empty counts as unset);
    /// `clef.toml` in the current directory is read when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP until SIGTERM or Ctrl-C.
    Serve {
        /// Load the demo data first (see `clef demo`).
        #[arg(long)]
        demo: bool,
        /// With --demo: load it even though the issuer is not on loopback.
        #[arg(long, requires = "demo")]
        allow_public: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage establishments.
    Establishment {
        #[command(subcommand)]
        command: EstablishmentCommand,
    },
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// The configuration in force (file, then CLEF_* variables), checked.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage back-office staff: an establishment's, or the academy's.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Print the audit trail, newest first: one account's, or everyone's.
    Audit {
        /// Account id or identifier.
        #[arg(long)]
        account: Option<String>,
        /// How many days back.
        #[arg(long, default_value_t = 30)]
        days: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Manage guardianships.
    Guardian {
        #[command(subcommand)]
        command: GuardianCommand,
    },
    /// Manage OpenID Connect clients (relying parties).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Import a school's pupil file (CSV): students and their legal guardians.
    Import {
        /// UAI of the establishment the pupils belong to.
        #[arg(long)]
        establishment: String,
        #[arg(long)]
        file: PathBuf,
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import the good rows of a file with bad ones, which are listed and
        /// left out (without it, a file with a bad row is refused whole).
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Print the notification letters of provisional accounts (PDF, one A4 page
    /// each, or CSV for mail merges). Reprinting shows the same passwords.
    Letters {
        #[arg(long)]
        establishment: String,
        #[arg(long)]
        class: Option<String>,
        /// One account (id or identifier).
        #[arg(long)]
        account: Option<String>,
        #[arg(long, value_parser = ["pdf", "csv"], default_value = "pdf")]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Load a demo establishment, a parent with two children, a student and a
    /// demo client, and print how to log in. Their password is published in
    /// the README: refused unless the issuer is on loopback (a trial on this
    /// machine) or `--allow-public` is given (a shared test server).
    Demo {
        /// Load it even though the issuer is not on loopback.
        #[arg(long)]
        allow_public: bool,
    },
    /// List and rotate the signing keys.
    Keys {
        #[command(subcommand)]
        command: crate::keys::cli::KeysCommand,
    },
}

#[derive(Subcommand)]
enum EstablishmentCommand {
    /// Create an establishment; prints its UAI and its id.
    Create {
        /// UAI code: 7 digits and a letter, e.g. 0590001A.
        #[arg(long)]
        uai: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        details: DetailOptions,
    },
    /// Change an establishment's name or details; prints it as it now is.
    Update {
        #[arg(long)]
        uai: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        details: DetailOptions,
    },
    /// Print an establishment as it is.
    Show {
        #[arg(long)]
        uai: String,
    },
}

/// What an establishment's letters print besides its name; an empty value
/// clears a detail.
#[derive(clap::Args)]
struct DetailOptions {
    /// Street address (« 12 rue des Écoles »), under the name on its letters.
    #[arg(long)]
    address: Option<String>,
    /// Postcode and town (« 59000 Lille »).
    #[arg(long)]
    city: Option<String>,
    /// How families reach the school (« secretariat@…, 03 20 … »).
    #[arg(long)]
    contact: Option<String>,
    /// Its portal (ENT), where its letters send families to sign in
    /// (https). Unset: Clef's own login page.
    #[arg(long)]
    portal_url: Option<String>,
}

impl DetailOptions {
    /// The change these options make, checked (every field in error told;
    /// a portal on this machine only for a Clef there: `config`'s issuer).
    fn change(&self, name: Option<&str>, config: &Config) -> anyhow::Result<EstablishmentChange> {
        let input = crate::accounts::EstablishmentInput {
            name,
            address: self.address.as_deref(),
            city: self.city.as_deref(),
            contact: self.contact.as_deref(),
            portal_url: self.portal_url.as_deref(),
        };
        let local = crate::domain::is_loopback(&config.issuer);
        EstablishmentChange::checked(&input, local).map_err(|refused| {
            let told: Vec<String> = refused.iter().map(|(_, e)| e.to_string()).collect();
            anyhow::anyhow!(told.join(" "))
        })
    }
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an active account.
    Create {
        #[arg(long, value_parser = ["guardian", "student", "staff"])]
        kind: String,
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        /// jj/mm/aaaa or aaaa-mm-jj.
        #[arg(long)]
        birthdate: Option<String>,
        /// Recorded as confirmed: an operator vouches for it.
        #[arg(long)]
        email: Option<String>,
        /// UAI of the student's establishment.
        #[arg(long, requires = "class")]
        establishment: Option<String>,
        #[arg(long, requires = "establishment")]
        class: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the configuration and print it as TOML, secrets masked.
    Check,
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create a staff account for the back office (at /etablissement).
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["establishments", "academy"])))]
    Create {
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        #[arg(long)]
        email: Option<String>,
        /// UAI of an establishment the staff member manages (repeat for several).
        #[arg(long = "establishment")]
        establishments: Vec<String>,
        /// The academy operator: every establishment.
        #[arg(long)]
        academy: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Take a staff member's access away: some establishments, or all (the
    /// account is then closed and its sessions end at their next request).
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["establishments", "all"])))]
    Revoke {
        /// Staff account id or identifier.
        #[arg(long)]
        identifier: String,
        /// UAI of an establishment to take away (repeat for several).
        #[arg(long = "establishment")]
        establishments: Vec<String>,
        /// Every role, the academy's included: the account is closed.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum GuardianCommand {
    /// Attach a student to a guardian as responsable légal 1 or 2.
    Link {
        /// Guardian account id or identifier.
        #[arg(long)]
        guardian: String,
        /// Student account id or identifier.
        #[arg(long)]
        student: String,
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        rank: u8,
    },
    /// Break a grouping: detach a student from a guardian; the child gets a new
    /// provisional guardian account (same names, same rank) and its letter,
    /// printed with `clef letters --account <new identifier>`.
    Detach {
        /// Guardian account id or identifier.
        #[arg(long)]
        guardian: String,
        /// Student account id or identifier.
        #[arg(long)]
        student: String,
    },
}

/// What `client create` and `client update` both set.
#[derive(clap::Args)]
struct ClientOptions {
    /// Back-channel logout: where Clef POSTs a logout token when a session ends.
    #[arg(long = "backchannel-logout-uri")]
    backchannel_logout_uri: Option<String>,
    /// Terms each account accepts once per version before its first sign-in
    /// (the ENT charter); a new version asks every account again.
    #[arg(long = "terms-url", requires = "terms_version")]
    terms_url: Option<String>,
    #[arg(long = "terms-version", requires = "terms_url")]
    terms_version: Option<String>,
    /// A service client that may get tokens for itself (client_credentials),
    /// with these scopes (space- or comma-separated).
    #[arg(long = "scopes", visible_alias = "service-scopes")]
    service_scopes: Option<String>,
    /// The grants the client may use: authorization_code, refresh_token,
    /// client_credentials (default: the first two, and the third with --scopes).
    #[arg(long = "grant-types")]
    grant_types: Option<String>,
    /// Refresh tokens of this client die after this many seconds unused…
    #[arg(long = "refresh-token-idle-ttl")]
    refresh_token_idle_ttl: Option<i64>,
    /// …and their family this many seconds after the sign-in.
    #[arg(long = "refresh-token-absolute-ttl")]
    refresh_token_absolute_ttl: Option<i64>,
    /// The service's privacy policy, linked from the consent page.
    #[arg(long = "policy-uri")]
    policy_uri: Option<String>,
    /// The service's terms of service, linked from the consent page.
    #[arg(long = "tos-uri")]
    tos_uri: Option<String>,
}

impl ClientOptions {
    fn backchannel_logout_uri(&self) -> anyhow::Result<Option<url::Url>> {
        Ok(self
            .backchannel_logout_uri
            .as_deref()
            .map(clients::parse_backchannel_uri)
            .transpose()?)
    }

    /// `--policy-uri` and `--tos-uri`.
    fn pages(&self) -> anyhow::Result<(Option<url::Url>, Option<url::Url>)> {
        let page = |field, raw: &Option<String>| {
            raw.as_deref()
                .map(|raw| clients::parse_page_url(field, raw))
                .transpose()
        };
        Ok((
            page("policy_uri", &self.policy_uri)?,
            page("tos_uri", &self.tos_uri)?,
        ))
    }

    fn terms(&self) -> anyhow::Result<Option<clients::Terms>> {
        Ok(match (&self.terms_url, &self.terms_version) {
            (Some(url), Some(version)) => Some(clients::parse_terms(url, version)?),
            _ => None,
        })
    }

    fn service_scopes(&self) -> anyhow::Result<Option<Vec<String>>> {
        Ok(self
            .service_scopes
            .as_deref()
            .map(clients::parse_service_scopes)
            .transpose()?)
    }

    fn grant_types(&self) -> anyhow::Result<Option<clients::GrantTypes>> {
        Ok(self
            .grant_types
            .as_deref()
            .map(clients::GrantTypes::parse)
            .transpose()?)
    }

    /// The lifetimes given, if any was.
    fn refresh_lifetimes(&self) -> Option<RefreshLifetimes> {
        (self.refresh_token_idle_ttl.is_some() || self.refresh_token_absolute_ttl.is_some())
            .then_some(RefreshLifetimes {
                idle: self.refresh_token_idle_ttl,
                absolute: self.refresh_token_absolute_ttl,
            })
    }
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Registers a client: prints its client_id and, for a confidential
    /// client, its secret (shown once: Clef keeps only its SHA-256)
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (SPA, native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// A first-party client (the academy's ENT): no consent screen.
        #[arg(long)]
        first_party: bool,
        #[command(flatten)]
        options: ClientOptions,
        /// Print `client_id` and `client_secret` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Changes a registered client; options not given are kept.
    Update {
        /// The client to change.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Replaces every redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replaces every post-logout redirect URI (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        #[arg(long = "first-party")]
        first_party: Option<bool>,
        /// Stops back-channel logout for this client.
        #[arg(long = "no-backchannel-logout")]
        no_backchannel_logout: bool,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List the clients, one a line: id, name, public or confidential,
    /// first- or third-party, redirect URIs (`--json`: every setting).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Issue an initial access token for dynamic client registration (RFC
    /// 7591): give it to an integrator, who POSTs to /register with it as a
    /// bearer token. It registers up to `--clients` clients until it expires.
    Token {
        /// How long the token works, in seconds (default: 7 days).
        #[arg(long, default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(i64).range(60..=90 * 24 * 3600))]
        ttl: i64,
        /// How many clients it registers, at most (default: 10).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1000))]
        clients: i64,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        // A command whose reader goes away (`clef import --dry-run … | head`)
        // ends as Unix tools do, by SIGPIPE, rather than by `println!`'s
        // panic (Rust ignores SIGPIPE). Sockets are not concerned: they are
        // written with MSG_NOSIGNAL. The server keeps ignoring it.
        // SAFETY: no other thread exists yet; `signal` with SIG_DFL is
        // async-signal-safe and only resets the disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clef: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Read here rather than by clap, which refuses an empty variable.
    let file = cli.config.or_else(|| {
        std::env::var_os("CLEF_CONFIG")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    });
    let config = Config::load(file.as_deref())?;
    crate::telemetry::init(config.log_json);
    for variable in crate::config::unknown_variables(std::env::vars()) {
        tracing::warn!(%variable, "an environment variable names no setting: ignored");
    }
    let clock = SystemClock;
    match cli.command {
        Command::Serve { demo, allow_public } => {
            let demo = demo.then_some(crate::demo::Where { allow_public });
            serve(config, demo).await
        }
        Command::Migrate => {
            let url = storage::database_url(&config)?;
            let schema = storage::migrate(&url).await?;
            match schema.applied {
                0 => println!("schema up to date (migration {})", schema.version),
                n => println!(
                    "{n} migration(s) applied: schema at migration {}",
                    schema.version
                ),
            }
            if schema.version > schema.known {
                println!(
                    "the database was migrated by a newer Clef (this one knows up to migration {})",
                    schema.known
                );
            }
            Ok(())
        }
        Command::Establishment { command } => establishment(config, clock.now(), command).await,
        Command::Account { command } => account(config, command).await,
        Command::Guardian {
            command:
                GuardianCommand::Link {
                    guardian,
                    student,
                    rank,
                },
        } => {
            let db = open_db(&config).await?;
            let guardian = resolve(&db, &guardian).await?;
            let student = resolve(&db, &student).await?;
            accounts::link_guardian(
                &db,
                &guardian.id,
                &student.id,
                Rank::new(rank)?,
                clock.now(),
            )
            .await?;
            println!(
                "{} is now responsable légal {rank} of {}",
                guardian.identifier, student.identifier
            );
            Ok(())
        }
        Command::Staff {
            command:
                StaffCommand::Create {
                    identifier,
                    given_name,
                    family_name,
                    email,
                    establishments,
                    academy,
                    password_stdin,
                },
        } => {
            let password = if password_stdin {
                Some(read_password_line(&config)?)
            } else {
                None
            };
            let db = open_db(&config).await?;
            let mut roles: Vec<Option<String>> = establishment_ids(&db, &establishments)
                .await?
                .into_iter()
                .map(Some)
                .collect();
            if academy {
                roles.push(None);
            }
            let new = NewAccount {
                identifier: Identifier::parse(&identifier)?,
                kind: AccountKind::Staff,
                state: AccountState::Active,
                given_name: PersonName::parse("prénom", &given_name)?,
                family_name: PersonName::parse("nom", &family_name)?,
                birthdate: None,
                email: email.as_deref().map(EmailAddress::parse).transpose()?,
                email_verified: true,
                establishment: None,
                password_hash: None,
            };
            let account = create_account(&db, new, password.as_ref()).await?;
            for role in &roles {
                staff::grant(&db, &account, role.as_deref(), clock.now()).await?;
            }
            let granted = match academy {
                false => format!("granted {}", establishments.join(" ")),
                true => format!("granted academy {}", establishments.join(" ")),
            };
            let granted = format!("{}, {}", granted.trim_end(), operator());
            let entry = audit::Entry::new(audit::Event::StaffAccess, audit::Outcome::Ok)
                .account(&account.id)
                .detail(&granted);
            audit::record(&db, entry, clock.now()).await;
            println!("{} {}", account.id, account.identifier);
            Ok(())
        }
        Command::Staff {
            command:
                StaffCommand::Revoke {
                    identifier,
                    establishments,
                    all,
                },
        } => {
            // The whole service: a closed account's sessions end and their
            // services are told (back-channel logout), as a school's closure does.
            let app = Clef::start(config, Arc::new(SystemClock)).await?;
            let db = &app.db;
            let account = resolve(db, &identifier).await?;
            let ids = match all {
                true => None,
                false => Some(establishment_ids(db, &establishments).await?),
            };
            let revoked = staff::revoke(db, &account, ids.as_deref(), app.now()).await?;
            let detail = match all {
                true => format!("revoked all, {}", operator()),
                false => format!("revoked {}, {}", establishments.join(" "), operator()),
            };
            let entry = audit::Entry::new(audit::Event::StaffAccess, audit::Outcome::Ok)
                .account(&account.id)
                .detail(&detail);
            audit::record(db, entry, app.now()).await;
            match revoked {
                Revoked::Kept { roles } => {
                    println!("{}: {roles} role(s) left", account.identifier);
                }
                Revoked::Closed => {
                    // Closed with the commit above; what may fail now (the
                    // short-lived store down) is ending its sessions' records
                    // and telling their services: said so, not as a refusal.
                    println!("{}: no role left, account closed", account.identifier);
                    crate::oidc::logout::sign_out_everywhere(&app, &account.id)
                        .await
                        .context("the account is closed, but its sessions were not all ended nor their services told; run the command again once the store answers")?;
                }
            }
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            // Loading checked the values; what `serve` reads from them at
            // start is read here too (connecting to nothing), so a value it
            // would refuse is refused here, with the same message.
            if let Some(url) = &config.database_url {
                crate::storage::connect_options(url.expose_secret())?;
            }
            if let Some(url) = &config.redis_url {
                crate::storage::check_redis_url(&crate::storage::RedisTarget {
                    url: url.expose_secret(),
                    cluster: config.redis_cluster,
                    ca_file: config.redis_ca_file.as_deref(),
                })?;
            }
            crate::delivery::mail::check(&config)?;
            crate::delivery::sms::check(&config)?;
            crate::telemetry::filter()?;
            if let Some(dir) = &config.theme_dir {
                crate::web::theme::check(dir)?;
            }
            // What is printed is what `serve` uses.
            print!("{}", config.describe()?);
            Ok(())
        }
        Command::Audit {
            account,
            days,
            limit,
            json,
        } => {
            let db = open_db(&config).await?;
            let account_id = match account {
                Some(reference) => Some(resolve(&db, &reference).await?.id),
                None => None,
            };
            let since = clock.now() - days * 24 * 3600;
            let events = crate::audit::trail(&db, account_id.as_deref(), since, limit).await?;
            let mut out = std::io::stdout().lock();
            if !json {
                writeln!(out, "AT\tEVENT\tOUTCOME\tACCOUNT\tACTOR\tADDRESS\tDETAIL")?;
            }
            for event in events {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&event)?)?;
                } else {
                    let at = time::OffsetDateTime::from_unix_timestamp(event.at)
                        .map(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{at}\t{}\t{}\t{}\t{}\t{}\t{}",
                        event.event,
                        event.outcome,
                        event.account_id.as_deref().unwrap_or("-"),
                        event.actor_id.as_deref().unwrap_or("-"),
                        event.address.as_deref().unwrap_or("-"),
                        event.detail.as_deref().unwrap_or("")
                    )?;
                }
            }
            Ok(())
        }
        Command::Guardian {
            command: GuardianCommand::Detach { guardian, student },
        } => {
            let app = Clef::start(config, Arc::new(SystemClock)).await?;
            let guardian = resolve(&app.db, &guardian).await?;
            let student = resolve(&app.db, &student).await?;
            let detached =
                crate::accounts::grouping::detach(&app, &guardian.id, &student.id, None).await?;
            println!(
                "{} is detached from {}; its new guardian account is {} (provisional): \
                 print its letter with `clef letters --establishment <UAI> --account {}`",
                student.identifier,
                guardian.identifier,
                detached.guardian.identifier,
                detached.guardian.identifier
            );
            Ok(())
        }
        Command::Client { command } => client(config, command).await,
        Command::Import {
            establishment,
            file,
            dry_run,
            skip_bad_rows,
        } => {
            let bad_rows = match skip_bad_rows {
                true => crate::provisioning::import::BadRows::Skip,
                false => crate::provisioning::import::BadRows::Refuse,
            };
            import(config, &establishment, &file, dry_run, bad_rows).await
        }
        Command::Letters {
            establishment,
            class,
            account,
            format,
            out,
        } => {
            use crate::provisioning::letters::{self, Selection};
            let uai = Uai::parse(&establishment)?;
            let app = Clef::start(config, Arc::new(SystemClock)).await?;
            let establishment = crate::accounts::store::establishment_by_uai(&app.db, &uai)
                .await?
                .ok_or_else(|| anyhow::anyhow!("aucun établissement n'a l'UAI {uai}"))?;
            // « 6a » for « 6 A », as the pupils' file wrote it.
            let classes = match class {
                Some(_) => crate::accounts::staff::classes(&app.db, &establishment.id).await?,
                None => Vec::new(),
            };
            let class = class.map(|typed| letters::class_as_filed(&classes, typed));
            let selection = Selection { class, account };
            let letters = letters::select_as_configured(&app, &uai, &selection).await?;
            if letters.is_empty() {
                // No empty file: say why nothing is printed.
                let why = letters::why_none(&app.db, &establishment.id, &selection).await?;
                let told = match why {
                    // The classes as the file wrote them.
                    letters::Nothing::UnknownClass => match classes.is_empty() {
                        true => letters::Nothing::NoPupils.french().to_owned(),
                        false => format!(
                            "{} Classes de l'établissement : {}.",
                            why.french(),
                            classes.join(", ")
                        ),
                    },
                    _ => why.french().to_owned(),
                };
                let told = format!("{told} Aucun fichier écrit.");
                if why.unknown() {
                    anyhow::bail!(told);
                }
                eprintln!("{told}");
                return Ok(());
            }
            let bytes = if format == "csv" {
                letters::csv(&letters)?
            } else {
                letters::pdf(&letters, app.now())?
            };
            write_private(&out, &bytes)?;
            eprintln!(
                "{} dans {}",
                french_count(letters.len(), "courrier écrit", "courriers écrits"),
                out.display()
            );
            Ok(())
        }
        Command::Demo { allow_public } => {
            let app = Clef::start(config, Arc::new(SystemClock)).await?;
            let demo = crate::demo::load(&app, crate::demo::Where { allow_public }).await?;
            println!("{}", demo.instructions(app.config.issuer_str()));
            Ok(())
        }
        Command::Keys { command } => {
            let rotation = matches!(command, crate::keys::cli::KeysCommand::Rotate { .. });
            // The database first: a rotation it could not record would be
            // made anyway, and retried, made again.
            let db = match rotation {
                true => Some(open_db(&config).await?),
                false => None,
            };
            crate::keys::cli::run(&config.keys_dir, command, clock.now())?;
            if let Some(db) = db {
                let detail = format!("clef keys rotate, {}", operator());
                let entry = crate::audit::Entry::new(
                    crate::audit::Event::KeyRotation,
                    crate::audit::Outcome::Ok,
                )
                .detail(&detail);
                crate::audit::record(&db, entry, clock.now()).await;
            }
            Ok(())
        }
    }
}

/// Who ran a command that changes access, for its audit record (no account
/// acts: the command line does): the system user, as sudo or the shell tell.
fn operator() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|user| !user.is_empty()));
    match user {
        Some(user) => format!("from the command line by {user}"),
        // SAFETY: getuid has no preconditions and cannot fail.
        None => format!("from the command line by uid {}", unsafe { libc::getuid() }),
    }
}

async fn import(
    config: Config,
    uai: &str,
    file: &std::path::Path,
    dry_run: bool,
    bad_rows: crate::provisioning::import::BadRows,
) -> anyhow::Result<()> {
    use crate::provisioning::import::{self, ImportError};
    let uai = Uai::parse(uai)?;
    let bytes = read_school_file(file)?;
    let app = Clef::start(config, Arc::new(SystemClock)).await?;
    let now = app.now();
    match import::import(&app.db, &app.letters, &uai, &bytes, now, dry_run, bad_rows).await {
        Ok(report) => {
            let name = crate::accounts::store::establishment_by_uai(&app.db, &uai)
                .await?
                .map(|e| e.name)
                .unwrap_or_default();
            import::tell_the_accounts(&app, &report, &name, &uai, None).await;
            for skipped in &report.skipped {
                eprintln!("{skipped}");
            }
            if !report.skipped.is_empty() {
                eprintln!(
                    "{}, laissée{} de côté",
                    french_count(report.skipped.len(), "ligne refusée", "lignes refusées"),
                    if report.skipped.len() > 1 { "s" } else { "" }
                );
            }
            if dry_run {
                println!("Simulation : rien n'a été écrit.");
            }
            for change in &report.changes {
                println!("  {change}");
            }
            if report.unlisted_changes > 0 {
                println!(
                    "  Autres changements, non listés ici : {}",
                    report.unlisted_changes
                );
            }
            let counts = |created, updated, unchanged| {
                format!(
                    "{}, {} mis à jour, {}",
                    french_count(created, "créé", "créés"),
                    updated,
                    french_count(unchanged, "inchangé", "inchangés"),
                )
            };
            println!(
                "élèves : {} ; responsables : {}",
                counts(
                    report.students_created,
                    report.students_updated,
                    report.students_unchanged
                ),
                counts(
                    report.guardians_created,
                    report.guardians_updated,
                    report.guardians_unchanged
                ),
            );
            Ok(())
        }
        Err(ImportError::File(errors)) => {
            for error in &errors {
                eprintln!("{error}");
            }
            bail!("fichier refusé : rien n'a été importé")
        }
        Err(ImportError::Rows { refused, good }) => {
            for error in &refused {
                eprintln!("{error}");
            }
            let refused = french_count(refused.len(), "ligne refusée", "lignes refusées");
            match good {
                0 => bail!("{refused}, aucune ligne valable : rien n'a été importé"),
                1 => bail!(
                    "{refused} : rien n'a été importé (--skip-bad-rows importe la ligne valable)"
                ),
                _ => bail!(
                    "{refused} : rien n'a été importé (--skip-bad-rows importe les {good} lignes valables)"
                ),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// `n` and its noun, singular for 0 and 1 as French writes it (« 0 créé »,
/// « 1 ligne refusée », « 2 lignes refusées »).
fn french_count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n > 1 { many } else { one })
}

/// Letters hold passwords: the file is its owner's alone.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| {
            // The mode above applies to a file it creates; one already there is made private too.
            #[cfg(unix)]
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            f.write_all(bytes)
        })
        .map_err(|e| in_french("d'écrire", path, &e))
}

/// A school's file as `clef import` takes it: no larger than the back
/// office's (not a device that never ends, such as `/dev/zero`).
fn read_school_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let limit = crate::provisioning::import::MAX_FILE;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| in_french("de lire", path, &e))?;
    if bytes.len() > limit {
        bail!(
            "« {} » dépasse {} Mo : importez-le en plusieurs fichiers (par niveau, par exemple)",
            path.display(),
            limit / (1024 * 1024)
        );
    }
    Ok(bytes)
}

/// A file that could not be read or written, said in French (`verb`:
/// « de lire », « d'écrire »).
fn in_french(verb: &str, path: &std::path::Path, error: &std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    let why = match error.kind() {
        ErrorKind::NotFound => "ce fichier ou son dossier n'existe pas".to_owned(),
        ErrorKind::PermissionDenied => "accès refusé".to_owned(),
        ErrorKind::IsADirectory => "c'est un dossier".to_owned(),
        ErrorKind::StorageFull => "le disque est plein".to_owned(),
        ErrorKind::ReadOnlyFilesystem => "le disque est en lecture seule".to_owned(),
        _ => error.to_string(),
    };
    anyhow::anyhow!("impossible {verb} « {} » : {why}", path.display())
}

async fn open_db(config: &Config) -> anyhow::Result<Db> {
    storage::open(&storage::database_url(config)?).await
}

async fn serve(config: Config, demo_data: Option<crate::demo::Where>) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = Clef::start(config, Arc::new(SystemClock)).await?;
    if let Some(place) = demo_data {
        let demo = crate::demo::load(&app, place).await?;
        println!("{}", demo.instructions(app.config.issuer_str()));
    }
    crate::provisioning::expiry::spawn(app.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    // Both listeners stop on the one signal.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let metrics = match app.config.metrics_listen {
        Some(metrics_listen) => {
            let listener = tokio::net::TcpListener::bind(metrics_listen)
                .await
                .with_context(|| format!("listening on {metrics_listen} for /metrics"))?;
            tracing::info!(%metrics_listen, "/metrics is served there alone");
            Some(tokio::spawn(crate::web::serve_metrics(
                app.clone(),
                listener,
                until_stopped(),
            )))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(());
    });
    tracing::info!(
        %listen,
        issuer = app.config.issuer_str(),
        version = env!("CARGO_PKG_VERSION"),
        "clef is serving"
    );
    crate::web::serve(app, listener, until_stopped()).await?;
    if let Some(metrics) = metrics {
        metrics.await??;
    }
    tracing::info!("clef stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}

/// The ids of the establishments `uais` name, each known.
async fn establishment_ids(db: &Db, uais: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(uais.len());
    for uai in uais {
        let uai = Uai::parse(uai)?;
        let found = accounts::establishment_by_uai(db, &uai)
            .await?
            .ok_or_else(|| AccountError::UnknownEstablishment(uai.to_string()))?;
        ids.push(found.id);
    }
    Ok(ids)
}

/// An account by UUID or by identifier.
async fn resolve(db: &Db, reference: &str) -> anyhow::Result<Account> {
    let found = if uuid::Uuid::parse_str(reference).is_ok() {
        accounts::account_by_id(db, reference).await?
    } else {
        accounts::account_by_identifier(db, &Identifier::parse(reference)?).await?
    };
    found.ok_or_else(|| AccountError::UnknownAccount(reference.to_owned()).into())
}

/// A password given on standard input, held to the rule people's passwords
/// are held to on the pages (`password_min`, `password_max`, letters and
/// digits): a staff member's prints every pupil's letter.
fn read_password_line(config: &Config) -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password: SecretString = line.trim_end_matches(['\r', '\n']).to_owned().into();
    crate::accounts::policy::PasswordRule::configured(config)
        .check(&password)
        .map_err(anyhow::Error::msg)?;
    Ok(password)
}

async fn establishment(
    config: Config,
    now: i64,
    command: EstablishmentCommand,
) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    match command {
        EstablishmentCommand::Create { uai, name, details } => {
            let uai = Uai::parse(&uai)?;
            let change = details.change(Some(name.as_str()), &config)?;
            let establishment = accounts::create_establishment(&db, &uai, &change, now).await?;
            let who = accounts::ChangedBy {
                actor: None,
                by: operator(),
                from: None,
            };
            accounts::record_establishment(&db, (&uai, "created"), &change, None, who, now).await;
            println!("{} {}", establishment.uai, establishment.id);
        }
        EstablishmentCommand::Update { uai, name, details } => {
            let uai = Uai::parse(&uai)?;
            let change = details.change(name.as_deref(), &config)?;
            let (change, held, head) = accounts::update_establishment(&db, &uai, change).await?;
            let who = accounts::ChangedBy {
                actor: None,
                by: operator(),
                from: None,
            };
            accounts::record_establishment(
                &db,
                (&uai, "updated"),
                &change,
                Some(&crate::accounts::EstablishmentInput::held(&held, &head)),
                who,
                now,
            )
            .await;
            print_establishment(&db, &uai).await?;
        }
        EstablishmentCommand::Show { uai } => print_establishment(&db, &Uai::parse(&uai)?).await?,
    }
    Ok(())
}

/// An establishment as `clef establishment show` prints it: one `key: value` a line.
async fn print_establishment(db: &Db, uai: &Uai) -> anyhow::Result<()> {
    let establishment = accounts::establishment_by_uai(db, uai)
        .await?
        .ok_or_else(|| AccountError::UnknownEstablishment(uai.to_string()))?;
    let head = accounts::letterhead(db, &establishment.id).await?;
    let shown = |value: Option<&str>| value.unwrap_or("-").to_owned();
    println!("uai:        {}", establishment.uai);
    println!("id:         {}", establishment.id);
    println!("name:       {}", establishment.name);
    println!("address:    {}", shown(head.address.as_deref()));
    println!("city:       {}", shown(head.city.as_deref()));
    println!("contact:    {}", shown(head.contact.as_deref()));
    println!("portal_url: {}", shown(establishment.portal_url.as_deref()));
    Ok(())
}

async fn account(config: Config, command: AccountCommand) -> anyhow::Result<()> {
    let AccountCommand::Create {
        kind,
        identifier,
        given_name,
        family_name,
        birthdate,
        email,
        establishment,
        class,
        password_stdin,
    } = command;
    let kind = AccountKind::parse(&kind).context("unknown kind")?;
    let password = if password_stdin {
        Some(read_password_line(&config)?)
    } else {
        None
    };
    let establishment = match (establishment, class) {
        (Some(uai), Some(class)) => Some((Uai::parse(&uai)?, ClassName::parse(&class)?)),
        _ => None,
    };
    let new = NewAccount {
        identifier: Identifier::parse(&identifier)?,
        kind,
        state: AccountState::Active,
        given_name: PersonName::parse("prénom", &given_name)?,
        family_name: PersonName::parse("nom", &family_name)?,
        birthdate: birthdate.as_deref().map(BirthDate::parse).transpose()?,
        email: email.as_deref().map(EmailAddress::parse).transpose()?,
        email_verified: true,
        establishment,
        password_hash: None,
    };
    let db = open_db(&config).await?;
    let account = create_account(&db, new, password.as_ref()).await?;
    println!("{} {}", account.id, account.identifier);
    Ok(())
}

async fn create_account(
    db: &Db,
    mut new: NewAccount,
    password: Option<&SecretString>,
) -> anyhow::Result<Account> {
    if let Some(password) = password {
        let passwords = Passwords::new(std::time::Duration::from_secs(60))?;
        new.password_hash = Some(passwords.hash(password).await?);
    }
    Ok(accounts::create_account(db, new, SystemClock.now()).await?)
}

fn parse_uris(raw: &[String]) -> anyhow::Result<Vec<RedirectUri>> {
    raw.iter()
        .map(|uri| {
            RedirectUri::parse_or_why(uri)
                .map_err(|why| anyhow::anyhow!("invalid redirect URI {uri:?}: {why}"))
        })
        .collect()
}

async fn client(config: Config, command: ClientCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    match command {
        ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            first_party,
            options,
            json,
        } => {
            let (policy_uri, tos_uri) = options.pages()?;
            let new = NewClient {
                name,
                redirect_uris: parse_uris(&redirect_uris)?,
                post_logout_redirect_uris: parse_uris(&post_logout_redirect_uris)?,
                is_public: public,
                is_first_party: first_party,
                backchannel_logout_uri: options.backchannel_logout_uri()?,
                terms: options.terms()?,
                service_scopes: options.service_scopes()?,
                grant_types: options.grant_types()?,
                refresh_lifetimes: options.refresh_lifetimes().unwrap_or_default(),
                policy_uri,
                tos_uri,
            };
            let (client, secret) = clients::create(&db, new, SystemClock.now()).await?;
            let secret = secret.as_ref().map(|s| s.expose_secret().to_owned());
            if json {
                println!(
                    "{}",
                    json!({ "client_id": client.id, "client_secret": secret })
                );
            } else {
                println!("client_id:     {}", client.id);
                match secret {
                    Some(secret) => {
                        println!("client_secret: {secret}\n(shown once: Clef keeps only its hash)")
                    }
                    None => println!("public client: no secret; PKCE (S256) is required"),
                }
            }
            Ok(())
        }
        ClientCommand::Update {
            id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            first_party,
            no_backchannel_logout,
            options,
        } => {
            let backchannel_logout_uri = match (
                options.backchannel_logout_uri()?,
                no_backchannel_logout,
            ) {
                (Some(_), true) => {
                    anyhow::bail!(
                        "--backchannel-logout-uri and --no-backchannel-logout contradict each other"
                    )
                }
                (Some(uri), false) => Some(Some(uri)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let (policy_uri, tos_uri) = options.pages()?;
            let changes = clients::ClientChanges {
                name,
                redirect_uris: (!redirect_uris.is_empty())
                    .then(|| parse_uris(&redirect_uris))
                    .transpose()?,
                post_logout_redirect_uris: (!post_logout_redirect_uris.is_empty())
                    .then(|| parse_uris(&post_logout_redirect_uris))
                    .transpose()?,
                is_first_party: first_party,
                backchannel_logout_uri,
                terms: options.terms()?,
                service_scopes: options.service_scopes()?,
                grant_types: options.grant_types()?,
                refresh_lifetimes: options.refresh_lifetimes(),
                policy_uri,
                tos_uri,
            };
            let client = clients::update(&db, &id, changes).await?;
            println!("client {} updated", client.id);
            Ok(())
        }
        ClientCommand::List { json } => {
            let list = clients::list(&db).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let mut out = std::io::stdout().lock();
                for c in list {
                    let kind = if c.is_public {
                        "public"
                    } else {
                        "confidential"
                    };
                    let party = if c.is_first_party {
                        "first-party"
                    } else {
                        "third-party"
                    };
                    let uris: Vec<&str> = c.redirect_uris.iter().map(RedirectUri::as_str).collect();
                    writeln!(
                        out,
                        "{}\t{}\t{kind}\t{party}\t{}",
                        c.id,
                        c.name,
                        uris.join(" ")
                    )?;
                }
            }
            Ok(())
        }
        ClientCommand::Token { ttl, clients } => {
            let allows = crate::oidc::registration::InitialToken { ttl, clients };
            let token =
                crate::oidc::registration::issue_initial_token(&db, SystemClock.now(), allows)
                    .await?;
            println!("{token}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    /// Letters hold passwords: an earlier file readable by others is made
    /// private as it is overwritten.
    #[cfg(unix)]
    #[test]
    fn letters_written_over_a_readable_file_make_it_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("letters.pdf");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_private(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
