//! A mock Tavily on `127.0.0.1:0`: `POST /search` as Tavily documents it and as the
//! vendor's own client (`tavily-python`, `tests/search/tavily_client.py`) reads it.
//! It insists on `Authorization: Bearer <key>` and checks the body the way the API does
//! (`query` required, `search_depth` and `topic` from their lists, `max_results` 0..=20),
//! answering errors as `{"detail": {"error": "..."}}`. The query picks a behaviour:
//!
//! - `rate-limited`: 429 with `Retry-After: 7`.
//! - `plan-limit`: 432, the plan's usage limit.
//! - `server-error`: 500.
//! - `stall`: never answers (for the first-byte timeout).
//! - anything else: an answer and `max_results` results (at most 3 distinct ones, then
//!   numbered copies), each with `title`, `url`, `content`, `score`, `raw_content`.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request as the mock saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

#[derive(Clone, Default)]
pub struct MockTavily {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockTavily {
    pub async fn start(valid_key: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockTavily {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            ..MockTavily::default()
        };
        let app = Router::new()
            .route("/search", post(search))
            .with_state((mock.clone(), valid_key));
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"detail": {"error": message}})),
    )
        .into_response()
}

async fn search(
    State((mock, valid_key)): State<(MockTavily, &'static str)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    mock.seen.lock().unwrap().push(Seen {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: body.clone(),
    });
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {valid_key}") {
        return error(401, "Unauthorized: missing or invalid API key.");
    }
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return error(400, "Query is missing.");
    };
    let depth = body["search_depth"].as_str().unwrap_or("basic");
    if !["basic", "advanced", "fast", "ultra-fast"].contains(&depth) {
        return error(
            400,
            "Invalid search depth. Must be 'basic', 'advanced', 'fast' or 'ultra-fast'.",
        );
    }
    let topic = body["topic"].as_str().unwrap_or("general");
    if !["general", "news", "finance"].contains(&topic) {
        return error(
            400,
            "Invalid topic. Must be 'general', 'news' or 'finance'.",
        );
    }
    let max = body["max_results"].as_u64().unwrap_or(5);
    if max > 20 {
        return error(400, "max_results must be between 0 and 20.");
    }
    match query {
        "rate-limited" => {
            let mut r = error(
                429,
                "Your request has been blocked due to excessive requests. Please reduce rate of requests.",
            );
            r.headers_mut().insert("retry-after", "7".parse().unwrap());
            return r;
        }
        "plan-limit" => {
            return error(
                432,
                "This request exceeds your plan's set usage limit. Please upgrade your plan or contact support@tavily.com",
            )
        }
        "server-error" => return error(500, "Internal Server Error"),
        "stall" => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        _ => {}
    }
    let pages = [
        (
            "Lionel Messi - Wikipedia",
            "https://en.wikipedia.org/wiki/Lionel_Messi",
            "Lionel Andrés Messi is an Argentine professional footballer.",
            0.86,
        ),
        (
            "Messi's career statistics",
            "https://www.espn.com/soccer/player/_/id/45843/lionel-messi",
            "Goals, assists and appearances, season by season.",
            0.72,
        ),
        (
            "Inter Miami CF",
            "https://www.intermiamicf.com/",
            "The official site of Inter Miami CF.",
            0.41,
        ),
    ];
    let results: Vec<Value> = (0..max as usize)
        .map(|n| {
            let (title, url, content, score) = pages[n % pages.len()];
            let (title, url) = if n < pages.len() {
                (title.to_string(), url.to_string())
            } else {
                (format!("{title} ({n})"), format!("{url}?n={n}"))
            };
            json!({"title": title, "url": url, "content": content, "score": score, "raw_content": null})
        })
        .collect();
    let answer = body["include_answer"]
        .as_bool()
        .unwrap_or(false)
        .then(|| format!("Mock Tavily's answer about “{query}”."));
    Json(json!({
        "query": query,
        "follow_up_questions": null,
        "answer": answer,
        "images": [],
        "results": results,
        "response_time": 1.09,
        "request_id": "123e4567-e89b-12d3-a456-426614174111",
    }))
    .into_response()
}
