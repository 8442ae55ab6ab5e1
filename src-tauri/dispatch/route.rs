//! A route at run time (`routes[]` in the settings): its targets resolved against the
//! providers, the order its strategy tries them in for each request, and each target's
//! health. Also what a request is sent to: one provider, or a route.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cooldown::Health;
use crate::config::{ProviderConfig, ProviderKind, RouteSection, Strategy};
use crate::providers::Provider;

/// Tries a request gets at least, moving through the targets (a route with one target
/// tries it again after a pause), before it fails.
pub const TRIES_AT_LEAST: usize = 3;

/// A configured route: a cheap-clone handle.
#[derive(Clone, Debug)]
pub struct Route(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    section: RouteSection,
    targets: Vec<Target>,
    cooldown: Duration,
    /// Shared with the route this one replaced when nothing about it changed, so a
    /// settings change does not forget which target is down.
    turns: Arc<Mutex<Turns>>,
}

/// One `provider/model` of a route.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Where the provider is in the registry's list (the settings' order).
    pub provider: usize,
    pub provider_id: String,
    pub model: String,
    /// `provider-id/model`, as the log and the lists name it.
    pub name: String,
    pub kind: ProviderKind,
    base_url: Option<String>,
}

/// What changes from one request to the next.
#[derive(Debug)]
struct Turns {
    health: Vec<Health>,
    /// `round_robin`: requests so far.
    served: usize,
    /// `weighted`: the current weights of smooth weighted round robin.
    current: Vec<i64>,
}

/// The order one request tries a route's targets in.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// Target indices; a target may come back for another try after the others.
    pub tries: Vec<usize>,
    /// Targets left out while they cool down, and how long is left.
    pub skipped: Vec<(usize, Duration)>,
}

impl Route {
    /// The route `section` over `providers` (the registry's, in its order). The settings
    /// check guarantees each target names a provider that can chat.
    pub fn new(section: &RouteSection, providers: &[ProviderConfig]) -> Self {
        let targets: Vec<Target> = section
            .parsed_targets()
            .filter_map(|(id, model)| {
                let at = providers.iter().position(|p| p.id == id)?;
                let p = &providers[at];
                let model = model.unwrap_or(&p.default_model).to_string();
                Some(Target {
                    provider: at,
                    provider_id: p.id.clone(),
                    name: format!("{}/{model}", p.id),
                    model,
                    kind: p.kind,
                    base_url: p.base_url.as_ref().map(|u| u.to_string()),
                })
            })
            .collect();
        let turns = Turns {
            health: vec![Health::default(); targets.len()],
            served: 0,
            current: vec![0; targets.len()],
        };
        Route(Arc::new(Inner {
            section: section.clone(),
            targets,
            cooldown: Duration::from_secs_f64(section.cooldown_s),
            turns: Arc::new(Mutex::new(turns)),
        }))
    }

    /// This route with `previous`'s health and turn when the route and its targets'
    /// providers are unchanged (an origin approved, a price edited): a target that was
    /// down stays skipped. A changed base URL starts afresh: it may be the fix.
    pub fn keeping(self, previous: &Route) -> Route {
        if self.0.section != previous.0.section || self.0.targets != previous.0.targets {
            return self;
        }
        Route(Arc::new(Inner {
            section: self.0.section.clone(),
            targets: self.0.targets.clone(),
            cooldown: self.0.cooldown,
            turns: previous.0.turns.clone(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.section.name
    }

    pub fn strategy(&self) -> Strategy {
        self.0.section.strategy
    }

    pub fn weights(&self) -> Option<&[u32]> {
        self.0.section.weights.as_deref()
    }

    pub fn targets(&self) -> &[Target] {
        &self.0.targets
    }

    /// What the lists (`/v1/models`, `/api/agents`) say stands behind the route.
    pub fn describe(&self) -> serde_json::Value {
        let targets: Vec<&str> = self.targets().iter().map(|t| t.name.as_str()).collect();
        let mut about =
            serde_json::json!({"strategy": self.strategy().as_str(), "targets": targets});
        if let Some(weights) = self.weights() {
            about["weights"] = serde_json::json!(weights);
        }
        about
    }

    /// Every target is the offline demo, which answers anything.
    pub fn all_demo(&self) -> bool {
        self.0.targets.iter().all(|t| t.kind == ProviderKind::Demo)
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        // A panic elsewhere while the lock was held leaves numbers, still usable.
        self.0.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The order for the next request: the strategy's, without the targets cooling down;
    /// when every target cools, the least recently failed first rather than none.
    pub fn plan(&self, now: Instant) -> Plan {
        let mut turns = self.turns();
        let order = self.order(&mut turns);
        let (ready, cooling): (Vec<usize>, Vec<usize>) = order
            .into_iter()
            .partition(|t| turns.health[*t].cooling(now).is_none());
        let (first, skipped) = if ready.is_empty() {
            let mut cooling = cooling;
            cooling.sort_by_key(|t| turns.health[*t].last_failed());
            (cooling, vec![])
        } else {
            let skipped = cooling
                .into_iter()
                .filter_map(|t| Some((t, turns.health[t].cooling(now)?)))
                .collect();
            (ready, skipped)
        };
        let tries = first
            .iter()
            .copied()
            .cycle()
            .take(first.len().max(TRIES_AT_LEAST))
            .collect();
        Plan { tries, skipped }
    }

    /// The strategy's order of all targets, moving its turn on.
    fn order(&self, turns: &mut Turns) -> Vec<usize> {
        let n = self.0.targets.len();
        match (self.strategy(), self.weights()) {
            (Strategy::RoundRobin, _) => {
                let start = turns.served % n;
                turns.served = turns.served.wrapping_add(1);
                (0..n).map(|k| (start + k) % n).collect()
            }
            (Strategy::Weighted, Some(weights)) => {
                // Smooth weighted round robin: every target gains its weight, the one
                // with the most goes first and gives back the total. [3, 1] gives
                // A A B A, again and again.
                let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
                for (current, w) in turns.current.iter_mut().zip(weights) {
                    *current += i64::from(*w);
                }
                let first = (0..n)
                    .rev()
                    .max_by_key(|t| turns.current[*t])
                    .expect("a route has a target");
                turns.current[first] -= total;
                // Then the others, heaviest first, should the first fail.
                let mut rest: Vec<usize> = (0..n).filter(|t| *t != first).collect();
                rest.sort_by_key(|t| std::cmp::Reverse(weights[*t]));
                std::iter::once(first).chain(rest).collect()
            }
            _ => (0..n).collect(),
        }
    }

    /// How long target `t` is still skipped, if it is.
    pub fn cooling(&self, t: usize, now: Instant) -> Option<Duration> {
        self.turns().health[t].cooling(now)
    }

    pub fn answered(&self, t: usize) {
        self.turns().health[t].answered();
    }

    pub fn failed(&self, t: usize, now: Instant, retry_after: Option<Duration>) {
        let cooldown = self.0.cooldown;
        self.turns().health[t].failed(now, cooldown, retry_after);
    }
}

/// Where a chat is sent: one provider, or a route whose targets answer in turn.
#[derive(Clone, Copy, Debug)]
pub enum Via<'a> {
    Provider(&'a Provider),
    Route(&'a Route),
}

impl Via<'_> {
    /// The provider's id or the route's name: what the client asked for.
    pub fn id(&self) -> &str {
        match self {
            Via::Provider(p) => p.id(),
            Via::Route(r) => r.name(),
        }
    }

    pub fn owned(self) -> Destination {
        match self {
            Via::Provider(p) => Destination::Provider(Box::new(p.clone())),
            Via::Route(r) => Destination::Route(r.clone()),
        }
    }
}

impl<'a> From<&'a Provider> for Via<'a> {
    fn from(p: &'a Provider) -> Self {
        Via::Provider(p)
    }
}

impl<'a> From<&'a Route> for Via<'a> {
    fn from(r: &'a Route) -> Self {
        Via::Route(r)
    }
}

/// [`Via`] for a turn that outlives the request's borrow of the settings.
#[derive(Clone, Debug)]
pub enum Destination {
    Provider(Box<Provider>),
    Route(Route),
}

impl Destination {
    /// The provider's id or the route's name: what the client asked for.
    pub fn id(&self) -> &str {
        match self {
            Destination::Provider(p) => p.id(),
            Destination::Route(r) => r.name(),
        }
    }
}

impl<'a> From<&'a Destination> for Via<'a> {
    fn from(d: &'a Destination) -> Self {
        match d {
            Destination::Provider(p) => Via::Provider(p.as_ref()),
            Destination::Route(r) => Via::Route(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(extra: serde_json::Value) -> Route {
        let mut section = serde_json::json!({"name": "r", "targets": ["a/m1", "b", "c/m3"]});
        for (k, v) in extra.as_object().unwrap() {
            section[k] = v.clone();
        }
        let settings = serde_json::json!({
            "providers": [
                {"id": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "default_model": "a-default"},
                {"id": "b", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "default_model": "b-default"},
                {"id": "c", "kind": "demo"}
            ],
            "routes": [section],
        });
        let config = crate::config::parse(&settings.to_string(), "test").unwrap();
        Route::new(&config.routes[0], &config.providers)
    }

    fn firsts(route: &Route, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| route.plan(Instant::now()).tries[0])
            .collect()
    }

    #[test]
    fn targets_name_their_provider_and_model() {
        let r = route(serde_json::json!({}));
        let names: Vec<&str> = r.targets().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a/m1", "b/b-default", "c/m3"]);
        assert!(!r.all_demo());
    }

    #[test]
    fn fallback_tries_in_order_round_robin_rotates_weighted_follows_weights() {
        let r = route(serde_json::json!({}));
        assert_eq!(r.plan(Instant::now()).tries, [0, 1, 2]);
        assert_eq!(firsts(&r, 3), [0, 0, 0]);

        let r = route(serde_json::json!({"strategy": "round_robin"}));
        assert_eq!(r.plan(Instant::now()).tries, [0, 1, 2]);
        assert_eq!(r.plan(Instant::now()).tries, [1, 2, 0]);
        assert_eq!(firsts(&r, 4), [2, 0, 1, 2]);

        let r = route(serde_json::json!({"strategy": "weighted", "weights": [3, 1, 1]}));
        // nginx's sequence for 3:1:1.
        assert_eq!(firsts(&r, 10), [0, 1, 0, 2, 0, 0, 1, 0, 2, 0]);
        let r = route(
            serde_json::json!({"targets": ["a", "b"], "strategy": "weighted", "weights": [3, 1]}),
        );
        assert_eq!(firsts(&r, 8), [0, 0, 1, 0, 0, 0, 1, 0]);
        assert_eq!(
            r.plan(Instant::now()).tries,
            [0, 1, 0],
            "then the other, then again"
        );
    }

    #[test]
    fn a_cooling_target_is_skipped_until_all_cool_then_the_least_recently_failed_goes_first() {
        let r = route(serde_json::json!({"cooldown_s": 30}));
        let t0 = Instant::now();
        for _ in 0..3 {
            r.failed(0, t0, None);
        }
        let plan = r.plan(t0);
        assert_eq!(plan.tries, [1, 2, 1]);
        assert_eq!(plan.skipped, [(0, Duration::from_secs(30))]);
        let later = t0 + Duration::from_secs(1);
        for _ in 0..3 {
            r.failed(2, later, None);
            r.failed(1, t0 + Duration::from_secs(2), None);
        }
        let plan = r.plan(later);
        assert_eq!(plan.tries, [0, 2, 1], "oldest failure first, none refused");
        assert!(plan.skipped.is_empty());
        assert_eq!(r.plan(t0 + Duration::from_millis(30_500)).tries, [0, 0, 0]);
    }

    #[test]
    fn health_survives_a_reload_only_when_nothing_about_the_route_changed() {
        let old = route(serde_json::json!({}));
        for _ in 0..3 {
            old.failed(0, Instant::now(), None);
        }
        let same = route(serde_json::json!({})).keeping(&old);
        assert!(same.cooling(0, Instant::now()).is_some());
        let changed = route(serde_json::json!({"cooldown_s": 5})).keeping(&old);
        assert!(changed.cooling(0, Instant::now()).is_none());
    }
}
