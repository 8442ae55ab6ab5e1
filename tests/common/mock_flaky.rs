//! A mock OpenAI-compatible upstream that fails on cue, for routes. Each one has a name
//! and answers "answer from <name>" (streamed as documented `chat.completion.chunk`s, or
//! whole), until told to fail in one of the ways upstreams fail:
//!
//! - [`Failure::Status`]: an error status with OpenAI's error body (500, 400, ...).
//! - [`Failure::RateLimited`]: 429 with `Retry-After`.
//! - [`Failure::Stall`]: accepts the request and never answers (no status line).
//! - [`Failure::Cut`]: starts the stream (a role chunk, then "partial"), then closes.
//!
//! A refused connection needs no mock: see [`closed_port_url`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
pub enum Failure {
    Status(u16),
    RateLimited { retry_after_s: u64 },
    Stall,
    Cut,
}

#[derive(Clone)]
pub struct MockFlaky {
    pub base_url: String,
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    failure: Mutex<Option<Failure>>,
    requests: AtomicUsize,
}

impl MockFlaky {
    pub async fn start(name: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockFlaky {
            base_url: format!("http://{}/v1", listener.local_addr().unwrap()),
            inner: Arc::new(Inner {
                name: name.to_string(),
                failure: Mutex::new(None),
                requests: AtomicUsize::new(0),
            }),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    /// A mock that fails every request with `failure` until [`MockFlaky::heal`].
    pub async fn failing(name: &str, failure: Failure) -> Self {
        let mock = Self::start(name).await;
        mock.fail(failure);
        mock
    }

    pub fn fail(&self, failure: Failure) {
        *self.inner.failure.lock().unwrap() = Some(failure);
    }

    pub fn heal(&self) {
        *self.inner.failure.lock().unwrap() = None;
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// What it answers when it does.
    pub fn answer(&self) -> String {
        format!("answer from {}", self.inner.name)
    }
}

/// The base URL of a port nothing listens on: connecting is refused.
pub async fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Bytes {
    let chunk = json!({
        "id": "chatcmpl-flaky", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {chunk}\n\n"))
}

async fn completions(State(mock): State<MockFlaky>, Json(body): Json<Value>) -> Response {
    mock.inner.requests.fetch_add(1, Ordering::SeqCst);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let failure = *mock.inner.failure.lock().unwrap();
    let error = |status: u16, message: &str| {
        let body = json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
        (StatusCode::from_u16(status).unwrap(), Json(body))
    };
    match failure {
        Some(Failure::Status(status)) => {
            return error(status, &format!("{} failed on cue", mock.inner.name)).into_response()
        }
        Some(Failure::RateLimited { retry_after_s }) => {
            let retry_after = retry_after_s.to_string();
            let limited = error(429, "Rate limit reached for requests");
            return ([("retry-after", retry_after)], limited).into_response();
        }
        Some(Failure::Stall) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Some(Failure::Cut) | None => {}
    }
    let answer = mock.answer();
    if !stream {
        return Json(json!({
            "id": "chatcmpl-flaky", "object": "chat.completion", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        }))
        .into_response();
    }
    let cut = matches!(failure, Some(Failure::Cut));
    let body = async_stream::stream! {
        yield Ok::<_, std::convert::Infallible>(chunk(&model, json!({"role": "assistant", "content": ""}), None));
        if cut {
            yield Ok(chunk(&model, json!({"content": "partial"}), None));
            return;
        }
        yield Ok(chunk(&model, json!({"content": answer}), None));
        yield Ok(chunk(&model, json!({}), Some("stop")));
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}
