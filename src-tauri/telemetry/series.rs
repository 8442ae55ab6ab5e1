//! The series of each provider and model, found with one lookup per finished request:
//! a family lookup hashes its whole label set under the family's lock, and a request
//! touches five series, which cost more than everything else the metrics do.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::labels::OTHER;

/// Distinct provider and model pairs kept as labels; later ones are counted as `other`,
/// so a client inventing model names cannot grow the series without end.
pub const MAX_PAIRS: usize = 200;

/// The handles of one provider and model (clones share the families' counts).
#[derive(Debug)]
pub struct ModelSeries {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    /// Requests by route and status: a handful per model.
    requests: RwLock<Vec<(&'static str, u16, Counter)>>,
    /// None for requests that reached no provider (refused, `/health`).
    pub answered: Option<Answered>,
}

/// What only a request that reached a provider has.
#[derive(Debug)]
pub struct Answered {
    pub duration: Histogram,
    pub first_token: Histogram,
    pub input_tokens: Counter,
    pub output_tokens: Counter,
}

impl ModelSeries {
    pub fn new(provider: Arc<str>, model: Arc<str>, answered: Option<Answered>) -> Self {
        ModelSeries {
            provider,
            model,
            requests: RwLock::default(),
            answered,
        }
    }

    /// The requests counter for `route` and `status`, made by `make` the first time.
    pub fn requests(
        &self,
        route: &'static str,
        status: u16,
        make: impl FnOnce() -> Counter,
    ) -> Counter {
        let found = |list: &[(&'static str, u16, Counter)]| {
            list.iter()
                .find(|(r, s, _)| *s == status && *r == route)
                .map(|(_, _, c)| c.clone())
        };
        if let Some(counter) = found(&self.requests.read().expect("series lock")) {
            return counter;
        }
        let mut list = self.requests.write().expect("series lock");
        if let Some(counter) = found(&list) {
            return counter;
        }
        let counter = make();
        list.push((route, status, counter.clone()));
        counter
    }
}

/// Provider, then model, to its series.
type Pairs = HashMap<Box<str>, HashMap<Box<str>, Arc<ModelSeries>>>;

/// Every provider and model pair seen so far, up to [`MAX_PAIRS`].
#[derive(Debug, Default)]
pub struct SeriesCache {
    pairs: RwLock<Pairs>,
    count: std::sync::atomic::AtomicUsize,
}

impl SeriesCache {
    /// The series of `provider` and `model` ("" for none), made by `make` the first time
    /// (with the label values it should use: `other` past the bound, for a provider).
    pub fn get(
        &self,
        provider: &str,
        model: &str,
        make: impl FnOnce(Arc<str>, Arc<str>) -> ModelSeries,
    ) -> Arc<ModelSeries> {
        let found = |pairs: &Pairs| pairs.get(provider).and_then(|m| m.get(model)).cloned();
        if let Some(series) = found(&self.pairs.read().expect("series lock")) {
            return series;
        }
        let mut pairs = self.pairs.write().expect("series lock");
        if let Some(series) = found(&pairs) {
            return series;
        }
        let count = &self.count;
        // Requests that reached no provider are one pair, always their own.
        if count.load(std::sync::atomic::Ordering::Relaxed) >= MAX_PAIRS && !provider.is_empty() {
            let other = || Box::<str>::from(OTHER);
            return pairs
                .entry(other())
                .or_default()
                .entry(other())
                .or_insert_with(|| Arc::new(make(Arc::from(OTHER), Arc::from(OTHER))))
                .clone();
        }
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let series = Arc::new(make(Arc::from(provider), Arc::from(model)));
        pairs
            .entry(provider.into())
            .or_default()
            .insert(model.into(), series.clone());
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(provider: Arc<str>, model: Arc<str>) -> ModelSeries {
        ModelSeries::new(provider, model, None)
    }

    #[test]
    fn pairs_past_the_bound_are_other() {
        let cache = SeriesCache::default();
        for i in 0..MAX_PAIRS {
            let s = cache.get("p", &format!("model-{i}"), plain);
            assert_eq!(&*s.model, format!("model-{i}"));
        }
        let past = cache.get("p", "one-too-many", plain);
        assert_eq!((&*past.provider, &*past.model), (OTHER, OTHER));
        assert!(Arc::ptr_eq(&past, &cache.get("q", "another", plain)));
        assert_eq!(
            &*cache.get("p", "model-7", plain).model,
            "model-7",
            "known pairs stay"
        );
        assert_eq!(
            &*cache.get("", "", plain).provider,
            "",
            "no provider is its own pair"
        );
    }

    #[test]
    fn a_route_and_status_has_one_counter() {
        let series = plain(Arc::from("p"), Arc::from("m"));
        let route: &'static str = "/v1/models";
        series.requests(route, 200, Counter::default).inc();
        series.requests(route, 200, Counter::default).inc();
        series.requests(route, 404, Counter::default).inc();
        assert_eq!(series.requests(route, 200, Counter::default).get(), 2);
        assert_eq!(series.requests(route, 404, Counter::default).get(), 1);
    }
}
