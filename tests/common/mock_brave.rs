//! A mock Brave Web Search API on `127.0.0.1:0`: `GET /res/v1/web/search?q=…&count=…`
//! with the documented answer (`type: "search"`, `query`, `mixed`, `web.results[]` with
//! `title`, `url`, `description` carrying `<strong>` highlights and HTML entities, as
//! Brave's own text decorations do) and errors (`{"type": "ErrorResponse", "error":
//! {id, status, code, detail, meta}, "time"}`). A wrong `X-Subscription-Token` is a 422
//! `SUBSCRIPTION_TOKEN_INVALID`, as Brave answers it; `count` must be 1..=20 and `q`
//! present, else a 422 `VALIDATION`. The query picks a behaviour:
//!
//! - `rate-limited`: 429 `RATE_LIMITED` with Brave's `X-RateLimit-*` headers.
//! - `server-error`: 500.
//! - `stall`: never answers.
//! - `nothing`: an answer with no `web` section (no web results).
//! - anything else: `count` results.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request as the mock saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: Vec<(String, String)>,
    /// Path and query string.
    pub uri: String,
}

#[derive(Clone, Default)]
pub struct MockBrave {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockBrave {
    pub async fn start(valid_key: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockBrave {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            ..MockBrave::default()
        };
        let app = Router::new()
            .route("/res/v1/web/search", get(search))
            .with_state((mock.clone(), valid_key));
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn error(status: u16, code: &str, detail: &str, component: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({
            "type": "ErrorResponse",
            "error": {
                "id": "5d832250-9396-4f6e-b84a-2a1fe524cd7d",
                "status": status,
                "code": code,
                "detail": detail,
                "meta": {"component": component},
            },
            "time": 1663072993,
        })),
    )
        .into_response()
}

async fn search(
    State((mock, valid_key)): State<(MockBrave, &'static str)>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    mock.seen.lock().unwrap().push(Seen {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        uri: uri.to_string(),
    });
    let token = headers
        .get("x-subscription-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if token != valid_key {
        return error(
            422,
            "SUBSCRIPTION_TOKEN_INVALID",
            "The provided subscription token is invalid.",
            "authentication",
        );
    }
    let Some(q) = params.get("q").filter(|q| !q.is_empty()) else {
        return error(
            422,
            "VALIDATION",
            "Unable to validate request parameter(s)",
            "validation",
        );
    };
    let count: u64 = params
        .get("count")
        .map(|c| c.parse().unwrap_or(0))
        .unwrap_or(20);
    if !(1..=20).contains(&count) {
        return error(
            422,
            "VALIDATION",
            "Unable to validate request parameter(s)",
            "validation",
        );
    }
    match q.as_str() {
        "rate-limited" => {
            let mut r = error(
                429,
                "RATE_LIMITED",
                "Request rate limit exceeded for plan.",
                "rate_limiter",
            );
            let h = r.headers_mut();
            h.insert("x-ratelimit-limit", "1, 15000".parse().unwrap());
            h.insert("x-ratelimit-remaining", "0, 14000".parse().unwrap());
            h.insert("x-ratelimit-reset", "1, 1419704".parse().unwrap());
            return r;
        }
        "server-error" => return error(500, "INTERNAL_ERROR", "Internal server error.", "search"),
        "stall" => tokio::time::sleep(std::time::Duration::from_secs(3600)).await,
        _ => {}
    }
    let query = json!({"original": q, "show_strict_warning": false, "is_navigational": false,
        "is_news_breaking": false, "spellcheck_off": true, "country": "us", "bad_results": false,
        "should_fallback": false, "postal_code": "", "city": "", "header_country": "", "more_results_available": true, "state": ""});
    if q == "nothing" {
        return Json(json!({"type": "search", "query": query, "mixed": {"type": "mixed", "main": [], "top": [], "side": []}}))
            .into_response();
    }
    let results: Vec<Value> = (0..count)
        .map(|n| {
            json!({
                "type": "search_result",
                "subtype": "generic",
                "title": format!("<strong>{q}</strong> &amp; friends, part {}", n + 1),
                "url": format!("https://example.org/{}/{}", q.replace(' ', "-"), n + 1),
                "is_source_local": false,
                "is_source_both": false,
                "description": format!("All about <strong>{q}</strong>: Brave&#x27;s result {}.", n + 1),
                "page_age": "2024-05-01T00:00:00",
                "profile": {"name": "Example", "url": "https://example.org", "long_name": "example.org", "img": "https://imgs.search.brave.com/x"},
                "language": "en",
                "family_friendly": true,
                "meta_url": {"scheme": "https", "netloc": "example.org", "hostname": "example.org", "favicon": "https://imgs.search.brave.com/y", "path": "› q"},
            })
        })
        .collect();
    Json(json!({
        "type": "search",
        "query": query,
        "mixed": {"type": "mixed", "main": (0..count).map(|i| json!({"type": "web", "index": i, "all": false})).collect::<Vec<_>>(), "top": [], "side": []},
        "web": {"type": "search", "results": results, "family_friendly": true},
    }))
    .into_response()
}
