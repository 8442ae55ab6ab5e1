//! A mock OpenAI-compatible upstream on `127.0.0.1:0`. It replays the documented
//! `chat.completion.chunk` stream (role chunk, content chunks, a finish chunk, an
//! optional usage chunk, `data: [DONE]`). The requested `model` picks a behaviour, so a
//! test says what the upstream does by naming a model:
//!
//! - `gpt-test` (any other name): a normal answer, "Hello world".
//! - `gated`: sends "first", then waits for [`MockOpenAi::release`] before the rest.
//! - `cut`: sends one chunk and closes, with no finish reason and no `[DONE]`.
//! - `idle`: sends one chunk, then nothing.
//! - `endless`: a chunk every 20 ms until the connection goes; counts the goings.
//! - `flood`: 4 KB chunks as fast as the gateway takes them, until the connection goes.
//! - `error500`, `reject-key`, `rate-limited`: the documented error bodies.
//! - `slow-headers`: waits 5 s before answering at all.
//! - `in-stream-error`: one chunk, then an `{"error": ...}` event.
//! - `invalid-json`: one chunk, then an event whose data is not JSON; without `stream`, a
//!   200 whose body is cut-off JSON.
//! - `trickle`: the normal answer, one byte per write, 1 ms apart.
//! - `bom`: the normal answer, its stream opened by a byte-order mark (which the
//!   event-stream format allows).
//! - `tool-call`: a `get_weather` tool call with `{"location": "Paris, France"}`, its
//!   arguments split across chunks, finish reason `tool_calls`; as the Chat Completions
//!   API documents function calling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct MockOpenAi {
    inner: Arc<Inner>,
    pub base_url: String,
}

#[derive(Default)]
struct Inner {
    /// `Authorization` header of every request received.
    authorizations: Mutex<Vec<Option<String>>>,
    bodies: Mutex<Vec<Value>>,
    gate: Notify,
    /// Streams whose client went away before the stream ended.
    dropped: AtomicUsize,
}

impl MockOpenAi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mock = MockOpenAi {
            base_url: format!("http://{addr}/v1"),
            ..MockOpenAi::default()
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.inner.authorizations.lock().unwrap().clone()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.inner.bodies.lock().unwrap().clone()
    }

    pub fn release(&self) {
        self.inner.gate.notify_one();
    }

    pub fn dropped_streams(&self) -> usize {
        self.inner.dropped.load(Ordering::SeqCst)
    }
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-mock1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    format!("data: {chunk}\n\n")
}

fn error_body(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

/// Counts a stream as dropped unless it ran to its end.
struct DropGuard {
    mock: MockOpenAi,
    finished: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.mock.inner.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn completions(
    State(mock): State<MockOpenAi>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    mock.inner.authorizations.lock().unwrap().push(
        headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
    );
    mock.inner.bodies.lock().unwrap().push(body.clone());
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);

    match model.as_str() {
        "error500" => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(error_body("boom upstream", "server_error")),
            )
                .into_response()
        }
        "reject-key" => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(error_body(
                    "Incorrect API key provided: sk-te****************cret.",
                    "invalid_request_error",
                )),
            )
                .into_response()
        }
        "rate-limited" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "17")],
                Json(error_body("Rate limit reached for requests", "requests")),
            )
                .into_response()
        }
        "slow-headers" => tokio::time::sleep(Duration::from_secs(5)).await,
        "invalid-json" if !stream => {
            return (
                [("content-type", "application/json")],
                r#"{"id": "chatcmpl-mock1", "choices": [{"message": {"content": "Hel"#,
            )
                .into_response()
        }
        "trickle" if stream => {
            let mut answer = chunk(&model, json!({"role": "assistant", "content": ""}), None);
            answer += &chunk(&model, json!({"content": "Hello"}), None);
            answer += &chunk(&model, json!({"content": " world"}), None);
            answer += &chunk(&model, json!({}), Some("stop"));
            answer += "data: [DONE]\n\n";
            let body = async_stream::stream! {
                for byte in answer.into_bytes() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    yield Ok::<_, std::convert::Infallible>(Bytes::from(vec![byte]));
                }
            };
            return Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(body))
                .unwrap();
        }
        _ => {}
    }

    if model == "tool-call" && !stream {
        return Json(json!({
            "id": "chatcmpl-mock2", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": "call_abc123", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris, France\"}"}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 18, "total_tokens": 58},
        }))
        .into_response();
    }
    if !stream {
        return Json(json!({
            "id": "chatcmpl-mock1", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        }))
        .into_response();
    }

    let m = model.clone();
    let guard_mock = mock.clone();
    let body = async_stream::stream! {
        let mut guard = DropGuard { mock: guard_mock, finished: false };
        let role = chunk(&m, json!({"role": "assistant", "content": ""}), None);
        let role = if m == "bom" { format!("\u{FEFF}{role}") } else { role };
        yield Ok::<_, std::convert::Infallible>(Bytes::from(role));
        match m.as_str() {
            "gated" => {
                yield Ok(Bytes::from(chunk(&m, json!({"content": "first"}), None)));
                mock.inner.gate.notified().await;
                yield Ok(Bytes::from(chunk(&m, json!({"content": " last"}), None)));
            }
            "cut" => {
                yield Ok(Bytes::from(chunk(&m, json!({"content": "partial"}), None)));
                guard.finished = true;
                return;
            }
            "idle" => {
                yield Ok(Bytes::from(chunk(&m, json!({"content": "thinking"}), None)));
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            "steady" => {
                // Longer in all than a short idle timeout, never quiet for long.
                for _ in 0..8 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    yield Ok(Bytes::from(chunk(&m, json!({"content": "tick "}), None)));
                }
                yield Ok(Bytes::from(chunk(&m, json!({}), Some("stop"))));
                yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
                guard.finished = true;
                return;
            }
            "endless" => loop {
                yield Ok(Bytes::from(chunk(&m, json!({"content": "more "}), None)));
                tokio::time::sleep(Duration::from_millis(20)).await;
            },
            "tool-call" => {
                yield Ok(Bytes::from(chunk(&m, json!({"tool_calls": [{"index": 0, "id": "call_abc123", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}]}), None)));
                for piece in ["{\"location\"", ": \"Paris, France\"}"] {
                    yield Ok(Bytes::from(chunk(&m, json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}), None)));
                }
                yield Ok(Bytes::from(chunk(&m, json!({}), Some("tool_calls"))));
                yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
                guard.finished = true;
                return;
            }
            "flood" => {
                let text = "x".repeat(4096);
                loop {
                    yield Ok(Bytes::from(chunk(&m, json!({"content": text}), None)));
                }
            }
            "invalid-json" => {
                yield Ok(Bytes::from(chunk(&m, json!({"content": "partial"}), None)));
                yield Ok(Bytes::from_static(b"data: {\"choices\": [{\"delta\": oops\n\n"));
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            "in-stream-error" => {
                yield Ok(Bytes::from(chunk(&m, json!({"content": "partial"}), None)));
                yield Ok(Bytes::from(format!("data: {}\n\n", error_body("The server is overloaded", "server_error"))));
                guard.finished = true;
                return;
            }
            _ => {
                // Split one event across two writes, as real networks do.
                let text = chunk(&m, json!({"content": "Hello"}), None);
                let (a, b) = text.split_at(text.len() / 2);
                yield Ok(Bytes::from(a.to_string()));
                yield Ok(Bytes::from(b.to_string()));
                yield Ok(Bytes::from(chunk(&m, json!({"content": " world"}), None)));
            }
        }
        yield Ok(Bytes::from(chunk(&m, json!({}), Some("stop"))));
        if include_usage {
            let usage = json!({"id": "chatcmpl-mock1", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": m, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}});
            yield Ok(Bytes::from(format!("data: {usage}\n\n")));
        }
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
        guard.finished = true;
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}
