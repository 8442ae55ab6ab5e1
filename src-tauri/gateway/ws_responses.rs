//! `GET /v1/responses` upgraded: OpenAI's Responses API in its WebSocket mode
//! (<https://developers.openai.com/api/docs/guides/websocket-mode>), through the canonical
//! model to every provider kind. The client sends `{"type":"response.create", ...}` with
//! the fields of a `POST /v1/responses` body (no `stream`: it is implied); the server
//! answers with the same typed events as the SSE stream (`response.created` …
//! `response.completed`), one JSON text frame each. Responses run one after another; a
//! `response.create` sent while one streams waits its turn.
//!
//! As in OpenAI's own WebSocket mode, the socket remembers its most recent response, so
//! the next `response.create` may send only the new input items with
//! `previous_response_id` (Protogate keeps no responses anywhere else). An id that is not
//! the socket's last response is `previous_response_not_found`: send the whole input.

use std::collections::VecDeque;
use std::pin::pin;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Map, Value};

use super::guard;
use super::routes::route;
use super::state::AppState;
use super::ws::{accept, ChatRecord, Inbound, Link, Stopping, Upgrade};
use crate::chat::ChatEvent;
use crate::dispatch;
use crate::error::{GatewayError, ProviderError};
use crate::wire::responses::{self, ResponseEncoder};

const PATH: &str = "/v1/responses";
/// `response.create` events that may wait behind the one streaming.
const MAX_WAITING: usize = 4;

/// `GET /v1/responses`: the upgrade. (`POST` is the HTTP route, in `routes.rs`.)
pub async fn responses_socket(
    State(state): State<AppState>,
    stopping: Option<Extension<Stopping>>,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
    let stopping = stopping.map(|Extension(s)| s);
    let limit = state.config.limits.max_body_bytes;
    let member = upgrade.member.clone();
    accept(upgrade, &state.clone(), &headers, stopping, move |link| {
        let socket = Socket {
            state,
            origin,
            member,
            previous: None,
            previous_limit: 8 * limit,
        };
        socket.serve(link)
    })
}

struct Socket {
    state: AppState,
    origin: Option<String>,
    /// The member whose token opened the socket.
    member: Option<String>,
    /// The last response: its id and the conversation up to and including its output.
    previous: Option<(String, Vec<Value>)>,
    /// A conversation larger than this (JSON bytes) is not remembered.
    previous_limit: usize,
}

/// What a response's stream gives the socket.
enum Emit {
    /// One event's JSON, for a text frame.
    Event(String),
    /// The response is complete: remember it for `previous_response_id`.
    Completed { id: String, items: Vec<Value> },
}

impl Socket {
    async fn serve(mut self, mut link: Link) {
        let mut waiting = VecDeque::new();
        loop {
            let text = match waiting.pop_front() {
                Some(text) => text,
                None => match link.recv().await {
                    None => return,
                    Some(Inbound::Text(text)) => text,
                    Some(Inbound::Binary) => {
                        let error = GatewayError::bad_request("binary frames are not read here");
                        if !link.send(error_event(&error)).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let record = ChatRecord::open(
                &self.state,
                PATH,
                self.origin.as_deref(),
                self.member.as_deref(),
                "",
            );
            let request = create_body(&text).and_then(|mut body| {
                let input = self.expand(&mut body)?;
                Ok((input, body))
            });
            let (input, body) = match request {
                Ok(request) => request,
                Err(error) => {
                    record.fail(&error);
                    if !link.send(error_event(&error)).await {
                        return;
                    }
                    continue;
                }
            };
            let origin = self.origin.as_deref();
            let mut events = pin!(respond(&self.state, origin, record, input, body));
            let mut completed = None;
            loop {
                tokio::select! {
                    emitted = events.next() => match emitted {
                        Some(Emit::Event(event)) => {
                            if !link.send(event).await {
                                return;
                            }
                        }
                        Some(Emit::Completed { id, items }) => completed = Some((id, items)),
                        None => break,
                    },
                    inbound = link.recv() => match inbound {
                        // Dropping `events` drops the upstream call.
                        None => return,
                        Some(Inbound::Text(text)) if waiting.len() < MAX_WAITING => {
                            waiting.push_back(text)
                        }
                        Some(_) => {
                            let error = GatewayError::bad_request(format!(
                                "{MAX_WAITING} `response.create` events are already waiting; \
                                 send the next when a response completes"
                            ));
                            if !link.send(error_event(&error)).await {
                                return;
                            }
                        }
                    },
                }
            }
            if let Some(previous) = completed {
                let size: usize = previous.1.iter().map(|v| v.to_string().len()).sum();
                self.previous = (size <= self.previous_limit).then_some(previous);
            }
        }
    }

    /// The conversation the request's `input` continues: with `previous_response_id`,
    /// the socket's last response and what led to it, then the new items. Returns the
    /// whole input, which `body` now carries.
    fn expand(&self, body: &mut Map<String, Value>) -> Result<Vec<Value>, GatewayError> {
        let mut input = match body.remove("input") {
            Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
            Some(Value::Array(items)) => items,
            Some(other) => {
                body.insert("input".into(), other);
                return Ok(vec![]);
            }
            None => vec![],
        };
        match body.remove("previous_response_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(wanted)) => match &self.previous {
                Some((id, items)) if *id == wanted => {
                    let mut whole = items.clone();
                    whole.append(&mut input);
                    input = whole;
                }
                _ => {
                    return Err(GatewayError::bad_request(format!(
                        "previous_response_not_found: `{wanted}` is not this socket's last \
                         response (Protogate keeps only that one, on this socket); send the \
                         whole conversation in `input`"
                    )))
                }
            },
            Some(_) => {
                return Err(GatewayError::bad_request(
                    "`previous_response_id` must be a string",
                ))
            }
        }
        body.insert("input".into(), Value::Array(input.clone()));
        Ok(input)
    }
}

/// One response's events: an `error` event alone when it cannot start, else the typed
/// stream, ending in `response.completed` (or `error` and `response.failed`). `input` is
/// the conversation the request carries, remembered with the answer.
fn respond<'a>(
    state: &'a AppState,
    origin: Option<&'a str>,
    record: ChatRecord,
    input: Vec<Value>,
    mut body: Map<String, Value>,
) -> impl Stream<Item = Emit> + 'a {
    // The WebSocket mode's "lane": echoed on each event of this response.
    let lane = match body.remove("stream_id") {
        Some(Value::String(lane)) => Some(Value::String(lane).to_string()),
        _ => None,
    };
    let tag = move |event: String| match &lane {
        Some(lane) => with_field(event, "stream_id", lane),
        None => event,
    };
    async_stream::stream! {
        let started = async {
            if let Some(limited) = guard::shared_origin_limit(state, origin.unwrap_or_default().to_string()).await {
                return Err(limited);
            }
            let parsed = responses::parse_request(&body)?;
            let model = parsed.model.as_deref();
            let routed = route(state, &record.handle, None, model, parsed.chat, None)?;
            let provider = routed.provider.id().to_string();
            let answer = dispatch::stream(state, routed.provider, routed.chat, &record.handle).await?;
            Ok((ResponseEncoder::new(routed.client_model), answer.frames, answer.permit, provider))
        };
        let (mut encoder, mut frames, _permit, provider) = match started.await {
            Ok(started) => started,
            Err(error) => {
                record.fail(&error);
                yield Emit::Event(tag(error_event(&error)));
                return;
            }
        };
        record.handle.set_status(200);
        let mut out = Vec::with_capacity(1024);
        let mut id = None;
        loop {
            // An upstream that ends without its end marker was cut.
            let item = frames.next().await.unwrap_or_else(|| {
                Err(ProviderError::Cut { provider: provider.clone() })
            });
            out.clear();
            let end = match item {
                Ok(frame) => {
                    let mut end = false;
                    for event in &frame.events {
                        match event {
                            ChatEvent::Text(text) => record.handle.push_answer(text),
                            ChatEvent::Usage(usage) => record.handle.set_usage(*usage),
                            ChatEvent::End => end = true,
                            _ => {}
                        }
                    }
                    encoder.encode(&frame, &mut out);
                    end
                }
                Err(e) => {
                    let error = GatewayError::from(e);
                    record.fail(&error);
                    encoder.error(error.error_type(), &error.to_string(), &mut out);
                    true
                }
            };
            for (name, data) in sse_events(&out) {
                match name {
                    "response.created" => {
                        id = response_field(data, "id").and_then(|v| v.as_str().map(String::from));
                        record.handle.set_chat_id(id.as_deref().unwrap_or_default());
                    }
                    "response.completed" | "response.incomplete" => {
                        if let (Some(id), Some(Value::Array(output))) = (&id, response_field(data, "output")) {
                            let mut items = input.clone();
                            items.extend(output);
                            yield Emit::Completed { id: id.clone(), items };
                        }
                    }
                    // The stream's `error` event, with the error object the WebSocket
                    // mode's clients read.
                    "error" => {
                        let mut event: Value = serde_json::from_str(data).unwrap_or_default();
                        event["error"] = json!({"type": error_type(&event), "code": event["code"],
                            "message": event["message"], "param": event["param"]});
                        yield Emit::Event(tag(event.to_string()));
                        continue;
                    }
                    _ => {}
                }
                yield Emit::Event(tag(data.to_string()));
            }
            if end {
                return;
            }
        }
    }
}

/// The body of a `response.create` event: a `/v1/responses` body without `stream`.
fn create_body(text: &str) -> Result<Map<String, Value>, GatewayError> {
    let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(text) else {
        return Err(GatewayError::bad_request(
            "each message is a JSON event: {\"type\":\"response.create\",\"model\",\"input\"}",
        ));
    };
    match body.remove("type") {
        Some(Value::String(kind)) if kind == "response.create" => {}
        other => {
            return Err(GatewayError::bad_request(format!(
                "unknown event type {}: this socket reads `response.create`",
                other.unwrap_or(Value::Null)
            )))
        }
    }
    if body.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(GatewayError::bad_request(
            "`background` is not supported over WebSocket",
        ));
    }
    body.remove("background");
    // The socket streams; `stream: false` would make the parser expect a whole body.
    body.insert("stream".into(), Value::Bool(true));
    Ok(body)
}

/// The `(event name, data)` of each event the encoder wrote as SSE.
fn sse_events(sse: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    std::str::from_utf8(sse)
        .unwrap_or_default()
        .split("\n\n")
        .filter_map(|event| {
            let mut name = "";
            let mut data = None;
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d);
                }
            }
            Some((name, data?))
        })
}

/// `event` (a JSON object) with `"key": value` (JSON) added at its end.
fn with_field(mut event: String, key: &str, value: &str) -> String {
    if event.ends_with('}') {
        event.pop();
        event.push_str(&format!(",\"{key}\":{value}}}"));
    }
    event
}

/// The error `type` of a stream's `error` event, from its `code` (the gateway's own
/// error types, see `GatewayError::error_type`).
fn error_type(event: &Value) -> String {
    event["code"].as_str().unwrap_or("api_error").to_string()
}

fn response_field(data: &str, field: &str) -> Option<Value> {
    let mut event: Value = serde_json::from_str(data).ok()?;
    Some(event.get_mut("response")?.get_mut(field)?.take())
}

/// A request that failed before its response started: the stream's `error` event (what
/// the SDKs' event types read), with the HTTP status and error object the WebSocket
/// mode's clients look for beside it.
fn error_event(error: &GatewayError) -> String {
    let message = error.to_string();
    let (code, param) = match message.split_once(':') {
        Some(("previous_response_not_found", _)) => {
            ("previous_response_not_found", Some("previous_response_id"))
        }
        _ => (error.error_type(), None),
    };
    json!({
        "type": "error", "code": code, "message": message, "param": param,
        "sequence_number": 0, "status": error.status().as_u16(),
        "error": {"type": error.error_type(), "code": code, "message": message, "param": param},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoders_sse_becomes_one_json_per_event() {
        let sse = b"event: response.created\ndata: {\"a\":1}\n\nevent: error\ndata: {\"b\":2}\n\n";
        let events: Vec<_> = sse_events(sse).collect();
        assert_eq!(
            events,
            [("response.created", "{\"a\":1}"), ("error", "{\"b\":2}")]
        );
        let tagged = with_field("{\"a\":1}".into(), "stream_id", "\"lane\"");
        assert_eq!(tagged, "{\"a\":1,\"stream_id\":\"lane\"}");
    }

    #[test]
    fn a_create_event_is_a_responses_body_that_streams() {
        let body = create_body(r#"{"type":"response.create","model":"m","input":"hi"}"#).unwrap();
        assert_eq!(body.get("stream"), Some(&Value::Bool(true)));
        assert!(!body.contains_key("type"));
        for refused in [
            r#"{"type":"response.cancel"}"#,
            r#"{"type":"response.create","input":"hi","background":true}"#,
            "not json",
        ] {
            assert!(create_body(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_lost_previous_response_is_named_as_openai_names_it() {
        let error = GatewayError::bad_request("previous_response_not_found: `resp_1` is gone");
        let event: Value = serde_json::from_str(&error_event(&error)).unwrap();
        assert_eq!(event["error"]["code"], "previous_response_not_found");
        assert_eq!(event["error"]["param"], "previous_response_id");
        assert_eq!(event["status"], 400);
        assert_eq!(event["message"], event["error"]["message"]);
    }
}
