//! OpenTelemetry traces: one span per model call, from each finished request record, to
//! the collector the settings or the `OTEL_*` environment name (`otlp_config.rs`).
//!
//! Records with no provider (preflights, refusals, `/health`, `/v1/models`) are not
//! model calls and get no span. A request pays for one lookup, a few string copies and
//! a push under a short lock; everything else happens on the exporter's task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::otlp_config::{self, Target};
use super::otlp_export::Exporter;
use super::otlp_span::{Finished, ProviderInfo};
use crate::config::Config;
use crate::request_log::{Record, RecordObserver};
use crate::secrets::SecretStore;

/// A stop waits this long at most for the last spans to be sent.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Spans for one gateway state; cheap to clone.
#[derive(Clone)]
pub struct Traces {
    target: Arc<Target>,
    providers: Arc<HashMap<String, Arc<ProviderInfo>>>,
    secrets: SecretStore,
    /// Started by the first span, so a state that never serves costs no task; shared
    /// with the state a reload replaces when the target is the same.
    exporter: Arc<OnceLock<Option<Exporter>>>,
    /// Spans dropped, across reloads.
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Traces {
    /// Traces as the settings and the process environment ask; `None` when off. A
    /// mistake in the environment is logged, and traces stay off.
    pub fn new(config: &Config, secrets: &SecretStore) -> Option<Traces> {
        Self::with_env(config, secrets, &|name| std::env::var(name).ok())
    }

    /// As [`Traces::new`], with `env` in place of the process environment.
    pub fn with_env(
        config: &Config,
        secrets: &SecretStore,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Traces> {
        let target = match otlp_config::resolve(&config.telemetry, env) {
            Ok(target) => target?,
            Err(why) => {
                tracing::warn!("traces: {why}");
                return None;
            }
        };
        Some(Traces {
            target: Arc::new(target),
            providers: Arc::new(ProviderInfo::all(config)),
            secrets: secrets.clone(),
            exporter: Arc::default(),
            dropped: Arc::default(),
        })
    }

    /// Spans dropped so far: the queue was full, or the collector did not take them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Carries on from the traces of the state this one replaces (a settings reload):
    /// the drop count always, and the exporter with its queue while the target is the same.
    pub fn carry_on(&mut self, previous: &Traces) {
        self.dropped = Arc::clone(&previous.dropped);
        if self.target == previous.target {
            self.exporter = Arc::clone(&previous.exporter);
        }
    }

    /// Sends the spans still queued; at most [`FLUSH_LIMIT`], so a collector that is
    /// down cannot hold up a stop.
    pub async fn flush(&self) {
        if let Some(Some(exporter)) = self.exporter.get() {
            let _ = tokio::time::timeout(FLUSH_LIMIT, exporter.flush()).await;
        }
    }

    fn exporter(&self) -> Option<&Exporter> {
        self.exporter
            .get_or_init(|| {
                let exporter = Exporter::start(
                    Arc::clone(&self.target),
                    self.secrets.clone(),
                    Arc::clone(&self.dropped),
                );
                if exporter.is_none() {
                    tracing::warn!("traces: the exporter cannot start; traces are off");
                }
                exporter
            })
            .as_ref()
    }
}

impl RecordObserver for Traces {
    fn finished(&self, record: &Record) {
        let Some(provider) = record.provider.as_deref() else {
            return;
        };
        let Some(provider) = self.providers.get(provider) else {
            return;
        };
        let Some(exporter) = self.exporter() else {
            return;
        };
        let content = |text: &Option<String>| {
            if self.target.capture_content {
                text.clone()
            } else {
                None
            }
        };
        exporter.push(Finished {
            end: SystemTime::now(),
            latency_ms: record.latency_ms,
            ttft_ms: record.ttft_ms,
            id: record.id.clone(),
            method: record.method.clone(),
            path: record.path.clone(),
            provider: Arc::clone(provider),
            model: record.model.clone(),
            status: record.status,
            usage: record.usage,
            finish_reason: record.finish_reason,
            error: record.error.clone(),
            error_kind: record.error_kind,
            origin: record.origin.clone(),
            route: record.route.clone(),
            cache: record.cache,
            attempts: record.attempts.clone(),
            prompt: content(&record.prompt),
            answer: content(&record.answer),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traces(endpoint: &str) -> Traces {
        let settings = serde_json::json!({"telemetry": {"otlp_endpoint": endpoint}});
        let config = crate::config::parse(&settings.to_string(), "test").unwrap();
        Traces::with_env(&config, &SecretStore::new(), &|_| None).unwrap()
    }

    #[test]
    fn a_reload_keeps_the_exporter_while_the_target_is_the_same_and_always_the_count() {
        let before = traces("http://127.0.0.1:4318");
        before.dropped.fetch_add(2, Ordering::Relaxed);
        let mut same = traces("http://127.0.0.1:4318");
        same.carry_on(&before);
        assert!(Arc::ptr_eq(&same.exporter, &before.exporter));
        assert_eq!(same.dropped(), 2);
        let mut moved = traces("http://127.0.0.1:4319");
        moved.carry_on(&before);
        assert!(!Arc::ptr_eq(&moved.exporter, &before.exporter));
        assert_eq!(moved.dropped(), 2, "the count goes on across collectors");
    }

    #[test]
    fn no_endpoint_no_traces() {
        let config = crate::config::parse("{}", "test").unwrap();
        assert!(Traces::with_env(&config, &SecretStore::new(), &|_| None).is_none());
    }
}
