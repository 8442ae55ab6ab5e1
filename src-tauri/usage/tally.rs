//! Counting requests into rows: one [`Tally`] per provider, model, site and time bucket,
//! turned into a [`Row`] with its percentiles at the end.

use serde::Serialize;

use super::prices::PriceLookup;
use super::records::Line;

/// What one record adds to every row it belongs to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counted {
    pub failed: bool,
    pub cached: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// USD, when the model has a price.
    pub cost: f64,
    /// A request that may have cost something, to a model with no price.
    pub unpriced: bool,
    /// Only for answers that reached the provider and came back: a refusal's or a cache
    /// hit's few microseconds are not the provider's latency.
    pub latency_ms: Option<f32>,
    pub ttft_ms: Option<f32>,
}

impl Counted {
    pub fn of(line: &Line<'_>, price: Option<&PriceLookup>) -> Self {
        let failed = line.failed();
        let cached = line.cached();
        let tokens = line.usage.filter(|_| !cached).unwrap_or_default();
        let (input_tokens, output_tokens) = (tokens.input_tokens, tokens.output_tokens);
        let used = input_tokens + output_tokens > 0;
        let answered = !failed && !cached;
        Counted {
            failed,
            cached,
            input_tokens,
            output_tokens,
            cost: price.map_or(0.0, |p| p.price.cost(input_tokens, output_tokens)),
            unpriced: price.is_none() && !cached && (used || !failed),
            latency_ms: answered.then_some(line.latency_ms as f32),
            ttft_ms: line.ttft_ms.filter(|_| answered).map(|t| t as f32),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Tally {
    requests: u64,
    errors: u64,
    cached: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost: f64,
    unpriced: u64,
    latencies: Vec<f32>,
    ttfts: Vec<f32>,
}

impl Tally {
    pub fn add(&mut self, c: &Counted) {
        self.requests += 1;
        self.errors += u64::from(c.failed);
        self.cached += u64::from(c.cached);
        self.input_tokens += c.input_tokens;
        self.output_tokens += c.output_tokens;
        self.cost += c.cost;
        self.unpriced += u64::from(c.unpriced);
        self.latencies.extend(c.latency_ms);
        self.ttfts.extend(c.ttft_ms);
    }

    /// Adds another tally of the same row (counted on another thread).
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.cached += other.cached;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost += other.cost;
        self.unpriced += other.unpriced;
        self.latencies.extend(other.latencies);
        self.ttfts.extend(other.ttfts);
    }

    /// The row, percentiles computed.
    pub fn into_row(mut self, name: String) -> Row {
        Row {
            name,
            requests: self.requests,
            errors: self.errors,
            cached: self.cached,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            latency_p50_ms: percentile(&mut self.latencies, 0.50),
            latency_p95_ms: percentile(&mut self.latencies, 0.95),
            ttft_p50_ms: percentile(&mut self.ttfts, 0.50),
            cost_usd: round_usd(self.cost),
            unpriced_requests: self.unpriced,
        }
    }
}

/// One line of a Usage table: a provider, a model, a site, or the total.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub requests: u64,
    /// Refused or failed (an error status, or an error in the stream).
    pub errors: u64,
    /// Answered by the cache (or by another client's identical call): no tokens, no cost.
    pub cached: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// Time to first token.
    pub ttft_p50_ms: Option<f64>,
    /// The estimated cost of the requests whose model has a price.
    pub cost_usd: f64,
    /// Requests to models with no price, whose cost is unknown: the view says "no price".
    pub unpriced_requests: u64,
}

/// The nearest-rank percentile `p` (0..=1) of `samples`; `None` when there are none.
/// Selects rather than sorts: a month's samples, several times over, in linear time.
pub fn percentile(samples: &mut [f32], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let rank = (p * samples.len() as f64).ceil() as usize;
    let (_, value, _) =
        samples.select_nth_unstable_by(rank.clamp(1, samples.len()) - 1, f32::total_cmp);
    Some((f64::from(*value) * 10.0).round() / 10.0)
}

/// Dollars to a millionth of a cent: sums of many small costs print cleanly.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e8).round() / 1e8
}

/// Rows with the most spent first, then the busiest.
pub fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(b.requests.cmp(&a.requests))
            .then(a.name.cmp(&b.name))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f32> = (1..=100).rev().map(|n| n as f32).collect();
        assert_eq!(percentile(&mut v, 0.50), Some(50.0));
        assert_eq!(percentile(&mut v, 0.95), Some(95.0));
        assert_eq!(percentile(&mut [7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&mut [], 0.5), None);
        let mut two = [10.0, 20.0];
        assert_eq!(percentile(&mut two, 0.50), Some(10.0));
        assert_eq!(percentile(&mut two, 0.95), Some(20.0));
    }

    #[test]
    fn a_tally_counts_errors_cache_hits_and_unpriced_requests() {
        let mut t = Tally::default();
        let ok = Counted {
            input_tokens: 10,
            output_tokens: 5,
            cost: 0.25,
            latency_ms: Some(100.0),
            ttft_ms: Some(20.0),
            ..Counted::default()
        };
        t.add(&ok);
        t.add(&Counted {
            failed: true,
            ..Counted::default()
        });
        t.add(&Counted {
            cached: true,
            ..Counted::default()
        });
        t.add(&Counted {
            unpriced: true,
            latency_ms: Some(300.0),
            ..Counted::default()
        });
        let row = t.into_row("openai".into());
        assert_eq!((row.requests, row.errors, row.cached), (4, 1, 1));
        assert_eq!((row.input_tokens, row.output_tokens), (10, 5));
        assert_eq!(row.cost_usd, 0.25);
        assert_eq!(row.unpriced_requests, 1);
        assert_eq!(row.latency_p50_ms, Some(100.0));
        assert_eq!(row.latency_p95_ms, Some(300.0));
        assert_eq!(row.ttft_p50_ms, Some(20.0));
    }
}
