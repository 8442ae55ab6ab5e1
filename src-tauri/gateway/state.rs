//! Shared state of a running gateway: a cheap-clone handle over everything the
//! handlers and layers read.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::FromRef;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::providers::{Registry, Upstream};
use crate::request_log::RequestLog;
use crate::secrets::SecretStore;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub providers: Registry,
    pub secrets: SecretStore,
    pub log: RequestLog,
    /// Requests per origin (or per "no origin" for scripts), with a burst.
    pub limiter: DefaultKeyedRateLimiter<String>,
    /// Requests checked by the limiter, to sweep its idle buckets now and then.
    pub limiter_checks: AtomicU64,
    /// Upstream answers open at once.
    pub streams: Arc<Semaphore>,
    pub started: Instant,
    /// ChatKit's threads, opened on the first ChatKit request.
    pub chatkit: OnceLock<Arc<crate::chatkit::store::Store>>,
    /// `EventSource` answers a page can come back to.
    pub replays: crate::chat_api::Replays,
    /// Metrics and traces, as the settings ask.
    pub telemetry: crate::telemetry::Telemetry,
}

impl AppState {
    pub fn new(config: Config, log: RequestLog, secrets: SecretStore) -> Self {
        let upstream = Upstream::new(config.limits.clone(), secrets.clone());
        let providers = Registry::new(&config, &upstream);
        let per_minute =
            NonZeroU32::new(config.limits.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.limits.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst));
        let streams = Arc::new(Semaphore::new(config.limits.max_concurrent_streams));
        let telemetry = crate::telemetry::Telemetry::new(&config, &secrets);
        log.set_observers(telemetry.observers());
        AppState(Arc::new(Inner {
            config,
            providers,
            secrets,
            log,
            limiter,
            limiter_checks: AtomicU64::new(0),
            streams,
            started: Instant::now(),
            chatkit: OnceLock::new(),
            replays: Default::default(),
            telemetry,
        }))
    }
}

impl AppState {
    /// This state with the provider queues of `previous`, the state it replaces, where
    /// a provider's limits are unchanged: its budget and its waiting requests carry on.
    pub fn keeping_queues(mut self, previous: &AppState) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.providers.keep_queues(&previous.providers);
        }
        self
    }
}

/// The limiter's buckets are swept once per this many requests.
const LIMITER_SWEEP_EVERY: u64 = 1024;

impl AppState {
    /// Drops the rate-limit buckets of origins that are back to a full burst, now and
    /// then: a flood of distinct origins must not grow memory without bound.
    pub(super) fn sweep_idle_limits(&self) {
        let n = self.limiter_checks.fetch_add(1, Ordering::Relaxed);
        if n % LIMITER_SWEEP_EVERY == LIMITER_SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for RequestLog {
    fn from_ref(state: &AppState) -> RequestLog {
        state.log.clone()
    }
}
