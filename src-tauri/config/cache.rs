//! `cache` in the settings: identical requests answered from memory, off by default.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    pub enabled: bool,
    pub ttl_s: u64,
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: false,
            ttl_s: 300,
            max_entries: 1000,
            max_bytes: 32 << 20,
        }
    }
}

impl CacheSection {
    /// A mistake in the section, as (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}
