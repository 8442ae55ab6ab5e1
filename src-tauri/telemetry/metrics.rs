//! Prometheus metrics, counted from each finished request record and written out in
//! Prometheus' text format on `GET /metrics` (see `gateway/scrape.rs`).
//!
//! prometheus-client, the Prometheus project's own Rust client, rather than `metrics` and
//! its exporter: its registry is a value, not a process-wide recorder, so every gateway
//! in a process (the tests run many) counts on its own, and a settings reload hands the
//! same counters to the state that replaces the old one (`Telemetry::carry_on`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{self, Names};
use crate::request_log::{Record, RecordObserver};

/// The `Content-Type` of what [`Metrics::render`] writes (text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Seconds; from a cached or local answer to a long generation.
const DURATION_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];
/// Seconds; a hosted model's first token takes 0.2 to 3 s.
const FIRST_TOKEN_BUCKETS: [f64; 15] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0,
];
/// Seconds in a provider's queue, up to its queue timeout.
const QUEUE_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    provider: Arc<str>,
    model: Arc<str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: Arc<str>,
    model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: Arc<str>,
    model: Arc<str>,
    /// `input` or `output`, as OpenTelemetry's `gen_ai.token.type`.
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    provider: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: Arc<str>,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// What is read only when Prometheus asks, so that no request pays for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scrape {
    /// Upstream answers streaming now (the stream semaphore's permits in use).
    pub streams_open: usize,
    pub streams_limit: usize,
    /// Spans the trace exporter has dropped since it started.
    pub spans_dropped: u64,
}

/// The gateway's counters, one set per running gateway, kept across settings reloads
/// while metrics stay on.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    names: Names,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<ModelLabels>,
    first_token: Histograms<ModelLabels>,
    tokens: Family<TokenLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    queue_wait: Histograms<ProviderLabels>,
    cache: Family<KindLabels, Counter>,
    streams_open: Gauge,
    streams_limit: Gauge,
    spans_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("protogate");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests answered, by route (path; `other` for unknown ones), provider, model and status",
            requests.clone(),
        );
        let duration: Histograms<ModelLabels> =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to the end of its answer, for requests that reached a provider",
            Unit::Seconds,
            duration.clone(),
        );
        let first_token: Histograms<ModelLabels> =
            Family::new_with_constructor(|| Histogram::new(FIRST_TOKEN_BUCKETS));
        registry.register_with_unit(
            "time_to_first_token",
            "Time from a request's arrival to the first token of its answer",
            Unit::Seconds,
            first_token.clone(),
        );
        let tokens = Family::default();
        registry.register(
            "tokens",
            "Tokens the providers reported, by type (input, output)",
            tokens.clone(),
        );
        let errors = Family::default();
        registry.register(
            "errors",
            "Failed requests by kind: refused, rate_limited, too_large, bad_request, not_found, \
             unavailable, slow_client, client_gone, cancelled (Protogate and its clients); key, \
             connect, timeout, upstream_status, upstream_error, decode, cut (the provider)",
            errors.clone(),
        );
        let queue_wait: Histograms<ProviderLabels> =
            Family::new_with_constructor(|| Histogram::new(QUEUE_BUCKETS));
        registry.register_with_unit(
            "queue_wait",
            "Time requests waited in a provider's queue (providers[].limits), for those that waited",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let cache = Family::default();
        registry.register(
            "cache_hits",
            "Answers that cost no upstream call, by kind: hit (the cache) or coalesced (another client's identical call)",
            cache.clone(),
        );
        let streams_open = Gauge::default();
        registry.register(
            "streams_open",
            "Upstream answers streaming now",
            streams_open.clone(),
        );
        let streams_limit = Gauge::default();
        registry.register(
            "streams_limit",
            "Upstream answers that may stream at once (limits.max_concurrent_streams)",
            streams_limit.clone(),
        );
        let spans_dropped = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans dropped because the exporter's queue was full or the collector failed",
            spans_dropped.clone(),
        );
        Metrics {
            registry,
            names: Names::default(),
            requests,
            duration,
            first_token,
            tokens,
            errors,
            queue_wait,
            cache,
            streams_open,
            streams_limit,
            spans_dropped,
        }
    }

    /// Everything counted so far, in Prometheus' text format (see [`CONTENT_TYPE`]).
    pub fn render(&self, scrape: Scrape) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.streams_open.set(gauge(scrape.streams_open));
        self.streams_limit.set(gauge(scrape.streams_limit));
        // The exporter keeps its own running total; a new exporter starting again from
        // zero is a counter reset, which Prometheus expects.
        self.spans_dropped
            .inner()
            .store(scrape.spans_dropped, std::sync::atomic::Ordering::Relaxed);
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl RecordObserver for Metrics {
    fn finished(&self, record: &Record) {
        let provider = self.names.of(record.provider.as_deref());
        let model = self.names.of(record.model.as_deref());
        self.requests
            .get_or_create(&RequestLabels {
                route: labels::route(&record.path),
                provider: provider.clone(),
                model: model.clone(),
                status: record.status,
            })
            .inc();
        if let Some(kind) = record.error_kind.or(record.error.as_ref().map(|_| "other")) {
            self.errors
                .get_or_create(&KindLabels {
                    provider: provider.clone(),
                    kind,
                })
                .inc();
        }
        if let Some(kind) = record.cache {
            self.cache
                .get_or_create(&KindLabels {
                    provider: provider.clone(),
                    kind,
                })
                .inc();
        }
        if let Some(queued_ms) = record.queued_ms {
            self.queue_wait
                .get_or_create(&ProviderLabels {
                    provider: provider.clone(),
                })
                .observe(queued_ms / 1e3);
        }
        if record.provider.is_none() {
            return;
        }
        if let Some(usage) = record.usage {
            for (r#type, n) in [
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
            ] {
                self.tokens
                    .get_or_create(&TokenLabels {
                        provider: provider.clone(),
                        model: model.clone(),
                        r#type,
                    })
                    .inc_by(n);
            }
        }
        let labels = ModelLabels { provider, model };
        self.duration
            .get_or_create(&labels)
            .observe(record.latency_ms / 1e3);
        if let Some(ttft_ms) = record.ttft_ms {
            self.first_token
                .get_or_create(&labels)
                .observe(ttft_ms / 1e3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Usage;

    fn answered() -> Record {
        Record {
            path: "/v1/chat/completions".into(),
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            status: 200,
            latency_ms: 1200.0,
            ttft_ms: Some(350.0),
            usage: Some(Usage {
                input_tokens: 12,
                output_tokens: 30,
            }),
            ..Record::default()
        }
    }

    /// The sample lines of `text` that start with `series`.
    fn sample(text: &str, series: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(series))
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_finished_request_is_counted_under_prometheus_names() {
        let metrics = Metrics::new();
        metrics.finished(&answered());
        metrics.finished(&answered());
        metrics.finished(&Record {
            path: "/api/ai-gateway/stream".into(),
            status: 403,
            error: Some("origin `https://evil.example` is not allowed".into()),
            error_kind: Some("refused"),
            ..Record::default()
        });
        let text = metrics.render(Scrape {
            streams_open: 3,
            streams_limit: 64,
            spans_dropped: 5,
        });
        assert_eq!(
            sample(&text, "protogate_requests_total{route=\"/v1/chat/completions\""),
            ["protogate_requests_total{route=\"/v1/chat/completions\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"} 2"]
        );
        assert!(
            text.contains("protogate_errors_total{provider=\"\",kind=\"refused\"} 1"),
            "{text}"
        );
        assert!(text.contains("protogate_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",type=\"output\"} 60"), "{text}");
        assert!(text.contains("protogate_request_duration_seconds_bucket{provider=\"openai\",model=\"gpt-4o-mini\",le=\"1\"} 0"), "{text}");
        assert!(text.contains("protogate_request_duration_seconds_bucket{provider=\"openai\",model=\"gpt-4o-mini\",le=\"2.5\"} 2"), "{text}");
        assert!(text.contains("protogate_time_to_first_token_seconds_count{provider=\"openai\",model=\"gpt-4o-mini\"} 2"), "{text}");
        assert!(text.contains("protogate_streams_open 3\n"), "{text}");
        assert!(
            text.contains("protogate_trace_spans_dropped_total 5\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE protogate_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "the classic text format, not OpenMetrics"
        );
    }

    #[test]
    fn refused_requests_have_no_latency_series() {
        let metrics = Metrics::new();
        metrics.finished(&Record {
            path: "/health".into(),
            status: 200,
            ..Record::default()
        });
        let text = metrics.render(Scrape::default());
        assert!(
            !text.contains("protogate_request_duration_seconds_count"),
            "{text}"
        );
    }

    #[test]
    fn cache_hits_and_queue_waits_are_counted_by_provider() {
        let metrics = Metrics::new();
        let record = Record {
            cache: Some("coalesced"),
            queued_ms: Some(2400.0),
            ..answered()
        };
        metrics.finished(&record);
        let text = metrics.render(Scrape::default());
        assert!(
            text.contains("protogate_cache_hits_total{provider=\"openai\",kind=\"coalesced\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("protogate_queue_wait_seconds_sum{provider=\"openai\"} 2.4"),
            "{text}"
        );
    }
}
