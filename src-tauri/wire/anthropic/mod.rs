//! Anthropic Messages: client requests in, upstream events decoded (also as Bedrock
//! delivers them to the ASAP gateway), and events and messages written for clients.
//! Format: <https://docs.anthropic.com/en/api/messages-streaming>.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{json, Value};

mod request;

pub use request::{parse_request, request_body, Dialect};

use super::DecodeError;
use crate::chat::{ChatEvent, Completion, FinishReason, Frame, RawEvent, ToolCall, Usage};
use request::blocks_text;

/// The Messages API version Protogate speaks upstream.
pub const API_VERSION: &str = "2023-06-01";
/// The payload version Bedrock's Anthropic models expect.
pub const BEDROCK_VERSION: &str = "bedrock-2023-05-31";
/// Anthropic requires `max_tokens`; clients in other formats often leave it out.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

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
/// usage reported at the end is whole, and numbers `tool_use` blocks as tool calls (a
/// block index counts text blocks too; a tool call index does not).
#[derive(Debug, Default)]
pub struct EventDecoder {
    input_tokens: u64,
    /// Block index → tool call index, for the `tool_use` blocks seen so far.
    tool_blocks: Vec<(u64, usize)>,
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
        if let Some(events) = text_delta(&data) {
            return Ok(Frame {
                raw: Some(RawEvent {
                    name: Some("content_block_delta".into()),
                    data: Bytes::from(data),
                }),
                events,
            });
        }
        self.decode_tree(name, data)
    }

    /// Any event, read as a `Value` tree.
    fn decode_tree(&mut self, name: Option<&str>, data: String) -> Result<Frame, DecodeError> {
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
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                let block = v["index"].as_u64().unwrap_or(0);
                let index = self.tool_blocks.len();
                self.tool_blocks.push((block, index));
                let text = |f: &str| {
                    v["content_block"][f]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                };
                events.push(ChatEvent::ToolCallStart {
                    index,
                    id: text("id"),
                    name: text("name"),
                });
            }
            "content_block_delta" => match v["delta"]["type"].as_str() {
                Some("input_json_delta") => {
                    let block = v["index"].as_u64().unwrap_or(0);
                    let partial = v["delta"]["partial_json"].as_str().unwrap_or_default();
                    let index = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == block)
                        .map(|(_, i)| *i);
                    if let (Some(index), false) = (index, partial.is_empty()) {
                        events.push(ChatEvent::ToolCallDelta {
                            index,
                            arguments: partial.to_string(),
                        });
                    }
                }
                _ => {
                    if let Some(text) = v["delta"]["text"].as_str() {
                        if !text.is_empty() {
                            events.push(ChatEvent::Text(text.to_string()));
                        }
                    }
                }
            },
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
            _ => {} // ping, text content_block_start, content_block_stop
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

/// A text `content_block_delta`, the event a stream is mostly made of, read into
/// borrowed fields rather than a `Value` tree (a map and a string per key, per token).
/// `None` for anything else, or anything unusual (a field of the wrong type, a key given
/// twice): the tree reads those, as it does every other event, so what an event means
/// does not depend on which path read it.
fn text_delta(data: &str) -> Option<Vec<ChatEvent>> {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(borrow)]
        delta: &'a RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Delta<'a> {
        #[serde(rename = "type", default, borrow)]
        kind: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        text: Option<Cow<'a, str>>,
    }
    // A derived struct also reads a JSON array as its fields in order; the tree does not.
    let object = |json: &str| json.trim_start().starts_with('{');
    // Searched first: a failed parse costs more than the parse (its error is a formatted
    // message with a line and column).
    if !data.contains("\"content_block_delta\"") || !object(data) {
        return None;
    }
    let event: Event = serde_json::from_str(data).ok()?;
    if event.kind != "content_block_delta" || !object(event.delta.get()) {
        return None;
    }
    let delta: Delta = serde_json::from_str(event.delta.get()).ok()?;
    if delta.kind.as_deref() == Some("input_json_delta") {
        return None;
    }
    Some(match delta.text {
        Some(text) if !text.is_empty() => vec![ChatEvent::Text(text.into_owned())],
        _ => vec![],
    })
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
        super::json_from_bytes(&body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let text = v.get("content").and_then(blocks_text).unwrap_or_default();
    let tool_calls = v["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| ToolCall {
            id: b["id"].as_str().unwrap_or_default().to_string(),
            name: b["name"].as_str().unwrap_or_default().to_string(),
            arguments: b
                .get("input")
                .map(Value::to_string)
                .unwrap_or_else(|| "{}".into()),
        })
        .collect();
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
        tool_calls,
        finish,
        usage,
        raw: Some(body),
    })
}

/// A tool call's arguments as the object Anthropic's `input` is; text that is not a
/// JSON object is kept under `arguments` rather than lost.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({ "arguments": arguments }),
    }
}

/// A `message` object for a client that did not stream.
pub fn message_json(model: &str, completion: &Completion) -> Value {
    let usage = completion.usage.unwrap_or_default();
    let mut content = vec![];
    if !completion.text.is_empty() || completion.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": completion.text}));
    }
    for call in &completion.tool_calls {
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name,
            "input": tool_input(&call.arguments)}));
    }
    json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_name(completion.finish.unwrap_or(FinishReason::Stop)),
        "stop_sequence": null,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    })
}

/// The block the encoder has open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenBlock {
    None,
    Text,
    /// A `tool_use` block for this tool call index.
    Tool(usize),
}

/// Writes Anthropic stream events for a client, from any provider's frames: text and
/// tool calls become numbered content blocks, each started and stopped in turn.
pub struct EventEncoder {
    id: String,
    model: String,
    /// Frames carry Anthropic events already: forward them verbatim.
    passthrough: bool,
    started: bool,
    open: OpenBlock,
    /// Index of the open block, or of the next one.
    block: usize,
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
            open: OpenBlock::None,
            block: 0,
            finish: None,
            usage: Usage::default(),
        }
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if self.open != OpenBlock::None {
            write_json(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.block}),
            );
            self.open = OpenBlock::None;
            self.block += 1;
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, open: OpenBlock, block: Value) {
        self.close_block(out);
        self.open = open;
        write_json(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.block, "content_block": block}),
        );
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
                    if self.open != OpenBlock::Text {
                        self.open_block(out, OpenBlock::Text, json!({"type": "text", "text": ""}));
                    }
                    write_json(
                        out,
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": self.block,
                            "delta": {"type": "text_delta", "text": text}}),
                    );
                }
                ChatEvent::ToolCallStart { index, id, name } => self.open_block(
                    out,
                    OpenBlock::Tool(*index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                ),
                ChatEvent::ToolCallDelta { index, arguments } => {
                    if self.open == OpenBlock::Tool(*index) {
                        write_json(
                            out,
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": self.block,
                                "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                        );
                    }
                }
                ChatEvent::Finish(reason) => self.finish = Some(*reason),
                ChatEvent::Usage(usage) => self.usage = *usage,
                ChatEvent::End => {
                    self.close_block(out);
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
    use crate::chat::{ChatRequest, Message, Role};

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
            messages: vec![Message::text(Role::User, "hi")],
            ..ChatRequest::default()
        };
        let body = request_body(&chat, Dialect::Bedrock).unwrap();
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
    fn a_text_delta_means_the_same_read_either_way() {
        let delta = |rest: &str| format!(r#"{{"type":"content_block_delta","index":0,{rest}}}"#);
        let read_fast = [
            delta(r#""delta":{"type":"text_delta","text":"Hello"}"#),
            delta(r#""delta":{"type":"text_delta","text":"a \"quote\"\n\u00e9"}"#),
            delta(r#""delta":{"type":"text_delta","text":""}"#),
            delta(r#""delta":{"type":"text_delta"}"#),
            delta(r#""delta":{"text":"no type","extra":[1,{"x":null}]}"#),
            delta(r#""delta":{"type":null,"text":null}"#),
            format!(
                " \n{}",
                delta(r#""delta":{"type":"text_delta","text":"x"}"#)
            ),
        ];
        let read_by_the_tree = [
            delta(r#""delta":{"type":"input_json_delta","partial_json":"{\"a\""}"#),
            delta(r#""delta":["text_delta","as an array"]"#),
            delta(r#""delta":{"type":"text_delta","text":7}"#),
            delta(r#""delta":{"type":"text_delta","text":"a","text":"b"}"#),
            delta(r#""delta":null"#),
            r#"["content_block_delta",{"type":"text_delta","text":"hi"}]"#.into(),
            r#"{"type":"content_block_delta","type":"ping","delta":{"text":"hi"}}"#.into(),
            r#"{"type":"content_block_delta"}"#.into(),
            r#"{"type":"ping"}"#.into(),
            delta(r#""delta":{"type":"text_delta","text":"x"}} trailing"#),
        ];
        for data in read_fast.iter().chain(&read_by_the_tree) {
            let tree = EventDecoder::default().decode_tree(None, data.clone());
            match text_delta(data) {
                Some(events) => {
                    assert!(read_fast.contains(data), "read fast: {data}");
                    let tree = tree.unwrap_or_else(|e| panic!("{data}: {e:?}"));
                    assert_eq!(events, tree.events, "{data}");
                    assert_eq!(
                        tree.raw.unwrap().name.as_deref(),
                        Some("content_block_delta")
                    );
                }
                None => assert!(read_by_the_tree.contains(data), "not read fast: {data}"),
            }
        }
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
