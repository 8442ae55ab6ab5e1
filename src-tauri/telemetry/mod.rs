//! What the gateway tells the outside about its requests: Prometheus metrics
//! (`/metrics`) and OpenTelemetry traces. Both read the finished request record (see
//! `request_log::RecordObserver`); when they are off, nothing is added to a request.

mod labels;
pub mod metrics;
mod otlp_config;
mod otlp_export;
mod otlp_proto;
mod otlp_span;
mod series;
pub mod traces;

use std::sync::Arc;

use crate::config::Config;
use crate::request_log::Observers;
use crate::secrets::SecretStore;
pub use metrics::Metrics;
pub use traces::Traces;

/// What a running gateway reports, built from its settings.
#[derive(Clone, Default)]
pub struct Telemetry {
    /// The counters behind `GET /metrics`, when `metrics.enabled`.
    pub metrics: Option<Arc<Metrics>>,
    /// Spans to an OpenTelemetry collector, when one is configured.
    pub traces: Option<Traces>,
}

impl Telemetry {
    pub fn new(config: &Config, secrets: &SecretStore) -> Self {
        Telemetry {
            metrics: config.metrics.enabled.then(|| Arc::new(Metrics::new())),
            traces: Traces::new(config, secrets),
        }
    }

    /// Carries on from `previous`, the telemetry of the state this one replaces (a
    /// settings reload): while metrics stay on, the same counters go on counting.
    pub fn carry_on(&mut self, previous: &Telemetry) {
        if let (Some(metrics), Some(kept)) = (&mut self.metrics, &previous.metrics) {
            *metrics = Arc::clone(kept);
        }
        if let (Some(traces), Some(kept)) = (&mut self.traces, &previous.traces) {
            traces.carry_on(kept);
        }
    }

    /// The observers the request log tells of each finished record.
    pub fn observers(&self) -> Observers {
        let mut observers: Observers = Vec::new();
        if let Some(metrics) = &self.metrics {
            observers.push(metrics.clone());
        }
        if let Some(traces) = &self.traces {
            observers.push(Arc::new(traces.clone()));
        }
        observers
    }

    /// Trace spans dropped so far (a full export queue, a collector that is down), for
    /// `protogate_trace_spans_dropped_total`: read when Prometheus scrapes, so a drop costs
    /// the exporter one atomic add of its own and nothing here.
    pub fn spans_dropped(&self) -> u64 {
        self.traces.as_ref().map_or(0, Traces::dropped)
    }

    /// Sends what is still queued for the collector, before the gateway stops.
    pub async fn flush(&self) {
        if let Some(traces) = &self.traces {
            traces.flush().await;
        }
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}
