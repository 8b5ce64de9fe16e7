//! Logging: human-readable by default, JSON lines in production (`log_json`).

use tracing_subscriber::EnvFilter;

/// What `CLEF_LOG` asks to log (`info,sqlx=warn` when unset or empty), or
/// why it cannot be read (`clef config check` refuses it).
pub fn filter() -> anyhow::Result<EnvFilter> {
    match std::env::var("CLEF_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| anyhow::anyhow!("CLEF_LOG={directives:?} cannot be read: {e}")),
        _ => Ok(EnvFilter::new("info,sqlx=warn")),
    }
}

pub fn init(json: bool) {
    let (filter, unread) = match filter() {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info,sqlx=warn"), Some(e)),
    };
    // Colours for a terminal only: a log file or a container's log collector
    // would keep the escape codes as text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless: the first subscriber stays.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Some(e) = unread {
        tracing::warn!(error = %e, "logging at the default level");
    }
}
