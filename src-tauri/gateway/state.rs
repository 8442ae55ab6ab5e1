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
    /// Today's spend per provider, when the settings set daily budgets. Each new state
    /// reads it back from today's log file, so a settings change or a restart keeps it.
    pub budgets: Option<crate::usage::BudgetMeter>,
    /// Members' tokens, checked where the access token is (see `guard.rs`).
    pub members: crate::members::Members,
    /// Answers kept for identical requests, and identical calls in flight.
    pub cache: crate::cache::Cache,
    /// Team mode's Redis, when the settings name one.
    pub redis: Option<Arc<crate::team::Redis>>,
}

/// What the request log tells of each finished record: metrics, traces, budgets.
fn observers(
    telemetry: &crate::telemetry::Telemetry,
    budgets: &Option<crate::usage::BudgetMeter>,
) -> crate::request_log::Observers {
    let mut observers = telemetry.observers();
    if let Some(meter) = budgets {
        observers.push(Arc::new(meter.clone()));
    }
    observers
}

impl AppState {
    pub fn new(config: Config, log: RequestLog, secrets: SecretStore) -> Self {
        let upstream = Upstream::new(config.limits.clone(), secrets.clone());
        let mut providers = Registry::new(&config, &upstream);
        let per_minute =
            NonZeroU32::new(config.limits.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.limits.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst));
        let streams = Arc::new(Semaphore::new(config.limits.max_concurrent_streams));
        let telemetry = crate::telemetry::Telemetry::new(&config, &secrets);
        let budgets = crate::usage::BudgetMeter::new(&config);
        log.set_observers(observers(&telemetry, &budgets));
        // Watching first, then today's file: no record is missed or counted twice.
        if let Some(meter) = &budgets {
            meter.read_today(&log);
            providers.attach_budgets(meter);
        }
        let members = crate::members::Members::new(
            crate::members::store_for(&config, &secrets),
            config.keychain_cache,
        );
        let mut cache = crate::cache::Cache::new(&config.cache);
        let redis = crate::team::Redis::shared(&config.redis, &secrets);
        if let Some(redis) = &redis {
            providers.share_limits(redis);
            cache.share(redis);
        }
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
            budgets,
            members,
            cache,
            redis,
        }))
    }
}

impl AppState {
    /// This state with the provider queues of `previous`, the state it replaces, where
    /// a provider's limits are unchanged: its budget and its waiting requests carry on.
    /// So do the metrics' counters, while metrics stay on, and the cache's answers while
    /// its settings and the upstreams are unchanged.
    pub fn keeping_queues(mut self, previous: &AppState) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.providers.keep_queues(&previous.providers);
            inner.telemetry.carry_on(&previous.telemetry);
            let config = &inner.config;
            inner
                .cache
                .carry_on(config, &previous.cache, &previous.config);
            inner
                .log
                .set_observers(observers(&inner.telemetry, &inner.budgets));
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
