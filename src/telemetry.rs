//! Logging: human-readable by default, JSON lines in production (`log_json`).

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_env("CLEF_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
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
}
