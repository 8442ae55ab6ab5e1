//! `usage` in the settings: the price table the Usage view estimates cost with, and
//! daily budgets per provider.
//!
//! ```json
//! "usage": {
//!   "prices": {"openai/gpt-4o-mini": {"input": 0.15, "output": 0.6}, "llama3.2": {"input": 0, "output": 0}},
//!   "budgets": {"openai": {"daily_usd": 5, "stop_at_budget": true}}
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSection {
    /// USD per million tokens, by `provider/model` or by model alone; these win over the
    /// built-in table.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, PriceSection>,
    /// A daily spending budget per provider id (days in UTC, as the log files are).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub budgets: BTreeMap<String, BudgetSection>,
}

/// A model's price in USD per million tokens.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceSection {
    pub input: f64,
    pub output: f64,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    pub daily_usd: f64,
    /// Refuse the provider's requests (429) once the day's spend reaches the budget;
    /// otherwise only warn.
    #[serde(default)]
    pub stop_at_budget: bool,
}

impl UsageSection {
    /// A mistake in the section, as (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        for (key, price) in &self.prices {
            if key.trim().is_empty() || key.ends_with('/') {
                return Err((
                    format!("prices.{key:?}"),
                    "needs a model, as `model` or `provider/model`".into(),
                ));
            }
            for (side, value) in [("input", price.input), ("output", price.output)] {
                if !value.is_finite() || value < 0.0 {
                    return Err((
                        format!("prices.{key}.{side}"),
                        format!("`{value}` is not a price: give USD per million tokens, 0 or more"),
                    ));
                }
            }
        }
        for (provider, budget) in &self.budgets {
            if !budget.daily_usd.is_finite() || budget.daily_usd <= 0.0 {
                return Err((
                    format!("budgets.{provider}.daily_usd"),
                    format!(
                        "`{}` is not a budget: give USD per day, more than 0 (remove the \
                         budget to have none)",
                        budget.daily_usd
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(json: &str) -> UsageSection {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn prices_and_budgets_are_read_and_checked() {
        let usage = section(
            r#"{"prices": {"openai/gpt-4o-mini": {"input": 0.15, "output": 0.6}},
                "budgets": {"openai": {"daily_usd": 5, "stop_at_budget": true}, "groq": {"daily_usd": 1}}}"#,
        );
        assert!(usage.check().is_ok());
        assert_eq!(usage.prices["openai/gpt-4o-mini"].output, 0.6);
        assert!(usage.budgets["openai"].stop_at_budget);
        assert!(
            !usage.budgets["groq"].stop_at_budget,
            "only warn by default"
        );
    }

    #[test]
    fn a_negative_price_or_an_empty_budget_is_refused_by_name() {
        let (field, message) = section(r#"{"prices": {"gpt-4o": {"input": -1, "output": 2}}}"#)
            .check()
            .unwrap_err();
        assert_eq!(field, "prices.gpt-4o.input");
        assert!(message.contains("per million tokens"), "{message}");
        let (field, _) = section(r#"{"budgets": {"openai": {"daily_usd": 0}}}"#)
            .check()
            .unwrap_err();
        assert_eq!(field, "budgets.openai.daily_usd");
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        let e = serde_json::from_str::<UsageSection>(
            r#"{"budgets": {"openai": {"daily_usd": 5, "stop_at_limit": true}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("stop_at_limit"), "{e}");
    }
}
