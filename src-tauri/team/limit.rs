//! A provider's pace shared by every replica: the same GCRA as governor's, its state (the
//! "theoretical arrival time") in one Redis key per provider, `<prefix>:limit:<provider>`,
//! decided by one script so a decision is atomic and one round trip. The clock is
//! Redis's own (`TIME`), so replicas with skewed clocks still agree.
//!
//! Order: within a replica the provider's queue stays first come, first served (only its
//! head asks here). Across replicas the heads of the lines take turns as slots free up,
//! which is fair but not strict arrival order between replicas.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::Redis;
use crate::config::{ProviderLimits, RatePer};

/// KEYS[1] the provider's key; ARGV[1] microseconds between requests, ARGV[2] the burst.
/// Returns 0 when the request may go now (and takes its slot), else microseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - tolerance
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
";

/// The script with its SHA computed once; `invoke_async` sends `EVALSHA` and falls back
/// to `EVAL` when Redis does not know it (after a restart).
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA));

impl Redis {
    /// Whether `provider` may send a request now under `limits`, for all replicas:
    /// `Some(Ok)` go (the slot is taken), `Some(Err(wait))` try again after `wait`, `None`
    /// Redis cannot say (down): use the local limiter.
    pub async fn pace(
        &self,
        provider: &str,
        limits: &ProviderLimits,
    ) -> Option<Result<(), Duration>> {
        let period = match limits.per {
            RatePer::Minute => 60_000_000u64,
            RatePer::Hour => 3_600_000_000,
        };
        let interval = (period / u64::from(limits.requests.get())).max(1);
        self.gcra(&self.key("limit", provider), interval, limits.burst.get())
            .await
    }

    /// One GCRA decision on `key`: `interval` microseconds between requests, `burst` at
    /// once. The same answers as [`Redis::pace`].
    pub(super) async fn gcra(
        &self,
        key: &str,
        interval: u64,
        burst: u32,
    ) -> Option<Result<(), Duration>> {
        let mut connection = self.connection()?;
        let mut invocation = SCRIPT.key(key);
        invocation.arg(interval).arg(burst);
        match invocation.invoke_async::<u64>(&mut connection).await {
            Ok(0) => Some(Ok(())),
            Ok(wait) => Some(Err(Duration::from_micros(wait))),
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }
}
