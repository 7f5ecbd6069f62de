//! Bounded export queues and the count of what they drop.
//!
//! The SDK's batch processors already queue in bounded channels, but say nothing about what
//! they drop except through their own diagnostics (which would loop back into the log export).
//! So each processor gets a gate in front: a record passes only while fewer than the queue's
//! size are waiting for the exporter, which means the SDK queue itself never overflows and
//! every drop is counted here, with the batches the collector refused or never answered.
//! A warning with the totals is logged when drops start, then at most once a minute while they
//! go on, and once more at shutdown.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// How often, at most, the drop warning repeats.
const REPORT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Drops {
    spans: AtomicU64,
    logs: AtomicU64,
    metric_exports: AtomicU64,
    /// The grand total at the last warning.
    reported: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Spans,
    Logs,
    MetricExports,
}

impl Drops {
    pub fn add(&self, kind: Kind, n: u64) {
        let counter = match kind {
            Kind::Spans => &self.spans,
            Kind::Logs => &self.logs,
            Kind::MetricExports => &self.metric_exports,
        };
        counter.fetch_add(n, Ordering::Relaxed);
        self.report(false);
    }

    /// (spans, log records, metric exports) dropped so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.spans.load(Ordering::Relaxed),
            self.logs.load(Ordering::Relaxed),
            self.metric_exports.load(Ordering::Relaxed),
        )
    }

    /// Logs the totals when something was dropped since the last report and the last report is
    /// old enough (or `now` is set: at shutdown).
    pub fn report(&self, now: bool) {
        let (spans, logs, metrics) = self.totals();
        let total = spans + logs + metrics;
        if total == self.reported.load(Ordering::Relaxed) {
            return;
        }
        {
            // try_lock: a record dropped on a request path never waits for another thread's
            // report; that one is about to log the news anyway.
            let Ok(mut last) = self.last_report.try_lock() else { return };
            if !now && last.is_some_and(|t| t.elapsed() < REPORT_EVERY) {
                return;
            }
            *last = Some(Instant::now());
            self.reported.store(total, Ordering::Relaxed);
        }
        // The telemetry module's own target: the log export leaves these out (they would only
        // be dropped again, and each drop would log anew).
        tracing::warn!(
            dropped_spans = spans,
            dropped_log_records = logs,
            dropped_metric_exports = metrics,
            "telemetry: the collector is not taking exports; data was dropped"
        );
    }
}

/// Records handed to a batch processor and not yet taken by its exporter.
#[derive(Debug, Clone)]
pub struct Pending {
    waiting: Arc<AtomicUsize>,
    limit: usize,
}

impl Pending {
    pub fn new(limit: usize) -> Self {
        Pending { waiting: Arc::new(AtomicUsize::new(0)), limit }
    }

    /// Takes a place, or says the queue is full.
    fn admit(&self) -> bool {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1))
            .is_ok()
    }

    fn taken(&self, n: usize) {
        let _ = self.waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| Some(w.saturating_sub(n)));
    }
}

/// A span processor behind the gate.
#[derive(Debug)]
pub struct GatedSpans<P> {
    pub inner: P,
    pub pending: Pending,
    pub drops: Arc<Drops>,
}

impl<P: SpanProcessor> SpanProcessor for GatedSpans<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx)
    }

    fn on_end(&self, span: SpanData) {
        if self.pending.admit() { self.inner.on_end(span) } else { self.drops.add(Kind::Spans, 1) }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// The span exporter behind a gate: frees the places of what it takes and counts what fails.
#[derive(Debug)]
pub struct CountedSpans<E> {
    pub inner: E,
    pub pending: Pending,
    pub drops: Arc<Drops>,
}

impl<E: SpanExporter> SpanExporter for CountedSpans<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let n = batch.len();
        self.pending.taken(n);
        let export = self.inner.export(batch);
        let drops = self.drops.clone();
        async move {
            let result = export.await;
            if result.is_err() {
                drops.add(Kind::Spans, n as u64);
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// A log processor behind the gate.
#[derive(Debug)]
pub struct GatedLogs<P> {
    pub inner: P,
    pub pending: Pending,
    pub drops: Arc<Drops>,
}

impl<P: LogProcessor> LogProcessor for GatedLogs<P> {
    fn emit(&self, data: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.pending.admit() { self.inner.emit(data, scope) } else { self.drops.add(Kind::Logs, 1) }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// The log exporter behind a gate.
#[derive(Debug)]
pub struct CountedLogs<E> {
    pub inner: E,
    pub pending: Pending,
    pub drops: Arc<Drops>,
}

impl<E: LogExporter> LogExporter for CountedLogs<E> {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        let n = batch.iter().count();
        self.pending.taken(n);
        let export = self.inner.export(batch);
        let drops = self.drops.clone();
        async move {
            let result = export.await;
            if result.is_err() {
                drops.add(Kind::Logs, n as u64);
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// The metric exporter, counting the pushes that fail (the periodic reader keeps no queue: the
/// next push carries the current values anyway).
#[derive(Debug)]
pub struct CountedMetrics<E> {
    pub inner: E,
    pub drops: Arc<Drops>,
}

impl<E: PushMetricExporter> PushMetricExporter for CountedMetrics<E> {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        let export = self.inner.export(metrics);
        let drops = self.drops.clone();
        async move {
            let result = export.await;
            if result.is_err() {
                drops.add(Kind::MetricExports, 1);
            }
            result
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_up_to_its_limit_and_frees_what_the_exporter_takes() {
        let p = Pending::new(2);
        assert!(p.admit() && p.admit());
        assert!(!p.admit(), "a third record while two wait");
        p.taken(2);
        assert!(p.admit());
        // Never below zero, whatever the exporter reports.
        p.taken(5);
        assert!(p.admit() && p.admit() && !p.admit());
    }

    #[test]
    fn drops_are_counted_by_kind() {
        let d = Drops::default();
        d.add(Kind::Spans, 3);
        d.add(Kind::Logs, 1);
        d.add(Kind::MetricExports, 2);
        d.add(Kind::Spans, 1);
        assert_eq!(d.totals(), (4, 1, 2));
    }
}
