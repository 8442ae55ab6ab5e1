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

use super::labels;
use super::series::{Answered, ModelSeries, SeriesCache};
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
    #[prometheus(flatten)]
    member: MemberLabel,
}

/// `member="<name>"` for a request with a member's token; no label at all without one, so
/// the desktop's series stay as they were.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
struct MemberLabel(Option<Arc<str>>);

impl prometheus_client::encoding::EncodeLabelSet for MemberLabel {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        match &self.0 {
            Some(name) => [("member", &**name)].encode(encoder),
            None => Ok(()),
        }
    }
}

/// Distinct members kept as labels; later ones count as `other`. Members are added by
/// an admin, so this guards the series against a mistake, not a client.
const MAX_MEMBERS: usize = 200;

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
    series: SeriesCache,
    /// Member names seen so far, up to [`MAX_MEMBERS`].
    members: std::sync::RwLock<std::collections::HashMap<Box<str>, Arc<str>>>,
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
            series: SeriesCache::default(),
            members: Default::default(),
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

impl Metrics {
    /// The series of `record`'s provider and model, made on first sight.
    fn series_of(&self, record: &Record) -> Arc<ModelSeries> {
        let provider = record.provider.as_deref().unwrap_or_default();
        let model = record.model.as_deref().unwrap_or_default();
        self.series.get(provider, model, |provider, model| {
            let answered = record.provider.is_some().then(|| {
                let labels = ModelLabels {
                    provider: provider.clone(),
                    model: model.clone(),
                };
                let tokens = |r#type| {
                    self.tokens.get_or_create_owned(&TokenLabels {
                        provider: provider.clone(),
                        model: model.clone(),
                        r#type,
                    })
                };
                Answered {
                    duration: self.duration.get_or_create_owned(&labels),
                    first_token: self.first_token.get_or_create_owned(&labels),
                    input_tokens: tokens("input"),
                    output_tokens: tokens("output"),
                }
            });
            ModelSeries::new(provider, model, answered)
        })
    }
}

impl Metrics {
    /// `member`'s label value: the name, or `other` past [`MAX_MEMBERS`].
    fn member_label(&self, member: &str) -> Arc<str> {
        if let Some(name) = self.members.read().expect("members lock").get(member) {
            return name.clone();
        }
        let mut members = self.members.write().expect("members lock");
        if members.len() >= MAX_MEMBERS {
            return Arc::from(labels::OTHER);
        }
        members
            .entry(member.into())
            .or_insert_with(|| Arc::from(member))
            .clone()
    }
}

impl RecordObserver for Metrics {
    fn finished(&self, record: &Record) {
        let series = self.series_of(record);
        let route = labels::route(&record.path);
        let labels = |member| RequestLabels {
            route,
            provider: series.provider.clone(),
            model: series.model.clone(),
            status: record.status,
            member: MemberLabel(member),
        };
        match &record.member {
            None => series.requests(route, record.status, || {
                self.requests.get_or_create_owned(&labels(None))
            }),
            // Team mode's: looked up in the family, past the series cache.
            Some(member) => self
                .requests
                .get_or_create_owned(&labels(Some(self.member_label(member)))),
        }
        .inc();
        if let Some(answered) = &series.answered {
            answered.duration.observe(record.latency_ms / 1e3);
            if let Some(ttft_ms) = record.ttft_ms {
                answered.first_token.observe(ttft_ms / 1e3);
            }
            if let Some(usage) = record.usage {
                answered.input_tokens.inc_by(usage.input_tokens);
                answered.output_tokens.inc_by(usage.output_tokens);
            }
        }
        // Rarer: looked up in their families.
        let by_provider = |kind| KindLabels {
            provider: series.provider.clone(),
            kind,
        };
        if let Some(kind) = record.error_kind.or(record.error.as_ref().map(|_| "other")) {
            self.errors.get_or_create(&by_provider(kind)).inc();
        }
        if let Some(kind) = record.cache {
            self.cache.get_or_create(&by_provider(kind)).inc();
        }
        if let Some(queued_ms) = record.queued_ms {
            self.queue_wait
                .get_or_create(&ProviderLabels {
                    provider: series.provider.clone(),
                })
                .observe(queued_ms / 1e3);
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
    fn a_members_requests_carry_their_name_and_others_no_member_label() {
        let metrics = Metrics::new();
        let ana = Record {
            member: Some("ana".into()),
            ..answered()
        };
        metrics.finished(&ana);
        metrics.finished(&ana);
        metrics.finished(&answered());
        let text = metrics.render(Scrape::default());
        let mut requests = sample(&text, "protogate_requests_total{");
        requests.sort();
        assert_eq!(
            requests,
            [
                "protogate_requests_total{route=\"/v1/chat/completions\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\",member=\"ana\"} 2",
                "protogate_requests_total{route=\"/v1/chat/completions\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"} 1",
            ],
            "{text}"
        );
    }

    #[test]
    fn members_past_the_bound_are_other() {
        let metrics = Metrics::new();
        for i in 0..=MAX_MEMBERS {
            metrics.finished(&Record {
                member: Some(format!("member-{i}")),
                ..answered()
            });
        }
        let text = metrics.render(Scrape::default());
        assert!(text.contains("member=\"member-0\"} 1"), "{text}");
        assert!(text.contains("member=\"other\"} 1"), "{text}");
        assert!(!text.contains(&format!("member-{MAX_MEMBERS}\"")), "{text}");
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
