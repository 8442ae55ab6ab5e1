//! A route target's health: failures in a row, and until when it is skipped. A target
//! that keeps failing cools down; after the cooldown it gets one more try (and cools
//! again at once if that fails too, since its streak was not forgotten).

use std::time::{Duration, Instant};

/// Failures in a row after which a target cools down for the route's `cooldown_s`.
pub const FAILURES_TO_COOL: u32 = 3;

/// The longest an upstream's `Retry-After` keeps a target cooling: a day-long value (a
/// spent monthly quota) should not hide a target until the app restarts.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, Default)]
pub struct Health {
    streak: u32,
    cool_until: Option<Instant>,
    last_failed: Option<Instant>,
}

impl Health {
    /// The target answered: its streak and any cooldown are over.
    pub fn answered(&mut self) {
        *self = Health::default();
    }

    /// The target failed at `now`. It cools down for `cooldown` once the failures reach
    /// [`FAILURES_TO_COOL`] in a row, and for at least `retry_after` when the upstream
    /// asked for it.
    pub fn failed(&mut self, now: Instant, cooldown: Duration, retry_after: Option<Duration>) {
        self.streak += 1;
        self.last_failed = Some(now);
        let mut until = self.cool_until.filter(|u| *u > now);
        if self.streak >= FAILURES_TO_COOL {
            until = until.max(Some(now + cooldown));
        }
        if let Some(wait) = retry_after {
            until = until.max(Some(now + wait.min(LONGEST_RETRY_AFTER)));
        }
        self.cool_until = until;
    }

    /// How long the target is still skipped, if it is.
    pub fn cooling(&self, now: Instant) -> Option<Duration> {
        self.cool_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// When it last failed, to try the least recently failed first when all cool.
    pub fn last_failed(&self) -> Option<Instant> {
        self.last_failed
    }

    #[cfg(test)]
    pub fn streak(&self) -> u32 {
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    #[test]
    fn three_failures_in_a_row_cool_a_target_down_and_an_answer_clears_it() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.failed(t0, COOLDOWN, None);
        h.failed(t0, COOLDOWN, None);
        assert_eq!(
            h.cooling(t0),
            None,
            "two failures are not enough to skip it"
        );
        h.failed(t0, COOLDOWN, None);
        assert_eq!(h.cooling(t0), Some(COOLDOWN));
        assert_eq!(
            h.cooling(t0 + COOLDOWN),
            None,
            "tried again after the cooldown"
        );
        h.failed(t0 + COOLDOWN, COOLDOWN, None);
        assert_eq!(
            h.cooling(t0 + COOLDOWN),
            Some(COOLDOWN),
            "a failed retry cools it again at once"
        );
        h.answered();
        assert_eq!(h.cooling(t0 + COOLDOWN), None);
        assert_eq!(h.streak(), 0);
    }

    #[test]
    fn retry_after_cools_at_least_that_long_even_on_a_first_failure() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.failed(t0, COOLDOWN, Some(Duration::from_secs(2)));
        assert_eq!(h.cooling(t0), Some(Duration::from_secs(2)));
        h.failed(t0, COOLDOWN, Some(Duration::from_secs(90)));
        h.failed(t0, COOLDOWN, None);
        assert_eq!(
            h.cooling(t0),
            Some(Duration::from_secs(90)),
            "the longer of Retry-After and the cooldown"
        );
        h.failed(t0, COOLDOWN, Some(Duration::from_secs(86_400)));
        assert_eq!(h.cooling(t0), Some(LONGEST_RETRY_AFTER));
    }
}
