//! `routes` in the settings: a name a prototype uses as its model, standing for several
//! `provider/model` targets that stand in for each other.

use serde::{Deserialize, Serialize};

use super::ProviderConfig;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: String,
    /// `provider/model`, in the order `fallback` tries them.
    pub targets: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Fallback,
    RoundRobin,
    Weighted,
}

/// A mistake in `routes`, as (field, message).
pub fn check(
    routes: &[RouteSection],
    _providers: &[ProviderConfig],
) -> Result<(), (String, String)> {
    let _ = routes;
    Ok(())
}
