//! Logging: human-readable lines on stdout and `key=value` lines in the rotating log file.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

use crate::config::Config;
use crate::logfile::RotatingFile;

/// Installs the global subscriber. A log file that cannot be opened is reported and skipped:
/// the daemon is more useful running without its file log than not running.
///
/// `telemetry` is the log export's layer, when telemetry is configured: it sees what the other
/// outputs see (the same level).
pub fn init(config: &Config, telemetry: Option<crate::telemetry::LogLayer>) {
    let level = LevelFilter::from_level(config.log_level);
    // The MCP SDK logs the set-up and the end of every stateless `/mcp` request at INFO: noise
    // in every output, so it speaks only from WARN on.
    let level = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("rmcp", level.min(LevelFilter::WARN));
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_filter(level.clone());
    let (file_layer, file_error) = match RotatingFile::open(&config.log_file) {
        Ok(file) => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(file)
                    .with_filter(level.clone()),
            ),
            None,
        ),
        Err(e) => (None, Some(e)),
    };
    let telemetry = telemetry.map(|t| t.with_filter(level));
    let _ = tracing_subscriber::registry().with(console).with(file_layer).with(telemetry).try_init();
    if let Some(e) = file_error {
        tracing::error!(error = %e, "cannot open the daemon log file; logging to stdout only");
    }
}
