//! Tavily's web search: `POST {base_url}/search` with `Authorization: Bearer <key>` and
//! `{query, max_results, search_depth, include_answer, topic}`, answered with
//! `{query, answer, results: [{title, url, content, score}], response_time, ...}`.
//! The provider's "model" is the search depth (`basic`, `advanced`, `fast`, `ultra-fast`).
//! Errors are `{"detail": {"error": "..."}}` (401, 403, 429, 432 plan limit, 433
//! pay-as-you-go limit, 500), FastAPI's `{"detail": [{msg}]}` for a refused body; the
//! vendor's words go to the page. See `docs/wire-formats.md`.

use reqwest::header;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::Target;
use super::http::{self, Flavor};
use super::search::{SearchAnswer, SearchQuery, SearchResult};
use super::Upstream;
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::wire::DecodeError;

const FLAVOR: Flavor = Flavor {
    upstream: "Tavily",
    credential: "API key",
    error_message,
};

#[derive(Clone, Debug)]
pub struct TavilyProvider {
    pub config: ProviderConfig,
    upstream: Upstream,
    target: Target,
}

impl TavilyProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        let base = config
            .base_url
            .clone()
            .expect("validated: tavily providers have a base_url");
        let url = reqwest::Url::parse(&format!("{}/search", base.as_str().trim_end_matches('/')))
            .expect("a valid base URL plus a path is valid");
        TavilyProvider {
            config: config.clone(),
            upstream,
            target: Target::new(url),
        }
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    pub async fn search(&self, query: &SearchQuery) -> Result<SearchAnswer, ProviderError> {
        let key = http::credential(&self.upstream, &self.config, &FLAVOR).await?;
        let body = request_body(query, &self.config.default_model);
        let mut request = http::json_post(&self.config.headers, http::json_bytes(&body));
        if let Some(key) = key {
            let bearer = SecretString::from(format!("Bearer {}", key.expose_secret()));
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, http::sensitive(self.id(), &bearer)?);
        }
        let response =
            http::send(&self.upstream, &self.target, request, self.id(), &FLAVOR).await?;
        let max = query.max_results;
        http::read_body(&self.upstream, response, self.id(), |bytes| {
            decode(&bytes, max)
        })
        .await
    }
}

/// The body Tavily is sent. `search_depth` is the provider's model; an answer is always
/// asked for, since an "answer with sources" UI is what prototypes build.
fn request_body(query: &SearchQuery, depth: &str) -> Value {
    json!({
        "query": query.query,
        "max_results": query.max_results,
        "search_depth": depth,
        "include_answer": true,
        "topic": "general",
    })
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    answer: Option<String>,
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: Option<String>,
    url: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    score: Option<f64>,
}

fn decode(bytes: &[u8], max: usize) -> Result<SearchAnswer, DecodeError> {
    let response: Response = crate::wire::json_from_bytes(bytes)
        .map_err(|e| DecodeError::Malformed(format!("not Tavily's search answer: {e}")))?;
    Ok(SearchAnswer {
        answer: response.answer,
        results: response
            .results
            .into_iter()
            .take(max)
            .map(|h| SearchResult {
                title: h.title.unwrap_or_default(),
                url: h.url,
                content: h.content.unwrap_or_default(),
                score: h.score,
            })
            .collect(),
    })
}

/// Tavily's words in an error body: `detail.error`, a plain `detail`, FastAPI's list of
/// validation messages, or the `error.message` envelope of its keyless mode.
fn error_message(v: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    match v.get("detail") {
        Some(Value::Object(d)) => d.get("error").and_then(text),
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => {
            let messages: Vec<String> = items
                .iter()
                .filter_map(|i| {
                    let msg = i.get("msg")?.as_str()?;
                    let at = i
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|loc| {
                            loc.iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), String::from))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    Some(if at.is_empty() {
                        msg.to_string()
                    } else {
                        format!("{at}: {msg}")
                    })
                })
                .collect();
            (!messages.is_empty()).then(|| messages.join("; "))
        }
        _ => v
            .pointer("/error/message")
            .and_then(text)
            .or_else(|| v.get("error").and_then(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_documented_one() {
        let q = SearchQuery {
            query: "who is Leo Messi?".into(),
            max_results: 3,
        };
        assert_eq!(
            request_body(&q, "advanced"),
            json!({"query": "who is Leo Messi?", "max_results": 3, "search_depth": "advanced",
                   "include_answer": true, "topic": "general"})
        );
    }

    #[test]
    fn reads_the_documented_answer() {
        let body = br#"{"query": "q", "follow_up_questions": null, "answer": "Messi is a footballer.",
            "images": [], "results": [
              {"title": "Lionel Messi", "url": "https://en.wikipedia.org/wiki/Lionel_Messi",
               "content": "Argentine footballer", "score": 0.81, "raw_content": null, "favicon": "x"},
              {"title": "Second", "url": "https://example.com/2", "content": "c", "score": 0.5}
            ], "response_time": 1.67, "request_id": "123e4567"}"#;
        let a = decode(body, 1).unwrap();
        assert_eq!(a.answer.as_deref(), Some("Messi is a footballer."));
        assert_eq!(a.results.len(), 1, "no more than asked for");
        assert_eq!(a.results[0].score, Some(0.81));
        assert!(decode(br#"{"detail": "x"}"#, 5).is_err());
    }

    #[test]
    fn error_messages_are_tavilys_words() {
        for (body, want) in [
            (
                json!({"detail": {"error": "Unauthorized: missing or invalid API key."}}),
                "Unauthorized: missing or invalid API key.",
            ),
            (json!({"detail": "Not Found"}), "Not Found"),
            (
                json!({"detail": [{"loc": ["body", "query"], "msg": "Field required", "type": "missing"}]}),
                "body.query: Field required",
            ),
            (
                json!({"error": {"code": "keyless_limit", "message": "Keyless limit reached"}}),
                "Keyless limit reached",
            ),
        ] {
            assert_eq!(error_message(&body).as_deref(), Some(want));
        }
        assert_eq!(error_message(&json!({"x": 1})), None);
    }
}
