//! Web search: what a search provider is asked and what it answers, the same shape from
//! every kind (Tavily, Brave, the demo), so a prototype's "answer with sources" UI does
//! not care which one is configured.

use serde::Serialize;

#[derive(Clone, Debug)]
pub struct SearchQuery {
    pub query: String,
    pub max_results: usize,
}

/// Results asked for when a request says nothing, and the most it may ask for.
pub const DEFAULT_RESULTS: usize = 5;
pub const MAX_RESULTS: usize = 20;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SearchAnswer {
    /// A short answer written by the provider, when it writes one (Tavily).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    pub results: Vec<SearchResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchResult {
    pub title: String,
    pub url: String,
    /// What the page says, as the provider quotes it.
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}
