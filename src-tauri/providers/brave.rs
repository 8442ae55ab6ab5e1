//! Brave's Web Search API: `GET {base_url}/res/v1/web/search?q=…&count=…` with
//! `X-Subscription-Token: <key>` and `Accept: application/json`; results under
//! `web.results[]` (`title`, `url`, `description`, which carries `<strong>` highlights
//! and HTML entities), no written answer. Errors are
//! `{"type": "ErrorResponse", "error": {"code", "detail", "status", "meta"}}` (the
//! reference also shows an `errors` list): a wrong key is a 422
//! `SUBSCRIPTION_TOKEN_INVALID`, not a 401, and is reported as a rejected key.
//! See `docs/wire-formats.md`.

use axum::http::{Method, Request};
use bytes::Bytes;
use reqwest::header::{self, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::client::Target;
use super::http::{self, Flavor};
use super::search::{SearchAnswer, SearchQuery, SearchResult};
use super::Upstream;
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::wire::DecodeError;

const FLAVOR: Flavor = Flavor {
    upstream: "Brave Search",
    credential: "API key",
    error_message,
};

/// Brave's codes for a key it does not take (422), or one with no subscription to the
/// Search API (404), whatever the HTTP status says.
const KEY_CODES: [&str; 3] = [
    "SUBSCRIPTION_TOKEN_INVALID",
    "SUBSCRIPTION_TOKEN_MISSING",
    "SUBSCRIPTION_NOT_FOUND",
];

#[derive(Clone, Debug)]
pub struct BraveProvider {
    pub config: ProviderConfig,
    upstream: Upstream,
    /// `…/res/v1/web/search`, to which each request adds its query string.
    endpoint: reqwest::Url,
}

impl BraveProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        let base = config
            .base_url
            .clone()
            .expect("validated: brave providers have a base_url");
        let root = base.as_str().trim_end_matches('/');
        let path = if root.ends_with("/res/v1") {
            "/web/search"
        } else {
            "/res/v1/web/search"
        };
        let endpoint = reqwest::Url::parse(&format!("{root}{path}"))
            .expect("a valid base URL plus a path is valid");
        BraveProvider {
            config: config.clone(),
            upstream,
            endpoint,
        }
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    pub async fn search(&self, query: &SearchQuery) -> Result<SearchAnswer, ProviderError> {
        let key = http::credential(&self.upstream, &self.config, &FLAVOR).await?;
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("q", &query.query)
            .append_pair("count", &query.max_results.to_string());
        let mut request = Request::new(Bytes::new());
        *request.method_mut() = Method::GET;
        let headers = request.headers_mut();
        *headers = self.config.headers.clone();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(key) = key {
            headers.insert("x-subscription-token", http::sensitive(self.id(), &key)?);
        }
        let sent = http::send(
            &self.upstream,
            &Target::new(url),
            request,
            self.id(),
            &FLAVOR,
        )
        .await;
        let response = sent.map_err(|e| self.key_refused(e))?;
        let max = query.max_results;
        http::read_body(&self.upstream, response, self.id(), |bytes| {
            decode(&bytes, max)
        })
        .await
    }

    /// Brave answers a wrong key with a 422 naming it: that is a rejected key (forgotten,
    /// so a replacement is read next time), not a bad request.
    fn key_refused(&self, e: ProviderError) -> ProviderError {
        match e {
            ProviderError::Status {
                status, message, ..
            } if KEY_CODES.iter().any(|c| message.contains(c)) => {
                self.upstream.secrets.forget(self.id());
                ProviderError::KeyRejected {
                    provider: self.id().into(),
                    upstream: FLAVOR.upstream,
                    credential: FLAVOR.credential,
                    status,
                }
            }
            e => e,
        }
    }
}

#[derive(Deserialize)]
struct Response {
    /// Absent when Brave found no web results (or was asked for other kinds only).
    #[serde(default)]
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    description: String,
}

fn decode(bytes: &[u8], max: usize) -> Result<SearchAnswer, DecodeError> {
    let response: Response = crate::wire::json_from_bytes(bytes)
        .map_err(|e| DecodeError::Malformed(format!("not Brave's web search answer: {e}")))?;
    let results = response.web.map(|w| w.results).unwrap_or_default();
    Ok(SearchAnswer {
        answer: None,
        results: results
            .into_iter()
            .take(max)
            .map(|h| SearchResult {
                title: plain_text(&h.title),
                url: h.url,
                content: plain_text(&h.description),
                score: None,
            })
            .collect(),
    })
}

/// Brave's display text without its markup: `<strong>` highlights (any tag, since the
/// text is HTML-escaped and a real `<` arrives as `&lt;`) removed, entities decoded.
fn plain_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                text.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    text.push_str(rest);
    decode_entities(&text)
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let n = if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        name.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    n.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Brave's words in an error body: `detail` and `code` of `error` (or of the first of
/// `errors`), e.g. "The provided subscription token is invalid. (SUBSCRIPTION_TOKEN_INVALID)".
fn error_message(v: &Value) -> Option<String> {
    let error = v
        .get("error")
        .filter(|e| e.is_object())
        .or_else(|| v.get("errors").and_then(|e| e.get(0)))?;
    let detail = error.get("detail").and_then(Value::as_str);
    let code = error.get("code").and_then(Value::as_str);
    match (detail, code) {
        (Some(d), Some(c)) => Some(format!("{d} ({c})")),
        (Some(d), None) => Some(d.to_string()),
        (None, Some(c)) => Some(c.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn highlights_and_entities_are_removed() {
        assert_eq!(
            plain_text("The <strong>Rust</strong> Programming Language &amp; Brave&#x27;s &#39;docs&#39; &lt;3"),
            "The Rust Programming Language & Brave's 'docs' <3"
        );
        assert_eq!(plain_text("a < b and &bogus; &"), "a < b and &bogus; &");
    }

    #[test]
    fn reads_web_results_only() {
        let body = br#"{"type": "search", "query": {"original": "rust"},
            "mixed": {"type": "mixed", "main": []},
            "web": {"type": "search", "family_friendly": true, "results": [
              {"type": "search_result", "title": "<strong>Rust</strong> Programming Language",
               "url": "https://www.rust-lang.org/", "description": "A language empowering <strong>everyone</strong>.",
               "is_source_local": false, "language": "en", "profile": {"name": "Rust"}},
              {"title": "Two", "url": "https://example.com/2", "description": "d"}
            ]}}"#;
        let a = decode(body, 1).unwrap();
        assert_eq!(a.answer, None);
        assert_eq!(
            a.results,
            vec![SearchResult {
                title: "Rust Programming Language".into(),
                url: "https://www.rust-lang.org/".into(),
                content: "A language empowering everyone.".into(),
                score: None,
            }]
        );
        assert!(decode(br#"{"type": "search"}"#, 5)
            .unwrap()
            .results
            .is_empty());
    }

    #[test]
    fn error_messages_are_braves_words() {
        let one = json!({"type": "ErrorResponse", "error": {"id": "x", "status": 429,
            "code": "RATE_LIMITED", "detail": "Request rate limit exceeded for plan.",
            "meta": {"component": "rate_limiter"}}, "time": 1});
        assert_eq!(
            error_message(&one).unwrap(),
            "Request rate limit exceeded for plan. (RATE_LIMITED)"
        );
        let list = json!({"type": "ErrorResponse", "errors": [{"code": "SUBSCRIPTION_TOKEN_INVALID",
            "detail": "The provided subscription token is invalid.", "status": 422}]});
        assert!(error_message(&list).unwrap().contains(KEY_CODES[0]));
        assert_eq!(error_message(&json!({"message": "x"})), None);
    }
}
