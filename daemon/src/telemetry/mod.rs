//! Telemetry: traces, logs and metrics exported over OTLP/HTTP (protobuf) to the collector named
//! by `DAYTONA_OTEL_ENDPOINT`, once `POST /init` has given the token that authenticates the
//! exports (misc.md §6).
//!
//! Nothing is exported, and almost nothing runs, until both are there: without an endpoint the
//! request layer is not even installed and the log layer is absent; with one, each request and
//! log record costs an atomic load until `/init`. Exporting never delays a request: records
//! go into bounded queues drained by the SDK's background threads, which send through
//! [`client::HyperClient`] on the daemon's runtime; a collector that is down or silent only
//! fills the queues, and what they cannot take is dropped and counted ([`drops`]).
//!
//! Built on the official OpenTelemetry crates (SDK, OTLP exporter, tracing appender) rather
//! than a hand-written protocol: the encodings, batching and retry rules are theirs.

mod client;
mod drops;
pub mod http;
mod logs;
mod metrics;
mod resource;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use hyper::header::HeaderValue;
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};

use crate::config::Config;
pub use client::TOKEN_HEADER;
use drops::{CountedLogs, CountedMetrics, CountedSpans, Drops, GatedLogs, GatedSpans, Pending};
pub use logs::{EntrypointSink, LogLayer};

/// One export request (connect, send, answer), retries included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Records waiting for export, per signal. At a few hundred bytes each, a full queue is about a
/// megabyte.
const QUEUE: usize = 2048;
/// How long shutdown waits for each provider's last export (they flush side by side).
pub const FLUSH_LIMIT: Duration = Duration::from_secs(1);
/// The meter the sandbox metrics are reported under.
pub const METER: &str = "daytona.sandbox";

/// What the configuration says, when an endpoint is set.
struct Settings {
    /// The endpoint without a trailing slash; signals are under `/v1/...`.
    endpoint: String,
    resource: Resource,
    metrics_interval: Duration,
}

/// The exporting side, built on the first `/init`.
struct Running {
    tracer: SdkTracer,
    traces: SdkTracerProvider,
    logs: SdkLoggerProvider,
    entrypoint_logger: SdkLogger,
    metrics: SdkMeterProvider,
    _gauges: metrics::Gauges,
}

pub struct Telemetry {
    settings: Option<Settings>,
    token: client::Token,
    running: OnceLock<Running>,
    /// Serialises the first start (building the exporters can fail and be retried).
    starting: Mutex<()>,
    /// Shared with the [`LogLayer`] installed at start-up.
    bridge: Arc<OnceLock<logs::Bridge>>,
    drops: Arc<Drops>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
    entrypoint_position: Arc<AtomicU64>,
}

impl Telemetry {
    /// Telemetry as configured; idle until [`Telemetry::init`].
    pub fn new(config: &Config, version: &str) -> Self {
        let settings =
            config.otel_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(|e| Settings {
                endpoint: e.trim_end_matches('/').to_string(),
                resource: resource::resource(config, version),
                metrics_interval: config.otel_metrics_interval,
            });
        Telemetry {
            settings,
            token: Arc::new(RwLock::new(None)),
            running: OnceLock::new(),
            starting: Mutex::new(()),
            bridge: Arc::new(OnceLock::new()),
            drops: Arc::new(Drops::default()),
            follower: Mutex::new(None),
            entrypoint_position: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether an endpoint is configured.
    pub fn configured(&self) -> bool {
        self.settings.is_some()
    }

    /// The `tracing` layer that exports the daemon's log records, when an endpoint is configured.
    pub fn log_layer(&self) -> Option<LogLayer> {
        self.configured().then(|| LogLayer { bridge: self.bridge.clone() })
    }

    /// The tracer, once exporting.
    pub fn tracer(&self) -> Option<&SdkTracer> {
        self.running.get().map(|r| &r.tracer)
    }

    /// `POST /init`: from now on exports carry `token`; the first call starts exporting. Must run
    /// inside the daemon's runtime. Returns whether telemetry is exporting.
    pub fn init(&self, token: &str) -> bool {
        let Some(settings) = &self.settings else { return false };
        let Ok(mut value) = HeaderValue::from_str(token) else {
            tracing::warn!(
                "telemetry: the /init token cannot be sent as an HTTP header; not exporting with it"
            );
            return self.running.get().is_some();
        };
        value.set_sensitive(true);
        *toolbox_envelope::sync::write(&self.token) = Some(value);
        let _one_at_a_time = toolbox_envelope::sync::lock(&self.starting);
        if self.running.get().is_some() {
            return true;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
        match build(settings, self.token.clone(), self.drops.clone(), runtime) {
            Ok(running) => {
                let _ = self.bridge.set(logs::Bridge::new(&running.logs));
                let _ = self.running.set(running);
                tracing::info!(endpoint = %settings.endpoint, "telemetry: exporting traces, logs and metrics");
                true
            }
            Err(e) => {
                tracing::error!(endpoint = %settings.endpoint, error = %e, "telemetry: cannot start the exporters");
                false
            }
        }
    }

    /// Starts following the entrypoint's output with `follow`, unless a follower still runs.
    /// A new follower continues where the last one stopped.
    pub fn follow_entrypoint<F>(&self, follow: impl FnOnce(EntrypointSink) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(running) = self.running.get() else { return };
        let mut follower = toolbox_envelope::sync::lock(&self.follower);
        if follower.as_ref().is_some_and(|f| !f.is_finished()) {
            return;
        }
        let sink = EntrypointSink {
            logger: running.entrypoint_logger.clone(),
            position: self.entrypoint_position.clone(),
        };
        *follower = Some(tokio::spawn(follow(sink)));
    }

    /// Flushes and stops every provider, each within [`FLUSH_LIMIT`], side by side.
    pub async fn shutdown(&self) {
        if let Some(f) = toolbox_envelope::sync::lock(&self.follower).take() {
            f.abort();
        }
        let Some(r) = self.running.get() else { return };
        let (traces, logs, metrics) = (r.traces.clone(), r.logs.clone(), r.metrics.clone());
        // The SDK's shutdowns block (and the meter provider's ignores its timeout), so each runs
        // on a thread of its own that is simply not waited for past the limit.
        let stop = |name: &'static str, f: Box<dyn FnOnce() -> Result<(), String> + Send>| async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new().name(format!("otel-stop-{name}")).spawn(move || {
                let _ = tx.send(f());
            });
            if spawned.is_err() {
                return;
            }
            match tokio::time::timeout(FLUSH_LIMIT, rx).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::debug!(provider = name, error = %e, "telemetry: flush failed"),
                _ => tracing::debug!(provider = name, "telemetry: flush did not finish in time"),
            }
        };
        tokio::join!(
            stop(
                "traces",
                Box::new(move || traces.shutdown_with_timeout(FLUSH_LIMIT).map_err(|e| e.to_string()))
            ),
            stop(
                "logs",
                Box::new(move || logs.shutdown_with_timeout(FLUSH_LIMIT).map_err(|e| e.to_string()))
            ),
            stop(
                "metrics",
                Box::new(move || metrics.shutdown_with_timeout(FLUSH_LIMIT).map_err(|e| e.to_string()))
            ),
        );
        self.drops.report(true);
    }
}

fn build(
    settings: &Settings,
    token: client::Token,
    drops: Arc<Drops>,
    runtime: tokio::runtime::Handle,
) -> Result<Running, String> {
    // No TLS here (see client.rs): an https collector would only ever fail, so say it once.
    if !settings.endpoint.starts_with("http://") {
        return Err("only http:// endpoints are supported (no TLS in the exporters)".into());
    }
    let client = client::HyperClient::new(runtime, token, EXPORT_TIMEOUT);
    let url = |signal: &str| format!("{}/v1/{signal}", settings.endpoint);

    let pending = Pending::new(QUEUE);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url("traces"))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let exporter = CountedSpans { inner: exporter, pending: pending.clone(), drops: drops.clone() };
    let config = opentelemetry_sdk::trace::BatchConfigBuilder::default().with_max_queue_size(QUEUE).build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
    let traces = SdkTracerProvider::builder()
        .with_resource(settings.resource.clone())
        .with_span_processor(GatedSpans { inner: processor, pending, drops: drops.clone() })
        .build();
    let tracer = traces.tracer("daytona-daemon");

    let pending = Pending::new(QUEUE);
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url("logs"))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let exporter = CountedLogs { inner: exporter, pending: pending.clone(), drops: drops.clone() };
    let config = opentelemetry_sdk::logs::BatchConfigBuilder::default().with_max_queue_size(QUEUE).build();
    let processor = BatchLogProcessor::builder(exporter).with_batch_config(config).build();
    let logs = SdkLoggerProvider::builder()
        .with_resource(settings.resource.clone())
        .with_log_processor(GatedLogs { inner: processor, pending, drops: drops.clone() })
        .build();
    let entrypoint_logger = logs.logger("daytona-entrypoint");

    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url("metrics"))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .map_err(|e| e.to_string())?;
    let reader = PeriodicReader::builder(CountedMetrics { inner: exporter, drops })
        .with_interval(settings.metrics_interval)
        .build();
    let metrics =
        SdkMeterProvider::builder().with_resource(settings.resource.clone()).with_reader(reader).build();
    let gauges = metrics::register(&metrics.meter(METER), settings.metrics_interval);

    Ok(Running { tracer, traces, logs, entrypoint_logger, metrics, _gauges: gauges })
}

#[cfg(test)]
impl Telemetry {
    /// Configured telemetry that is already exporting spans to `traces` (and logs and metrics
    /// nowhere), for the request layer's tests.
    pub(crate) fn exporting_to(traces: SdkTracerProvider) -> Self {
        let vars = [("DAYTONA_SANDBOX_ID", "t"), ("DAYTONA_OTEL_ENDPOINT", "http://127.0.0.1:9")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let t = Telemetry::new(&crate::config::from_env(&vars).unwrap(), "test");
        let logs = SdkLoggerProvider::builder().build();
        let running = Running {
            tracer: traces.tracer("test"),
            traces,
            entrypoint_logger: logs.logger("test"),
            logs,
            metrics: SdkMeterProvider::builder().build(),
            _gauges: metrics::Gauges::none(),
        };
        let _ = t.running.set(running);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars = [("DAYTONA_SANDBOX_ID", "t")]
            .iter()
            .chain(vars)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::config::from_env(&vars).unwrap()
    }

    #[test]
    fn without_an_endpoint_nothing_is_configured_and_init_starts_nothing() {
        for vars in [&[][..], &[("DAYTONA_OTEL_ENDPOINT", "")][..], &[("DAYTONA_OTEL_ENDPOINT", "  ")][..]] {
            let t = Telemetry::new(&config(vars), "v");
            assert!(!t.configured() && t.log_layer().is_none(), "{vars:?}");
            assert!(!t.init("token"));
            assert!(t.tracer().is_none());
        }
    }

    #[test]
    fn the_endpoint_loses_its_trailing_slash() {
        let t = Telemetry::new(&config(&[("DAYTONA_OTEL_ENDPOINT", "http://collector:4318/")]), "v");
        assert_eq!(t.settings.as_ref().unwrap().endpoint, "http://collector:4318");
        assert!(t.log_layer().is_some());
    }

    #[tokio::test]
    async fn an_https_or_malformed_endpoint_starts_nothing() {
        for endpoint in ["https://collector:4318", "collector:4318", "http://bad host"] {
            let t = Telemetry::new(&config(&[("DAYTONA_OTEL_ENDPOINT", endpoint)]), "v");
            assert!(t.configured());
            assert!(!t.init("token"), "{endpoint}");
            assert!(t.tracer().is_none());
        }
    }

    #[tokio::test]
    async fn init_starts_exporting_once_and_a_bad_token_changes_nothing() {
        let t = Telemetry::new(&config(&[("DAYTONA_OTEL_ENDPOINT", "http://127.0.0.1:9")]), "v");
        assert!(t.tracer().is_none(), "exporting before /init");
        assert!(!t.init("bad\ntoken"), "a token that cannot be a header started telemetry");
        assert!(t.init("one"));
        assert!(t.tracer().is_some());
        assert!(t.init("two"));
        assert_eq!(toolbox_envelope::sync::read(&t.token).as_ref().unwrap(), "two");
        assert!(t.init("bad\ntoken"), "still exporting");
        assert_eq!(toolbox_envelope::sync::read(&t.token).as_ref().unwrap(), "two");
        let started = std::time::Instant::now();
        t.shutdown().await;
        assert!(started.elapsed() < FLUSH_LIMIT + Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
