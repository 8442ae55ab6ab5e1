//! OpenAI Chat Completions: client requests in, upstream chunks decoded, and chunks and
//! completions written for clients. Format: <https://platform.openai.com/docs/api-reference/chat>.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

mod request;

pub(crate) use request::{image_source, tool_choice};
pub use request::{parse_request, request_body};

use super::DecodeError;
use crate::chat::{ChatEvent, Completion, FinishReason, Frame, RawEvent, ToolCall, Usage};

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A piece of a streamed tool call: the first carries id and name, later ones arguments.
#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

/// What a stream chunk said, or the message of an error object sent in the stream.
/// Takes the data by value: a passed-through chunk keeps its bytes without a copy.
pub fn decode_chunk(data: impl Into<String>) -> Result<Frame, DecodeError> {
    let data: String = data.into();
    if data == "[DONE]" {
        return Ok(Frame::event(ChatEvent::End));
    }
    let chunk: Chunk =
        serde_json::from_str(&data).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if let Some(error) = chunk.error {
        return Err(DecodeError::Upstream(error_message(&error)));
    }
    let mut events = Vec::with_capacity(1);
    for choice in chunk.choices.into_iter().flatten() {
        let delta = choice.delta.unwrap_or(ChunkDelta {
            content: None,
            tool_calls: None,
        });
        if let Some(text) = delta.content {
            if !text.is_empty() {
                events.push(ChatEvent::Text(text));
            }
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let (name, arguments) = match call.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            if call.id.is_some() || name.is_some() {
                events.push(ChatEvent::ToolCallStart {
                    index: call.index,
                    id: call.id.unwrap_or_default(),
                    name: name.unwrap_or_default(),
                });
            }
            if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                events.push(ChatEvent::ToolCallDelta {
                    index: call.index,
                    arguments,
                });
            }
        }
        if let Some(reason) = choice.finish_reason {
            events.push(ChatEvent::Finish(FinishReason::from_openai(&reason)));
        }
    }
    if let Some(usage) = chunk.usage {
        events.push(ChatEvent::Usage(usage.into()));
    }
    Ok(Frame {
        raw: Some(RawEvent {
            name: None,
            data: Bytes::from(data),
        }),
        events,
    })
}

/// The human message in an OpenAI-style error object (`{"message": ...}` or a string).
pub fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| other.to_string()),
    }
}

/// A completion as the gateway reads it: only what the log and a translation need, the
/// rest skipped, text borrowed from the body where it has no escapes. A pass-through
/// answer goes to the client as its bytes, so this is read only for the request log.
#[derive(Deserialize)]
struct WireCompletion<'a> {
    #[serde(default, borrow)]
    choices: Vec<CompletionChoice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct CompletionChoice<'a> {
    #[serde(default, borrow)]
    message: Option<CompletionMessage<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CompletionMessage<'a> {
    /// A string, an array of parts, or null: read once its kind is known.
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    tool_calls: Vec<Value>,
}

/// Reads a non-streamed completion body, keeping it verbatim for pass-through.
pub fn decode_completion(body: Bytes) -> Result<Completion, DecodeError> {
    let malformed = |e: serde_json::Error| DecodeError::Malformed(e.to_string());
    let wire: WireCompletion = super::json_from_bytes(&body).map_err(malformed)?;
    let choice = wire.choices.into_iter().next();
    let finish = choice
        .as_ref()
        .and_then(|c| c.finish_reason.as_deref())
        .map(FinishReason::from_openai);
    let message = choice.and_then(|c| c.message);
    let text = match message.as_ref().and_then(|m| m.content) {
        Some(content) => content_text(content).map_err(malformed)?,
        None => String::new(),
    };
    let tool_calls = message
        .map(|m| m.tool_calls.iter().map(tool_call_of).collect())
        .unwrap_or_default();
    Ok(Completion {
        text,
        tool_calls,
        finish,
        usage: wire.usage.map(Usage::from),
        raw: Some(body),
    })
}

fn tool_call_of(call: &Value) -> ToolCall {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    ToolCall {
        id: text(&call["id"]),
        name: text(&call["function"]["name"]),
        arguments: match &call["function"]["arguments"] {
            Value::String(s) => s.clone(),
            Value::Null => "{}".into(),
            other => other.to_string(),
        },
    }
}

/// Text of a message's `content`: a string, or the text parts of an array.
fn content_text(content: &RawValue) -> serde_json::Result<String> {
    let raw = content.get();
    Ok(match raw.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<Cow<str>>(raw)?.into_owned(),
        Some(b'[') => serde_json::from_str::<Vec<Value>>(raw)?
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        // null, or a kind no server sends: no text.
        _ => String::new(),
    })
}

/// Writes `chat.completion.chunk` events for a client, from any provider's frames.
pub struct ChunkEncoder {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// Frames carry OpenAI chunks already: forward them verbatim.
    passthrough: bool,
    sent_role: bool,
}

impl ChunkEncoder {
    pub fn new(model: String, include_usage: bool, passthrough: bool) -> Self {
        ChunkEncoder {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: unix_now(),
            model,
            include_usage,
            passthrough,
            sent_role: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    /// Appends the SSE bytes for `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        if self.passthrough {
            if let Some(raw) = &frame.raw {
                write_data(out, &raw.data);
            }
        }
        for event in &frame.events {
            let chunk = match event {
                ChatEvent::End => {
                    write_data(out, b"[DONE]");
                    continue;
                }
                _ if self.passthrough && frame.raw.is_some() => continue,
                ChatEvent::Text(text) => {
                    let delta = if self.sent_role {
                        json!({"content": text})
                    } else {
                        json!({"role": "assistant", "content": text})
                    };
                    self.sent_role = true;
                    self.chunk(delta, None)
                }
                ChatEvent::ToolCallStart { index, id, name } => {
                    let call = json!({"index": index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}});
                    let mut delta = json!({"tool_calls": [call]});
                    if !self.sent_role {
                        delta["role"] = "assistant".into();
                        delta["content"] = Value::Null;
                    }
                    self.sent_role = true;
                    self.chunk(delta, None)
                }
                ChatEvent::ToolCallDelta { index, arguments } => self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
                    None,
                ),
                ChatEvent::Finish(reason) => self.chunk(json!({}), Some(reason.as_openai())),
                ChatEvent::Usage(usage) if self.include_usage => json!({
                    "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage_json(usage),
                }),
                ChatEvent::Usage(_) => continue,
            };
            write_data(out, chunk.to_string().as_bytes());
        }
    }
}

/// A `chat.completion` object for a client that did not stream.
pub fn completion_json(model: &str, completion: &Completion) -> Value {
    let mut message = json!({"role": "assistant", "content": completion.text});
    if !completion.tool_calls.is_empty() {
        let calls: Vec<Value> = completion
            .tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        message["tool_calls"] = calls.into();
        if completion.text.is_empty() {
            message["content"] = Value::Null;
        }
    }
    json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": completion.finish.unwrap_or(FinishReason::Stop).as_openai(),
        }],
        "usage": usage_json(&completion.usage.unwrap_or_default()),
    })
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

fn write_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_system_roles_parts_and_limits() {
        let req = parse_request(&body(json!({
            "model": "openai/gpt-4o-mini", "stream": true,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
            ],
            "max_completion_tokens": 50, "stop": "END", "stream_options": {"include_usage": true},
        })))
        .unwrap();
        assert!(req.stream);
        assert_eq!(req.model.as_deref(), Some("openai/gpt-4o-mini"));
        assert_eq!(req.chat.system.as_deref(), Some("be brief"));
        assert_eq!(req.chat.prompt(), "hi there");
        assert_eq!(req.chat.max_tokens, Some(50));
        assert_eq!(req.chat.stop, vec!["END"]);
        assert!(req.chat.include_usage);
    }

    #[test]
    fn rejects_missing_messages_and_bad_roles() {
        let e = parse_request(&body(json!({"model": "m"}))).unwrap_err();
        assert!(e.to_string().contains("messages"), "{e}");
        let e = parse_request(&body(
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("messages[0].role"), "{e}");
        let e = parse_request(&body(json!({"messages": [{"role": "user", "content": 5}]})))
            .unwrap_err();
        assert!(e.to_string().contains("messages[0].content"), "{e}");
    }

    #[test]
    fn decodes_documented_chunks() {
        let f = decode_chunk(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#).unwrap();
        assert_eq!(f.events, vec![ChatEvent::Text("Hello".into())]);
        let f = decode_chunk(
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
        )
        .unwrap();
        assert_eq!(f.events, vec![ChatEvent::Finish(FinishReason::Length)]);
        let f = decode_chunk(r#"{"id":"c","choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#).unwrap();
        assert_eq!(
            f.events,
            vec![ChatEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4
            })]
        );
        assert_eq!(decode_chunk("[DONE]").unwrap().events, vec![ChatEvent::End]);
        assert!(
            matches!(decode_chunk(r#"{"error":{"message":"overloaded"}}"#), Err(DecodeError::Upstream(m)) if m == "overloaded")
        );
        assert!(matches!(
            decode_chunk("{oops"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn encoder_writes_role_first_then_content_finish_and_done() {
        let mut enc = ChunkEncoder::new("demo/x".into(), true, false);
        let mut out = vec![];
        for event in [
            ChatEvent::Text("a".into()),
            ChatEvent::Text("b".into()),
            ChatEvent::Finish(FinishReason::Stop),
            ChatEvent::Usage(Usage {
                input_tokens: 1,
                output_tokens: 2,
            }),
            ChatEvent::End,
        ] {
            enc.encode(&Frame::event(event), &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let events: Vec<&str> = text.split("\n\n").filter(|s| !s.is_empty()).collect();
        assert_eq!(events.len(), 5, "{text}");
        assert!(
            events[0].contains(r#""role":"assistant""#) && events[0].contains(r#""content":"a""#)
        );
        assert!(!events[1].contains("role"));
        assert!(events[2].contains(r#""finish_reason":"stop""#));
        assert!(events[3].contains(r#""total_tokens":3"#));
        assert_eq!(events[4], "data: [DONE]");
    }

    #[test]
    fn decodes_completions_as_documented() {
        // Text with escapes, the parts form, a tool call with null content.
        let text = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"say \"hi\"\n\u00e9"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        let c = decode_completion(Bytes::from(text)).unwrap();
        assert_eq!(c.text, "say \"hi\"\né");
        assert_eq!(c.finish, Some(FinishReason::Length));
        let usage = c.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (5, 2));
        assert_eq!(c.raw.as_deref(), Some(text.as_bytes()), "kept verbatim");

        let parts = r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"refusal"},{"type":"text","text":"b"}]}}]}"#;
        assert_eq!(decode_completion(Bytes::from(parts)).unwrap().text, "ab");

        let tool = r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},"finish_reason":"tool_calls"}]}"#;
        let c = decode_completion(Bytes::from(tool)).unwrap();
        assert_eq!(c.text, "");
        assert_eq!(c.finish, Some(FinishReason::ToolCalls));
        assert_eq!(
            (c.tool_calls[0].id.as_str(), c.tool_calls[0].name.as_str()),
            ("t1", "f")
        );
        assert_eq!(c.tool_calls[0].arguments, r#"{"x":1}"#);

        assert_eq!(decode_completion(Bytes::from("{}")).unwrap().text, "");
        assert!(matches!(
            decode_completion(Bytes::from(r#"{"choices":[{"message":{"content":"cut"#)),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn passthrough_forwards_raw_chunks_verbatim() {
        let raw = r#"{"id":"up","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"system_fingerprint":"fp"}"#;
        let mut enc = ChunkEncoder::new("m".into(), false, true);
        let mut out = vec![];
        enc.encode(&decode_chunk(raw).unwrap(), &mut out);
        assert_eq!(out, format!("data: {raw}\n\n").into_bytes());
    }
}
