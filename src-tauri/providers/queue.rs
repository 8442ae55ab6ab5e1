//! A provider's own budget (`providers[].limits`), kept with a queue rather than a
//! refusal: a prototype that fires ten requests at a 100-per-minute provider should get
//! ten answers a little later, not four answers and six upstream 429s.
//!
//! Two parts, each doing what it is good at:
//! - the pace is governor's GCRA limiter (the same engine as the per-origin limit), so
//!   the burst and the rate mean exactly what they mean there;
//! - the order is a `tokio::sync::Mutex`, which hands itself to waiters first come,
//!   first served: whoever holds it is the head of the line, and only the head asks the
//!   limiter for a slot. Nobody can overtake a waiter, whatever its origin.
//!
//! A waiter is a future. A client that disconnects drops it: it leaves the line at once
//! (tokio's lock queue forgets it), the count of waiters goes down, and since only the
//! head that is admitted takes a slot, an abandoned request costs nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Mutex;

use crate::config::{ProviderLimits, RatePer};
use crate::error::GatewayError;
use crate::request_log::RecordHandle;

/// One provider's budget and its line of waiting requests.
#[derive(Debug)]
pub struct ProviderQueue {
    provider: String,
    limits: ProviderLimits,
    pace: DefaultDirectRateLimiter,
    clock: DefaultClock,
    /// Held by the head of the line while it waits for its slot.
    line: Mutex<()>,
    /// Requests in the line, the head included.
    waiting: AtomicUsize,
    /// Team mode: the pace is decided in Redis for all replicas, `pace` standing in
    /// while Redis is unreachable.
    shared: Option<Arc<crate::team::Redis>>,
}

impl ProviderQueue {
    pub fn new(provider: &str, limits: ProviderLimits) -> Self {
        let quota = match limits.per {
            RatePer::Minute => Quota::per_minute(limits.requests),
            RatePer::Hour => Quota::per_hour(limits.requests),
        };
        ProviderQueue {
            provider: provider.to_string(),
            pace: RateLimiter::direct(quota.allow_burst(limits.burst)),
            clock: DefaultClock::default(),
            limits,
            line: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            shared: None,
        }
    }

    /// Paces this provider with every replica sharing `redis`.
    pub fn share(&mut self, redis: Arc<crate::team::Redis>) {
        self.shared = Some(redis);
    }

    /// Takes a slot if the budget has one now, else says how long until it may.
    async fn check(&self) -> Result<(), Duration> {
        if let Some(redis) = &self.shared {
            if let Some(answer) = redis.pace(&self.provider, &self.limits).await {
                return answer;
            }
        }
        self.pace
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    pub fn limits(&self) -> &ProviderLimits {
        &self.limits
    }

    /// Requests waiting for their turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Returns when this request may go upstream: at once while the budget has room and
    /// nobody waits, else after those before it, at the budget's pace. A 429 when the
    /// line is full, or when the turn has not come within the queue timeout. A wait is
    /// written on `record` ("waited 2.4 s for openai's limit").
    pub async fn wait_turn(&self, record: &RecordHandle) -> Result<(), GatewayError> {
        // Nobody holds the line (tokio hands a released lock straight to a waiter, so a
        // free lock means an empty line) and the budget has room: go.
        if let Ok(_head) = self.line.try_lock() {
            if self.check().await.is_ok() {
                return Ok(());
            }
        }
        let Some(place) = Place::take(self) else {
            let why = match self.limits.max_queue {
                0 => "over budget, and this provider has no queue (max_queue 0)".to_string(),
                n => format!("its queue is full ({n} waiting)"),
            };
            return Err(self.refusal(why));
        };
        let started = Instant::now();
        let turn = tokio::time::timeout(self.limits.queue_timeout, async {
            let _head = self.line.lock().await;
            while let Err(wait) = self.check().await {
                tokio::time::sleep(wait).await;
            }
        })
        .await;
        drop(place);
        let waited = started.elapsed();
        let note = format!("waited {} for {}'s limit", seconds(waited), self.provider);
        record.set_queued(waited, note);
        match turn {
            Ok(()) => Ok(()),
            Err(_) => Err(self.refusal(format!("waited {} in the queue", seconds(waited)))),
        }
    }

    /// A 429 naming the provider and its limit; `Retry-After` is when the requests
    /// waiting now (this one out of the line), and one more, would have had their turn.
    fn refusal(&self, why: String) -> GatewayError {
        let period = match self.limits.per {
            RatePer::Minute => 60.0,
            RatePer::Hour => 3600.0,
        };
        let interval = period / f64::from(self.limits.requests.get());
        let ahead = self.waiting() as f64 + 1.0;
        GatewayError::ProviderLimited {
            provider: self.provider.clone(),
            limit: self.limits.to_string(),
            why,
            retry_after_s: (interval * ahead).ceil().max(1.0) as u64,
        }
    }
}

/// A place in the line, counted while it is held: given back when the request is
/// admitted, times out, or is dropped because its client went away.
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(queue: &'a ProviderQueue) -> Option<Self> {
        let max = queue.limits.max_queue;
        queue
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(&queue.waiting))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// "2.4 s" under ten seconds, "30 s" above.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use super::*;
    use crate::request_log::Record;

    /// `per_minute` requests a minute, `burst` at once, a queue of `max_queue`.
    fn queue(per_minute: u32, burst: u32, timeout_ms: u64, max_queue: usize) -> Arc<ProviderQueue> {
        Arc::new(ProviderQueue::new(
            "openai",
            ProviderLimits {
                requests: NonZeroU32::new(per_minute).unwrap(),
                per: RatePer::Minute,
                burst: NonZeroU32::new(burst).unwrap(),
                queue_timeout: Duration::from_millis(timeout_ms),
                max_queue,
            },
        ))
    }

    fn record() -> RecordHandle {
        RecordHandle::new(Record::default(), 100)
    }

    #[tokio::test]
    async fn within_the_burst_nobody_waits() {
        let q = queue(60, 3, 1000, 10);
        for _ in 0..3 {
            let r = record();
            q.wait_turn(&r).await.unwrap();
            assert_eq!(r.finish().queued_ms, None, "no wait, no note");
        }
    }

    #[tokio::test]
    async fn waiters_go_in_arrival_order_at_the_pace() {
        // One every 50 ms after a burst of one.
        let q = queue(1200, 1, 5000, 10);
        q.wait_turn(&record()).await.unwrap();
        let started = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = vec![];
        for i in 0..4 {
            let (q, tx) = (q.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                q.wait_turn(&record()).await.unwrap();
                tx.send((i, started.elapsed())).unwrap();
            }));
            // Arrivals a little apart, so their order is known.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        drop(tx);
        let mut order = vec![];
        while let Some((i, at)) = rx.recv().await {
            order.push(i);
            assert!(
                at >= Duration::from_millis(40 * (i as u64 + 1)),
                "request {i} went at {at:?}, before its slot"
            );
        }
        assert_eq!(order, [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_wait_is_written_on_the_record() {
        let q = queue(1200, 1, 5000, 10);
        q.wait_turn(&record()).await.unwrap();
        let r = record();
        q.wait_turn(&r).await.unwrap();
        let r = r.finish();
        assert!(r.queued_ms.unwrap() > 20.0, "{:?}", r.queued_ms);
        let note = r.note.unwrap();
        assert!(
            note.starts_with("waited 0.") && note.ends_with(" s for openai's limit"),
            "{note}"
        );
    }

    #[tokio::test]
    async fn past_the_timeout_a_429_names_the_provider_and_limit() {
        let q = queue(1, 1, 200, 10);
        q.wait_turn(&record()).await.unwrap();
        let e = q.wait_turn(&record()).await.unwrap_err();
        assert_eq!(e.status(), 429);
        let message = e.to_string();
        assert!(
            message
                .starts_with("openai's limit of 1 request per minute: waited 0.2 s in the queue"),
            "{message}"
        );
        assert!(matches!(
            e,
            GatewayError::ProviderLimited {
                retry_after_s: 60,
                ..
            }
        ));
        assert_eq!(q.waiting(), 0, "a request that timed out left the line");
    }

    #[tokio::test]
    async fn a_full_line_refuses_at_once() {
        let q = queue(1, 1, 5000, 1);
        q.wait_turn(&record()).await.unwrap();
        let first = tokio::spawn({
            let q = q.clone();
            async move { q.wait_turn(&record()).await }
        });
        while q.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        let e = q.wait_turn(&record()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(100), "at once");
        assert!(
            e.to_string().contains("its queue is full (1 waiting)"),
            "{e}"
        );
        first.abort();
    }

    #[tokio::test]
    async fn a_request_that_gives_up_leaves_the_line_and_costs_nothing() {
        // One every 100 ms.
        let q = queue(600, 1, 5000, 10);
        q.wait_turn(&record()).await.unwrap();
        let gives_up = tokio::spawn({
            let q = q.clone();
            async move { q.wait_turn(&record()).await }
        });
        while q.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        gives_up.abort();
        let _ = gives_up.await;
        assert_eq!(q.waiting(), 0);
        // The next one has the slot the abandoned one never took: one interval after
        // the first, not two.
        let started = Instant::now();
        q.wait_turn(&record()).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
    }
}
