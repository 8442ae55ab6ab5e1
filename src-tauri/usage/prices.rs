//! What a model costs: a small built-in table of list prices, with the settings' own
//! prices (`usage.prices`) over it. Every figure is an estimate: providers change their
//! prices, bill cached and batch tokens differently, and do not tell us what they billed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::config::{Config, ProviderKind};

/// When the built-in prices were copied from the providers' pricing pages.
pub const PRICES_AS_OF: &str = "November 2025";

/// List prices, USD per million input and output tokens, by model name as the providers
/// spell it (without a date suffix: `gpt-4o-mini-2024-07-18` is `gpt-4o-mini`).
const BUILT_IN: &[(&str, f64, f64)] = &[
    // OpenAI
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-5", 1.25, 10.00),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("o3", 2.00, 8.00),
    ("o4-mini", 1.10, 4.40),
    // Anthropic (and the same models through Bedrock)
    ("claude-opus-4-1", 15.00, 75.00),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4-5", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-haiku", 0.25, 1.25),
    // Groq
    ("llama-3.1-8b-instant", 0.05, 0.08),
    ("llama-3.3-70b-versatile", 0.59, 0.79),
    // Google, through its OpenAI-compatible endpoint
    ("gemini-2.5-pro", 1.25, 10.00),
    ("gemini-2.5-flash", 0.30, 2.50),
    ("gemini-2.0-flash", 0.10, 0.40),
];

/// USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// The cost of `input` and `output` tokens, in USD.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1e6
    }
}

/// Where a price came from, as the Usage view says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriceSource {
    /// `usage.prices` in the settings.
    Settings,
    /// The built-in table (see [`PRICES_AS_OF`]).
    BuiltIn,
    /// The demo provider, which costs nothing.
    Free,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PriceLookup {
    #[serde(flatten)]
    pub price: Price,
    pub source: PriceSource,
}

/// The prices a summary or a budget reads, built once from the settings.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    settings: HashMap<String, Price>,
    /// Providers that cost nothing (the demo).
    free: HashSet<String>,
}

impl PriceTable {
    pub fn new(config: &Config) -> Self {
        PriceTable {
            settings: config
                .usage
                .prices
                .iter()
                .map(|(key, p)| {
                    let price = Price {
                        input: p.input,
                        output: p.output,
                    };
                    (key.to_ascii_lowercase(), price)
                })
                .collect(),
            free: config
                .providers
                .iter()
                .filter(|p| p.kind == ProviderKind::Demo)
                .map(|p| p.id.clone())
                .collect(),
        }
    }

    /// The price of `model` at `provider`: the settings' `provider/model`, then their
    /// `model` (also without a date suffix), then free for the demo, then the built-in
    /// table. `None`: no price known, which the view shows as "no price", never as $0.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<PriceLookup> {
        let model = model.to_ascii_lowercase();
        let bare = base_name(&model);
        let from_settings = [format!("{provider}/{model}"), model.clone()]
            .iter()
            .find_map(|key| self.settings.get(key))
            .or_else(|| self.settings.get(bare));
        if let Some(&price) = from_settings {
            return Some(PriceLookup {
                price,
                source: PriceSource::Settings,
            });
        }
        if self.free.contains(provider) {
            return Some(PriceLookup {
                price: Price {
                    input: 0.0,
                    output: 0.0,
                },
                source: PriceSource::Free,
            });
        }
        BUILT_IN
            .iter()
            .find(|(name, ..)| *name == bare)
            .map(|&(_, input, output)| PriceLookup {
                price: Price { input, output },
                source: PriceSource::BuiltIn,
            })
    }
}

/// The built-in table, for the window's price list.
pub fn built_in() -> impl Iterator<Item = (&'static str, Price)> {
    BUILT_IN
        .iter()
        .map(|&(name, input, output)| (name, Price { input, output }))
}

/// A model name as the built-in table spells it: without a publisher path
/// (`openai/gpt-4.1`), a Bedrock prefix and version (`anthropic.claude-3-5-sonnet-20240620-v1:0`),
/// `-latest`, or a date (`-2024-07-18`, `-20241022`).
fn base_name(model: &str) -> &str {
    let mut name = model.rsplit('/').next().unwrap_or(model);
    if let Some(i) = name.find("anthropic.") {
        name = &name[i + "anthropic.".len()..];
    }
    if let Some((head, version)) = name.rsplit_once("-v") {
        let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if version.split(':').all(number) {
            name = head;
        }
    }
    name = name.strip_suffix("-latest").unwrap_or(name);
    strip_date(name)
}

fn strip_date(name: &str) -> &str {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // -YYYYMMDD
    if let Some((head, tail)) = name.rsplit_once('-') {
        if tail.len() == 8 && digits(tail) && tail.starts_with("20") {
            return head;
        }
    }
    // -YYYY-MM-DD
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if let [day, month, year, head] = parts[..] {
        let shaped = year.len() == 4 && month.len() == 2 && day.len() == 2;
        if shaped && digits(year) && digits(month) && digits(day) {
            return head;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(usage: &str) -> PriceTable {
        let config = crate::config::parse(
            &format!(
                r#"{{"providers": [{{"id": "demo", "kind": "demo"}},
                    {{"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini"}}],
                   "usage": {usage}}}"#
            ),
            "test",
        )
        .unwrap();
        PriceTable::new(&config)
    }

    fn price(t: &PriceTable, provider: &str, model: &str) -> Option<(f64, f64, PriceSource)> {
        t.lookup(provider, model)
            .map(|l| (l.price.input, l.price.output, l.source))
    }

    #[test]
    fn built_in_prices_match_dated_and_prefixed_names() {
        let t = table("{}");
        let mini = Some((0.15, 0.60, PriceSource::BuiltIn));
        assert_eq!(price(&t, "openai", "gpt-4o-mini"), mini);
        assert_eq!(price(&t, "openai", "gpt-4o-mini-2024-07-18"), mini);
        assert_eq!(price(&t, "openrouter", "openai/gpt-4o-mini"), mini);
        let sonnet = Some((3.0, 15.0, PriceSource::BuiltIn));
        assert_eq!(price(&t, "anthropic", "claude-3-5-sonnet-20241022"), sonnet);
        assert_eq!(price(&t, "anthropic", "claude-sonnet-4-5-20250929"), sonnet);
        assert_eq!(
            price(
                &t,
                "ai-gateway",
                "anthropic.claude-3-5-sonnet-20240620-v1:0"
            ),
            sonnet
        );
        assert_eq!(
            price(&t, "anthropic", "claude-3-5-haiku-latest").unwrap().0,
            0.8
        );
        assert_eq!(price(&t, "groq", "llama-3.1-8b-instant").unwrap().1, 0.08);
        // A near name is not the same model.
        assert_eq!(price(&t, "openai", "gpt-4o-mini-transcribe"), None);
        assert_eq!(
            price(&t, "ollama", "llama3.2"),
            None,
            "unknown: no price, not $0"
        );
    }

    #[test]
    fn the_settings_win_by_provider_and_model_then_by_model() {
        let t = table(
            r#"{"prices": {"openai/gpt-4o-mini": {"input": 1, "output": 2},
                           "gpt-4o-mini": {"input": 3, "output": 4},
                           "llama3.2": {"input": 0, "output": 0}}}"#,
        );
        assert_eq!(
            price(&t, "openai", "gpt-4o-mini"),
            Some((1.0, 2.0, PriceSource::Settings))
        );
        assert_eq!(
            price(&t, "openrouter", "gpt-4o-mini-2024-07-18"),
            Some((3.0, 4.0, PriceSource::Settings))
        );
        assert_eq!(
            price(&t, "ollama", "llama3.2"),
            Some((0.0, 0.0, PriceSource::Settings))
        );
    }

    #[test]
    fn the_demo_is_free_and_cost_is_per_million() {
        let t = table("{}");
        assert_eq!(
            price(&t, "demo", "anything"),
            Some((0.0, 0.0, PriceSource::Free))
        );
        let p = Price {
            input: 0.15,
            output: 0.60,
        };
        assert!((p.cost(1_000_000, 500_000) - 0.45).abs() < 1e-12);
    }
}
