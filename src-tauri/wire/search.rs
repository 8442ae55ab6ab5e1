//! `POST /api/search`, as the wiring spec's `search(query, provider)` calls it: what a page
//! sends, and the one answer shape every search provider kind is turned into, so an
//! "answer with sources" UI never cares whether Tavily, Brave or the demo answered.

use serde::{Deserialize, Serialize};

use crate::providers::search::{SearchAnswer, SearchResult, DEFAULT_RESULTS, MAX_RESULTS};

/// The request body. Every field is optional to serde so that a missing or empty `query`
/// gets our own message rather than serde's.
#[derive(Debug, Default, Deserialize)]
pub struct SearchInput {
    #[serde(default)]
    pub query: Option<String>,
    /// A provider id (`tavily`, `brave`, `demo`); none: the default search provider.
    #[serde(default)]
    pub provider: Option<String>,
    /// Clamped to `1..=MAX_RESULTS`; none: `DEFAULT_RESULTS`.
    #[serde(default)]
    pub max_results: Option<i64>,
}

impl SearchInput {
    /// The query, trimmed; `None` when there is nothing to search for.
    pub fn query(&self) -> Option<&str> {
        self.query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
    }

    /// How many results to ask for: a page asking for 0 or 500 gets the nearest allowed
    /// number rather than an error, since neither is worth failing a prototype over.
    pub fn max_results(&self) -> usize {
        match self.max_results {
            None => DEFAULT_RESULTS,
            Some(n) => n.clamp(1, MAX_RESULTS as i64) as usize,
        }
    }
}

/// The answer: `{query, provider, answer?, results: [{title, url, content, score?}]}`, in
/// that order.
#[derive(Debug, Serialize)]
pub struct SearchResponse {
    pub query: String,
    /// The id of the provider that answered (the demo says so in its results too).
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    pub results: Vec<SearchResult>,
}

impl SearchResponse {
    pub fn new(query: &str, provider: &str, answer: SearchAnswer) -> Self {
        SearchResponse {
            query: query.to_string(),
            provider: provider.to_string(),
            answer: answer.answer.filter(|a| !a.trim().is_empty()),
            results: answer.results,
        }
    }
}

/// What the request log keeps as the "answer" of a search: the provider's own answer, if
/// any, then each result's title and URL, so a designer sees what their page was given.
pub fn log_text(answer: &SearchAnswer) -> String {
    let mut text = answer
        .answer
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    for (n, r) in answer.results.iter().enumerate() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{}. {} <{}>", n + 1, r.title, r.url));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> SearchInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn max_results_is_clamped_and_defaults() {
        assert_eq!(input(r#"{"query": "q"}"#).max_results(), DEFAULT_RESULTS);
        assert_eq!(input(r#"{"max_results": 0}"#).max_results(), 1);
        assert_eq!(input(r#"{"max_results": -4}"#).max_results(), 1);
        assert_eq!(input(r#"{"max_results": 3}"#).max_results(), 3);
        assert_eq!(input(r#"{"max_results": 500}"#).max_results(), MAX_RESULTS);
    }

    #[test]
    fn a_blank_query_is_no_query() {
        assert_eq!(input(r#"{"query": "  \n "}"#).query(), None);
        assert_eq!(input(r#"{}"#).query(), None);
        assert_eq!(input(r#"{"query": " rust "}"#).query(), Some("rust"));
    }

    #[test]
    fn the_answer_shape_leaves_out_what_is_missing() {
        let answer = SearchAnswer {
            answer: Some(" ".into()),
            results: vec![SearchResult {
                title: "T".into(),
                url: "https://e.com".into(),
                content: "C".into(),
                score: None,
            }],
        };
        let v = serde_json::to_value(SearchResponse::new("q", "brave", answer.clone())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"query": "q", "provider": "brave",
                "results": [{"title": "T", "url": "https://e.com", "content": "C"}]})
        );
        assert_eq!(log_text(&answer), "1. T <https://e.com>");
    }
}
