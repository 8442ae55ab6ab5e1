//! Anthropic Messages: client requests in, upstream events decoded (also as Bedrock
//! delivers them to the ASAP gateway), and events and messages written for clients.
//! Format: <https://docs.anthropic.com/en/api/messages-streaming>.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{field_err, ClientRequest, DecodeError};
use crate::chat::{
    ChatEvent, ChatRequest, Completion, FinishReason, Frame, Message, RawEvent, Role, Usage,
};
use crate::error::GatewayError;

/// The Messages API version Protogate speaks upstream.
pub const API_VERSION: &str = "2023-06-01";
/// The payload version Bedrock's Anthropic models expect.
pub const BEDROCK_VERSION: &str = "bedrock-2023-05-31";
/// Anthropic requires `max_tokens`; clients in other formats often leave it out.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub fn parse_request(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError> {
    let ClientRequest { model, stream, .. } = ClientRequest::read(body)?;
    let system = match body.get("system") {
        None | Some(Value::Null) => None,
        Some(s) => {
            Some(blocks_text(s).ok_or_else(|| field_err("system", "a string or text blocks"))?)
        }
    };
    let Some(Value::Array(raw)) = body.get("messages") else {
        return Err(field_err("messages", "an array of {role, content}"));
    };
    if raw.is_empty() {
        return Err(field_err("messages", "a non-empty array"));
    }
    let mut messages = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(field_err(
                    &format!("messages[{i}].role"),
                    "user or assistant",
                ))
            }
        };
        let content = m.get("content").and_then(blocks_text).ok_or_else(|| {
            field_err(
                &format!("messages[{i}].content"),
                "a string or content blocks",
            )
        })?;
        messages.push(Message { role, content });
    }
    let max_tokens = match body.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| field_err("max_tokens", "a positive integer"))?
                .min(u32::MAX.into()) as u32,
        ),
    };
    let stop = body
        .get("stop_sequences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(ClientRequest {
        model,
        stream,
        chat: ChatRequest {
            system,
            messages,
            max_tokens,
            temperature: body.get("temperature").and_then(Value::as_f64),
            top_p: body.get("top_p").and_then(Value::as_f64),
            stop,
            include_usage: true,
            ..ChatRequest::default()
        },
    })
}

/// Text of a string or of the text blocks (also inside `tool_result` blocks).
fn blocks_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                    Some("text") => b.get("text").and_then(Value::as_str).map(String::from),
                    Some("tool_result") => b.get("content").and_then(blocks_text),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

/// Who receives a body built from the canonical request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Anthropic's own API: `model` and `stream` in the body.
    Api { stream: bool },
    /// Bedrock's `InvokeModel[WithResponseStream]`: the model and streaming are in the URL.
    Bedrock,
}

pub fn request_body(chat: &ChatRequest, dialect: Dialect) -> Value {
    let messages: Vec<Value> = chat
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": [{"type": "text", "text": m.content}]}))
        .collect();
    let mut body = json!({
        "max_tokens": chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    let obj = body.as_object_mut().expect("object");
    match dialect {
        Dialect::Api { stream } => {
            obj.insert("model".into(), chat.model.clone().into());
            obj.insert("stream".into(), stream.into());
        }
        Dialect::Bedrock => {
            obj.insert("anthropic_version".into(), BEDROCK_VERSION.into());
        }
    }
    if let Some(system) = &chat.system {
        obj.insert("system".into(), system.clone().into());
    }
    if let Some(t) = chat.temperature {
        obj.insert("temperature".into(), t.into());
    }
    if let Some(p) = chat.top_p {
        obj.insert("top_p".into(), p.into());
    }
    if !chat.stop.is_empty() {
        obj.insert("stop_sequences".into(), chat.stop.clone().into());
    }
    body
}

fn stop_reason(name: &str) -> FinishReason {
    match name {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

fn stop_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::Other => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Decodes a stream's events; keeps the input token count from `message_start` so the
/// usage reported at the end is whole.
#[derive(Debug, Default)]
pub struct EventDecoder {
    input_tokens: u64,
}

impl EventDecoder {
    /// One event's `data:`. `Err` is the message of an `error` event, or a parse failure.
    /// Takes the data by value: a passed-through event keeps its bytes without a copy.
    pub fn decode(
        &mut self,
        name: Option<&str>,
        data: impl Into<String>,
    ) -> Result<Frame, DecodeError> {
        let data: String = data.into();
        let v: Value =
            serde_json::from_str(&data).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(name)
            .unwrap_or_default();
        let mut events = vec![];
        match kind {
            "message_start" => {
                self.input_tokens = v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_delta" => {
                if let Some(text) = v["delta"]["text"].as_str() {
                    if !text.is_empty() {
                        events.push(ChatEvent::Text(text.to_string()));
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                    events.push(ChatEvent::Finish(stop_reason(reason)));
                }
                if let Some(output) = v["usage"]["output_tokens"].as_u64() {
                    let input = v["usage"]["input_tokens"]
                        .as_u64()
                        .unwrap_or(self.input_tokens);
                    events.push(ChatEvent::Usage(Usage {
                        input_tokens: input,
                        output_tokens: output,
                    }));
                }
            }
            "message_stop" => {
                // Bedrock puts the token counts here.
                let metrics = &v["amazon-bedrock-invocationMetrics"];
                if let (Some(i), Some(o)) = (
                    metrics["inputTokenCount"].as_u64(),
                    metrics["outputTokenCount"].as_u64(),
                ) {
                    events.push(ChatEvent::Usage(Usage {
                        input_tokens: i,
                        output_tokens: o,
                    }));
                }
                events.push(ChatEvent::End);
            }
            "error" => {
                return Err(DecodeError::Upstream(
                    error_message(&v).unwrap_or_else(|| data.to_string()),
                ))
            }
            _ => {} // ping, content_block_start/stop
        }
        Ok(Frame {
            raw: Some(RawEvent {
                name: Some(kind.to_string()),
                data: Bytes::from(data),
            }),
            events,
        })
    }
}

/// The message of `{"type": "error", "error": {"type", "message"}}` (also Bedrock's
/// `{"message": ...}`).
pub fn error_message(body: &Value) -> Option<String> {
    body.get("error")
        .and_then(|e| e.get("message"))
        .or_else(|| body.get("message"))
        .or_else(|| body.get("Message"))
        .and_then(Value::as_str)
        .map(String::from)
}

/// Reads a non-streamed message, keeping it verbatim for pass-through.
pub fn decode_message(body: Bytes) -> Result<Completion, DecodeError> {
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let text = v.get("content").and_then(blocks_text).unwrap_or_default();
    let finish = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(stop_reason);
    let usage = v.get("usage").map(|u| Usage {
        input_tokens: u["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: u["output_tokens"].as_u64().unwrap_or(0),
    });
    Ok(Completion {
        text,
        finish,
        usage,
        raw: Some(body),
    })
}

/// A `message` object for a client that did not stream.
pub fn message_json(model: &str, completion: &Completion) -> Value {
    let usage = completion.usage.unwrap_or_default();
    json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": stop_reason_name(completion.finish.unwrap_or(FinishReason::Stop)),
        "stop_sequence": null,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    })
}

/// Writes Anthropic stream events for a client, from any provider's frames.
pub struct EventEncoder {
    id: String,
    model: String,
    /// Frames carry Anthropic events already: forward them verbatim.
    passthrough: bool,
    started: bool,
    block_open: bool,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl EventEncoder {
    pub fn new(model: String, passthrough: bool) -> Self {
        EventEncoder {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            model,
            passthrough,
            started: false,
            block_open: false,
            finish: None,
            usage: Usage::default(),
        }
    }

    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        if self.passthrough {
            if let Some(raw) = &frame.raw {
                write_event(out, raw.name.as_deref().unwrap_or("message"), &raw.data);
                return;
            }
        }
        if !self.started {
            self.started = true;
            let start = json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "content": [],
                "model": self.model, "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }});
            write_json(out, "message_start", &start);
        }
        for event in &frame.events {
            match event {
                ChatEvent::Text(text) => {
                    if !self.block_open {
                        self.block_open = true;
                        write_json(
                            out,
                            "content_block_start",
                            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                        );
                    }
                    write_json(
                        out,
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
                    );
                }
                ChatEvent::Finish(reason) => self.finish = Some(*reason),
                ChatEvent::Usage(usage) => self.usage = *usage,
                ChatEvent::End => {
                    if self.block_open {
                        self.block_open = false;
                        write_json(
                            out,
                            "content_block_stop",
                            &json!({"type": "content_block_stop", "index": 0}),
                        );
                    }
                    let reason = stop_reason_name(self.finish.unwrap_or(FinishReason::Stop));
                    write_json(
                        out,
                        "message_delta",
                        &json!({"type": "message_delta",
                        "delta": {"stop_reason": reason, "stop_sequence": null},
                        "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens}}),
                    );
                    write_json(out, "message_stop", &json!({"type": "message_stop"}));
                }
            }
        }
    }
}

/// An `error` event; Anthropic streams have no `[DONE]`.
pub fn error_event(out: &mut Vec<u8>, error_type: &str, message: &str) {
    write_json(
        out,
        "error",
        &json!({"type": "error", "error": {"type": error_type, "message": message}}),
    );
}

/// The error body Anthropic's SDKs parse.
pub fn error_body(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

fn write_json(out: &mut Vec<u8>, name: &str, value: &Value) {
    write_event(out, name, value.to_string().as_bytes());
}

fn write_event(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_system_blocks_and_limits() {
        let body = json!({"model": "claude/claude-x", "max_tokens": 100, "stream": true,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "stop_sequences": ["END"]});
        let req = parse_request(body.as_object().unwrap()).unwrap();
        assert!(req.stream);
        assert_eq!(req.chat.system.as_deref(), Some("be brief"));
        assert_eq!(req.chat.prompt(), "hi");
        assert_eq!(req.chat.max_tokens, Some(100));
        assert_eq!(req.chat.stop, vec!["END"]);
        let bad = json!({"messages": [{"role": "system", "content": "x"}]});
        assert!(parse_request(bad.as_object().unwrap())
            .unwrap_err()
            .to_string()
            .contains("messages[0].role"));
    }

    #[test]
    fn bedrock_body_has_version_blocks_and_no_model() {
        let chat = ChatRequest {
            model: "m".into(),
            system: Some("sys".into()),
            messages: vec![Message {
                role: Role::User,
                content: "hi".into(),
            }],
            ..ChatRequest::default()
        };
        let body = request_body(&chat, Dialect::Bedrock);
        assert_eq!(body["anthropic_version"], BEDROCK_VERSION);
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(body["system"], "sys");
        assert_eq!(
            body["messages"][0]["content"][0],
            json!({"type": "text", "text": "hi"})
        );
        assert!(body.get("model").is_none() && body.get("stream").is_none());
    }

    #[test]
    fn decodes_the_documented_event_flow() {
        let mut d = EventDecoder::default();
        let events = |d: &mut EventDecoder, data: &str| d.decode(None, data).unwrap().events;
        assert!(events(&mut d, r#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":12,"output_tokens":1}}}"#).is_empty());
        assert_eq!(
            events(
                &mut d,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#
            ),
            vec![ChatEvent::Text("Hello".into())]
        );
        assert_eq!(
            events(
                &mut d,
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":5}}"#
            ),
            vec![
                ChatEvent::Finish(FinishReason::Length),
                ChatEvent::Usage(Usage {
                    input_tokens: 12,
                    output_tokens: 5
                })
            ]
        );
        assert_eq!(
            events(&mut d, r#"{"type":"message_stop"}"#),
            vec![ChatEvent::End]
        );
        assert!(
            matches!(d.decode(Some("error"), r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#), Err(DecodeError::Upstream(m)) if m == "Overloaded")
        );
    }

    #[test]
    fn bedrock_metrics_on_message_stop_become_usage() {
        let mut d = EventDecoder::default();
        let f = d.decode(None, r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":9,"invocationLatency":640,"firstByteLatency":210}}"#).unwrap();
        assert_eq!(
            f.events,
            vec![
                ChatEvent::Usage(Usage {
                    input_tokens: 12,
                    output_tokens: 9
                }),
                ChatEvent::End
            ]
        );
    }

    #[test]
    fn encoder_writes_the_full_event_flow() {
        let mut enc = EventEncoder::new("demo/x".into(), false);
        let mut out = vec![];
        for e in [
            ChatEvent::Text("a".into()),
            ChatEvent::Finish(FinishReason::Length),
            ChatEvent::Usage(Usage {
                input_tokens: 1,
                output_tokens: 2,
            }),
            ChatEvent::End,
        ] {
            enc.encode(&Frame::event(e), &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(
            text.contains(r#""stop_reason":"max_tokens""#) && text.contains(r#""output_tokens":2"#),
            "{text}"
        );
    }
}
