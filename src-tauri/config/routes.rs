//! `routes` in the settings: a name a prototype uses as its model, standing for several
//! `provider/model` targets that stand in for each other.

use serde::{Deserialize, Serialize};

use super::{Capability, ProviderConfig};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: String,
    /// `provider-id/model`, or `provider-id` alone for its default model; in the order
    /// `fallback` tries them.
    pub targets: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    /// For `weighted`: one positive weight per target, in the same order (`[3, 1]`
    /// sends three requests to the first target for each one to the second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<u32>>,
    /// How long a target that failed three times in a row is skipped.
    #[serde(
        default = "default_cooldown_s",
        skip_serializing_if = "is_default_cooldown"
    )]
    pub cooldown_s: f64,
}

fn default_cooldown_s() -> f64 {
    30.0
}

fn is_default_cooldown(s: &f64) -> bool {
    *s == default_cooldown_s()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The targets in order: the next only when the one before failed.
    #[default]
    Fallback,
    /// Each request starts at the next target.
    RoundRobin,
    /// Requests spread by `weights` (smooth weighted round robin, as nginx does it).
    Weighted,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Fallback => "fallback",
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
        }
    }
}

impl RouteSection {
    /// Each target as (provider id, model), the model `None` for the provider's default.
    pub fn parsed_targets(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.targets.iter().map(|t| split_target(t))
    }
}

/// `provider-id/model` → (`provider-id`, `Some(model)`); `provider-id` or
/// `provider-id/` → (`provider-id`, `None`).
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('/') {
        Some((provider, model)) => (provider, Some(model).filter(|m| !m.is_empty())),
        None => (target, None),
    }
}

/// A mistake in `routes`, as (field, message).
pub fn check(
    routes: &[RouteSection],
    providers: &[ProviderConfig],
) -> Result<(), (String, String)> {
    for (i, route) in routes.iter().enumerate() {
        let at = |field: &str, message: String| Err((format!("[{i}].{field}"), message));
        let name = route.name.as_str();
        if name.trim().is_empty() || name.contains('/') || name != name.trim() {
            return at(
                "name",
                format!(
                    "`{name}` must be a name without `/` or surrounding spaces (a model name \
                     with `/` means `provider/model`), e.g. \"fast\""
                ),
            );
        }
        if providers.iter().any(|p| p.id == name) {
            return at(
                "name",
                format!("`{name}` is a provider's id; give the route a name of its own"),
            );
        }
        if routes[..i].iter().any(|r| r.name == name) {
            return at("name", format!("`{name}` is used by another route"));
        }
        if route.targets.is_empty() {
            return at(
                "targets",
                "is empty; list at least one `provider-id/model`, e.g. \
                 [\"openai/gpt-4o-mini\"]"
                    .into(),
            );
        }
        for (j, (target, (id, _))) in route.targets.iter().zip(route.parsed_targets()).enumerate() {
            let field = format!("targets[{j}]");
            let Some(provider) = providers.iter().find(|p| p.id == id) else {
                let ids: Vec<&str> = chat_providers(providers).collect();
                return at(
                    &field,
                    format!(
                        "`{target}` names no configured provider; write `provider-id/model` \
                         with one of: {}",
                        ids.join(", ")
                    ),
                );
            };
            if !provider.can(Capability::Chat) {
                let ids: Vec<&str> = chat_providers(providers).collect();
                return at(
                    &field,
                    format!(
                        "provider `{id}` ({}) cannot chat; providers that can: {}",
                        provider.kind,
                        ids.join(", ")
                    ),
                );
            }
            let same = |t: &String| resolved(t, providers) == resolved(target, providers);
            if route.targets[..j].iter().any(same) {
                return at(&field, format!("`{target}` is listed twice"));
            }
        }
        match (route.strategy, &route.weights) {
            (Strategy::Weighted, None) => {
                return at(
                    "weights",
                    format!(
                        "is missing: `weighted` needs one weight per target, e.g. {:?}",
                        vec![1; route.targets.len()]
                    ),
                )
            }
            (Strategy::Weighted, Some(w)) if w.len() != route.targets.len() => {
                return at(
                    "weights",
                    format!(
                        "has {} weights for {} targets; give one per target",
                        w.len(),
                        route.targets.len()
                    ),
                )
            }
            (Strategy::Weighted, Some(w)) => {
                if let Some(k) = w.iter().position(|w| *w == 0) {
                    return at(&format!("weights[{k}]"), "must be above 0".into());
                }
            }
            (strategy, Some(_)) => {
                return at(
                    "weights",
                    format!(
                        "only count with \"strategy\": \"weighted\", not `{}`; remove them or \
                         change the strategy",
                        strategy.as_str()
                    ),
                )
            }
            (_, None) => {}
        }
        if !(route.cooldown_s.is_finite() && route.cooldown_s > 0.0 && route.cooldown_s <= 3600.0) {
            return at(
                "cooldown_s",
                format!(
                    "must be above 0 and at most 3600 seconds, not {}",
                    route.cooldown_s
                ),
            );
        }
    }
    Ok(())
}

/// `provider-id/model` with the default model filled in, to spot a target listed twice.
fn resolved(target: &str, providers: &[ProviderConfig]) -> (String, String) {
    let (id, model) = split_target(target);
    let model = model.map(String::from).unwrap_or_else(|| {
        providers
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.default_model.clone())
            .unwrap_or_default()
    });
    (id.to_string(), model)
}

fn chat_providers(providers: &[ProviderConfig]) -> impl Iterator<Item = &str> {
    providers
        .iter()
        .filter(|p| p.can(Capability::Chat))
        .map(|p| p.id.as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn check(routes: Value) -> Result<(), String> {
        let settings = json!({
            "providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "groq", "kind": "openai", "base_url": "https://api.groq.com/openai/v1", "default_model": "llama-3.1-8b-instant"},
                {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini"},
                {"id": "tavily", "kind": "tavily", "base_url": "https://api.tavily.com"}
            ],
            "routes": routes,
        });
        crate::config::parse(&settings.to_string(), "settings.json")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_route_of_chat_providers_is_accepted_in_every_strategy() {
        check(json!([
            {"name": "fast", "targets": ["groq/llama-3.1-8b-instant", "openai/gpt-4o-mini"]},
            {"name": "spread", "targets": ["groq", "openai/"], "strategy": "round_robin"},
            {"name": "mostly-groq", "targets": ["groq", "openai"], "strategy": "weighted",
             "weights": [3, 1], "cooldown_s": 0.5}
        ]))
        .unwrap();
    }

    #[test]
    fn mistakes_are_told_with_their_field() {
        let cases = [
            (json!([{"name": "a/b", "targets": ["groq"]}]), "routes[0].name", "without `/`"),
            (json!([{"name": "groq", "targets": ["openai"]}]), "routes[0].name", "a provider's id"),
            (
                json!([{"name": "x", "targets": ["groq"]}, {"name": "x", "targets": ["openai"]}]),
                "routes[1].name",
                "another route",
            ),
            (json!([{"name": "x", "targets": []}]), "routes[0].targets", "is empty"),
            (
                json!([{"name": "x", "targets": ["groq", "mistral/small"]}]),
                "routes[0].targets[1]",
                "names no configured provider; write `provider-id/model` with one of: demo, groq, openai",
            ),
            (json!([{"name": "x", "targets": ["tavily"]}]), "routes[0].targets[0]", "cannot chat"),
            (
                json!([{"name": "x", "targets": ["openai", "openai/gpt-4o-mini"]}]),
                "routes[0].targets[1]",
                "listed twice",
            ),
            (
                json!([{"name": "x", "targets": ["groq", "openai"], "strategy": "weighted"}]),
                "routes[0].weights",
                "one weight per target, e.g. [1, 1]",
            ),
            (
                json!([{"name": "x", "targets": ["groq", "openai"], "strategy": "weighted", "weights": [1]}]),
                "routes[0].weights",
                "1 weights for 2 targets",
            ),
            (
                json!([{"name": "x", "targets": ["groq", "openai"], "strategy": "weighted", "weights": [2, 0]}]),
                "routes[0].weights[1]",
                "above 0",
            ),
            (
                json!([{"name": "x", "targets": ["groq", "openai"], "weights": [2, 1]}]),
                "routes[0].weights",
                "only count with \"strategy\": \"weighted\"",
            ),
            (
                json!([{"name": "x", "targets": ["groq"], "cooldown_s": 0}]),
                "routes[0].cooldown_s",
                "above 0",
            ),
        ];
        for (routes, field, message) in cases {
            let e = check(routes.clone()).expect_err(&routes.to_string());
            assert!(
                e.contains(&format!("settings.json: {field}: ")) && e.contains(message),
                "for {routes}: {e}"
            );
        }
    }

    #[test]
    fn an_unknown_strategy_or_field_is_refused() {
        let e =
            check(json!([{"name": "x", "targets": ["groq"], "strategy": "random"}])).unwrap_err();
        assert!(e.contains("random"), "{e}");
        let e = check(json!([{"name": "x", "targets": ["groq"], "retries": 3}])).unwrap_err();
        assert!(e.contains("retries"), "{e}");
    }
}
