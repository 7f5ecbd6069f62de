//! Log export: the daemon's own log records (a `tracing` layer beside the stdout and file
//! output) and the entrypoint's output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::logs::{AnyValue, LogRecord, Logger, Severity};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

pub(super) type Bridge = OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>;

/// The `tracing` layer that exports log records once telemetry runs. Until then (and always
/// when no endpoint is configured) each event costs one atomic load.
pub struct LogLayer {
    pub(super) bridge: Arc<OnceLock<Bridge>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(bridge) = self.bridge.get() else { return };
        // The telemetry module's own records are about exports failing: exporting them would
        // only feed the failure.
        if is_own(event.metadata().target()) {
            return;
        }
        bridge.on_event(event, ctx)
    }
}

/// Whether a record comes from the telemetry module (this file's parent module or below).
fn is_own(target: &str) -> bool {
    let own = module_path!().rsplit_once("::").map_or(module_path!(), |(parent, _)| parent);
    target.strip_prefix(own).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// Where the entrypoint follower sends the entrypoint's output: stdout at INFO, stderr at ERROR,
/// each record with the attribute `daytona-entrypoint=true`.
pub struct EntrypointSink {
    pub(super) logger: SdkLogger,
    /// How far the log has been exported, kept across followers so a restarted one does not
    /// send the output again.
    pub(super) position: Arc<AtomicU64>,
}

impl EntrypointSink {
    /// The offset in the entrypoint log up to which output has been exported.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    pub fn set_position(&self, pos: u64) {
        self.position.store(pos, Ordering::Relaxed)
    }

    pub fn stdout(&self, chunk: &[u8]) {
        self.emit(Severity::Info, "INFO", chunk)
    }

    pub fn stderr(&self, chunk: &[u8]) {
        self.emit(Severity::Error, "ERROR", chunk)
    }

    fn emit(&self, severity: Severity, text: &'static str, chunk: &[u8]) {
        let body = String::from_utf8_lossy(chunk);
        let body = body.strip_suffix('\n').unwrap_or(&body);
        let body = body.strip_suffix('\r').unwrap_or(body);
        if body.is_empty() {
            return;
        }
        let mut record = self.logger.create_log_record();
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_timestamp(std::time::SystemTime::now());
        record.set_body(AnyValue::String(body.to_string().into()));
        record.add_attribute("daytona-entrypoint", true);
        self.logger.emit(record);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_telemetry_module_s_own_records_are_recognised() {
        assert!(super::is_own("daemon::telemetry"));
        assert!(super::is_own("daemon::telemetry::drops"));
        assert!(!super::is_own("daemon::telemetryx"));
        assert!(!super::is_own("daemon::server"));
    }
}
