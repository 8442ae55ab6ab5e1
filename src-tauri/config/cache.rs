//! `cache` in the settings: identical requests answered from memory, off by default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ProviderConfig, RouteSection};

/// The longest time to live: a month. Longer is a mistake (and moka refuses centuries).
const MAX_TTL_S: u64 = 30 * 24 * 3600;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    pub enabled: bool,
    /// How long an answer is served from memory, in seconds.
    pub ttl_s: u64,
    pub max_entries: u64,
    /// The memory the stored answers may use, in bytes.
    pub max_bytes: u64,
    /// Requests sampled hotter than this are neither cached nor coalesced: their caller
    /// wants variety. A request that names no temperature counts as 1.0, the default of
    /// OpenAI's and Anthropic's APIs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_temperature: Option<f64>,
    /// Per provider id (or route name): `false` keeps it out of the cache, `true` puts
    /// it in even while `enabled` is off.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, bool>,
    /// Identical requests in flight share one upstream call (while the cache applies to
    /// them).
    pub coalesce: bool,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: false,
            ttl_s: 300,
            max_entries: 1000,
            max_bytes: 32 << 20,
            max_temperature: None,
            providers: BTreeMap::new(),
            coalesce: true,
        }
    }
}

impl CacheSection {
    /// Whether requests to `scope` (a provider id or a route name) are cached.
    pub fn applies_to(&self, scope: &str) -> bool {
        self.providers.get(scope).copied().unwrap_or(self.enabled)
    }

    /// Whether any request may be cached at all.
    pub fn any_on(&self) -> bool {
        self.enabled || self.providers.values().any(|on| *on)
    }

    /// A mistake in the section, as (field, message).
    pub fn check(
        &self,
        providers: &[ProviderConfig],
        routes: &[RouteSection],
    ) -> Result<(), (String, String)> {
        let err = |field: &str, message: String| Err((field.to_string(), message));
        if self.ttl_s == 0 || self.ttl_s > MAX_TTL_S {
            return err(
                "ttl_s",
                format!(
                    "must be from 1 to {MAX_TTL_S} seconds (30 days); it is how long an \
                     answer is served from memory, e.g. 300 for five minutes"
                ),
            );
        }
        if self.max_entries == 0 {
            return err(
                "max_entries",
                "must be at least 1; to turn the cache off, set \"enabled\": false".into(),
            );
        }
        if self.max_bytes == 0 {
            return err(
                "max_bytes",
                "must be more than 0: it is the memory the cache may use, in bytes \
                 (32 MB is 33554432); to turn the cache off, set \"enabled\": false"
                    .into(),
            );
        }
        if let Some(t) = self.max_temperature {
            if !t.is_finite() || t < 0.0 {
                return err(
                    "max_temperature",
                    format!("must be a temperature of 0 or more (e.g. 0.3), not {t}"),
                );
            }
        }
        let ids: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
        for id in self.providers.keys() {
            if !ids.contains(&id.as_str()) && !routes.iter().any(|r| &r.name == id) {
                return err(
                    &format!("providers.{id}"),
                    format!(
                        "names no provider or route; the providers are: {}",
                        ids.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(section: serde_json::Value) -> Result<(), (String, String)> {
        let section: CacheSection = serde_json::from_value(section).unwrap();
        section.check(&[], &[])
    }

    #[test]
    fn the_default_is_off_and_valid() {
        let d = CacheSection::default();
        assert!(!d.enabled && !d.any_on() && d.coalesce);
        assert_eq!(d.check(&[], &[]), Ok(()));
    }

    #[test]
    fn mistakes_name_their_field() {
        let field = |v| check(v).unwrap_err().0;
        assert_eq!(field(serde_json::json!({"max_bytes": 0})), "max_bytes");
        assert_eq!(field(serde_json::json!({"max_entries": 0})), "max_entries");
        assert_eq!(field(serde_json::json!({"ttl_s": 0})), "ttl_s");
        assert_eq!(field(serde_json::json!({"ttl_s": 1u64 << 40})), "ttl_s");
        assert_eq!(
            field(serde_json::json!({"max_temperature": -1})),
            "max_temperature"
        );
        assert_eq!(
            field(serde_json::json!({"providers": {"nope": false}})),
            "providers.nope"
        );
        let (_, message) = check(serde_json::json!({"max_bytes": 0})).unwrap_err();
        assert!(message.contains("33554432"), "{message}");
    }

    #[test]
    fn a_provider_switch_overrides_the_main_one() {
        let s: CacheSection = serde_json::from_value(
            serde_json::json!({"enabled": false, "providers": {"openai": true, "demo": false}}),
        )
        .unwrap();
        assert!(s.applies_to("openai") && !s.applies_to("demo") && !s.applies_to("other"));
        assert!(s.any_on());
    }
}
