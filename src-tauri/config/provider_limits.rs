//! A provider's own request budget (`providers[].limits`), checked. The budget is the
//! upstream plan's: OpenAI's requests per minute, GitHub Models' per hour. Over it a
//! request waits its turn (`providers/queue.rs`) instead of paying for an upstream 429.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use super::raw::ProviderLimitsSection;

/// How long a request may wait for its turn when the file does not say: the wiring
/// spec's 30 seconds.
pub const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 30_000;
/// Requests that may wait at once when the file does not say. Beyond it a request is
/// refused at once: a runaway loop in a prototype must not pile up without bound.
pub const DEFAULT_MAX_QUEUE: usize = 100;
/// Longer waits are a mistake (a browser or SDK gives up long before).
const MAX_QUEUE_TIMEOUT_MS: u64 = 10 * 60_000;
const MAX_MAX_QUEUE: usize = 10_000;

/// The unit of a provider's rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatePer {
    Minute,
    Hour,
}

/// A provider's budget: `requests` per `per`, `burst` of them back to back after a quiet
/// spell, and a bounded queue for the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderLimits {
    pub requests: NonZeroU32,
    pub per: RatePer,
    /// Requests that may go at once after a quiet spell; the pace after them is the rate.
    pub burst: NonZeroU32,
    pub queue_timeout: Duration,
    /// Requests that may wait at once; 0 refuses every request over the budget at once.
    pub max_queue: usize,
}

impl fmt::Display for ProviderLimits {
    /// "100 requests per minute", as errors and the window say it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = match self.per {
            RatePer::Minute => "minute",
            RatePer::Hour => "hour",
        };
        let s = if self.requests.get() == 1 { "" } else { "s" };
        write!(f, "{} request{s} per {per}", self.requests)
    }
}

impl ProviderLimits {
    /// The default burst: twice the rate's per-minute figure (the wiring spec's "burst
    /// multiplier: 2x base rate"), so 100/min bursts 200 and 500/hour bursts 17. After
    /// the burst the pace is the rate itself; set `burst` lower to never exceed the
    /// upstream's own window.
    pub fn default_burst(requests: NonZeroU32, per: RatePer) -> NonZeroU32 {
        let twice = match per {
            RatePer::Minute => requests.get().saturating_mul(2),
            RatePer::Hour => requests.get().saturating_mul(2).div_ceil(60),
        };
        NonZeroU32::new(twice).unwrap_or(NonZeroU32::MIN)
    }

    /// Checks a `limits` section; the error names the field under `limits`.
    pub(super) fn from_section(s: ProviderLimitsSection) -> Result<Self, (String, String)> {
        fn err<T>(field: &str, message: &str) -> Result<T, (String, String)> {
            Err((format!("limits.{field}"), message.into()))
        }
        let above_zero = |field: &str, v: u32| match NonZeroU32::new(v) {
            Some(v) => Ok(v),
            None => err(field, "must be above 0"),
        };
        let (requests, per) = match (s.requests_per_minute, s.requests_per_hour) {
            (Some(n), None) => (above_zero("requests_per_minute", n)?, RatePer::Minute),
            (None, Some(n)) => (above_zero("requests_per_hour", n)?, RatePer::Hour),
            (Some(_), Some(_)) => {
                return Err((
                    "limits".into(),
                    "has both requests_per_minute and requests_per_hour; keep one".into(),
                ))
            }
            (None, None) => {
                return Err((
                    "limits".into(),
                    "needs requests_per_minute or requests_per_hour, e.g. {\"requests_per_minute\": 100}"
                        .into(),
                ))
            }
        };
        let burst = match s.burst {
            Some(b) => above_zero("burst", b)?,
            None => Self::default_burst(requests, per),
        };
        let queue_timeout_ms = s.queue_timeout_ms.unwrap_or(DEFAULT_QUEUE_TIMEOUT_MS);
        if queue_timeout_ms == 0 || queue_timeout_ms > MAX_QUEUE_TIMEOUT_MS {
            return err(
                "queue_timeout_ms",
                "must be from 1 to 600000 (ten minutes); for no queue at all, set max_queue to 0",
            );
        }
        let max_queue = s.max_queue.unwrap_or(DEFAULT_MAX_QUEUE);
        if max_queue > MAX_MAX_QUEUE {
            return err("max_queue", "must be at most 10000");
        }
        Ok(ProviderLimits {
            requests,
            per,
            burst,
            queue_timeout: Duration::from_millis(queue_timeout_ms),
            max_queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<ProviderLimits, (String, String)> {
        ProviderLimits::from_section(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let l = check(r#"{"requests_per_minute": 100}"#).unwrap();
        assert_eq!(l.burst.get(), 200);
        assert_eq!(l.queue_timeout, Duration::from_secs(30));
        assert_eq!(l.max_queue, DEFAULT_MAX_QUEUE);
        assert_eq!(l.to_string(), "100 requests per minute");
        let l = check(r#"{"requests_per_hour": 500}"#).unwrap();
        assert_eq!((l.per, l.burst.get()), (RatePer::Hour, 17));
        assert_eq!(check(r#"{"requests_per_hour": 1}"#).unwrap().burst.get(), 1);
    }

    #[test]
    fn mistakes_name_the_field() {
        let field = |json: &str| check(json).unwrap_err().0;
        assert_eq!(
            field(r#"{"requests_per_minute": 0}"#),
            "limits.requests_per_minute"
        );
        assert_eq!(
            field(r#"{"requests_per_hour": 0}"#),
            "limits.requests_per_hour"
        );
        assert_eq!(field(r#"{"burst": 2}"#), "limits");
        assert_eq!(
            field(r#"{"requests_per_minute": 1, "requests_per_hour": 1}"#),
            "limits"
        );
        assert_eq!(
            field(r#"{"requests_per_minute": 1, "burst": 0}"#),
            "limits.burst"
        );
        assert_eq!(
            field(r#"{"requests_per_minute": 1, "queue_timeout_ms": 0}"#),
            "limits.queue_timeout_ms"
        );
        assert_eq!(
            field(r#"{"requests_per_minute": 1, "max_queue": 1000000}"#),
            "limits.max_queue"
        );
    }
}
