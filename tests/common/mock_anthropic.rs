//! A mock Anthropic Messages API on `127.0.0.1:0`, replaying the documented stream:
//! `message_start`, `content_block_start`, `ping`, `content_block_delta`s,
//! `content_block_stop`, `message_delta` (stop reason, usage), `message_stop`. It insists
//! on `x-api-key` and `anthropic-version`, as the real API does. The `model` picks a
//! behaviour:
//!
//! - `claude-test` (any other name): "Hello world", stop reason `end_turn`.
//! - `claude-long`: "Hello world", stop reason `max_tokens`.
//! - `overloaded`: one delta, then an `error` event (`overloaded_error`).
//! - `cut`: one delta, then the connection closes with no `message_stop`.
//! - `rate-limited`: a 429 `rate_limit_error`.
//! - `claude-tool`: "Let me check." then a `tool_use` block calling `get_weather` with
//!   `{"location": "San Francisco, CA"}` (its JSON split across two `input_json_delta`s),
//!   stop reason `tool_use`; as the Messages API documents tool use.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Clone, Default)]
pub struct MockAnthropic {
    pub base_url: String,
    /// `x-api-key` values received.
    keys: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl MockAnthropic {
    pub async fn start(valid_key: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockAnthropic {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            ..MockAnthropic::default()
        };
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .with_state((mock.clone(), valid_key));
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

async fn messages(
    State((mock, valid_key)): State<(MockAnthropic, &'static str)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    mock.keys.lock().unwrap().push(key.clone());
    mock.bodies.lock().unwrap().push(body.clone());
    if headers.get("anthropic-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    if key != valid_key {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    }
    let model = body["model"].as_str().unwrap_or_default().to_string();
    if model == "rate-limited" {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        );
    }
    let stop_reason = if model == "claude-long" {
        "max_tokens"
    } else {
        "end_turn"
    };
    if model == "claude-tool" {
        return tool_use_answer(&body, &model);
    }
    if !body["stream"].as_bool().unwrap_or(false) {
        return Json(json!({
            "id": "msg_mock01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Hello world"}],
            "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 2},
        }))
        .into_response();
    }
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_mock01", "type": "message", "role": "assistant",
            "content": [], "model": model, "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
    ];
    match model.as_str() {
        "overloaded" => events.push(event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))),
        "cut" => {}
        _ => {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " world"}})));
            events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
            events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 2}})));
            events.push(event("message_stop", json!({"type": "message_stop"})));
        }
    }
    let stream =
        futures_util::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The documented tool-use answer, streamed or whole.
fn tool_use_answer(body: &Value, model: &str) -> Response {
    if !body["stream"].as_bool().unwrap_or(false) {
        return Json(json!({
            "id": "msg_mock02", "type": "message", "role": "assistant", "model": model,
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                 "input": {"location": "San Francisco, CA"}},
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 20},
        }))
        .into_response();
    }
    let events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_mock02", "type": "message",
            "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"location\": \"San"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " Francisco, CA\"}"}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 20}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ];
    let stream =
        futures_util::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
