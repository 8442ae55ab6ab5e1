//! `usage` in the settings: the price table the Usage view estimates cost with, and
//! daily budgets per provider.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSection {}

impl UsageSection {
    /// A mistake in the section, as (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}
