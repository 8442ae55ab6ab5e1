//! OpenAI's Responses API (`POST /v1/responses`), what the Vercel AI SDK's `openai(model)`
//! and OpenAI's current docs call: requests read into the canonical model, answers written
//! as a `response` object or as its typed stream events. Every provider kind answers it
//! through the canonical model; Protogate keeps no responses, so a conversation is sent
//! whole in `input`. Format: <https://platform.openai.com/docs/api-reference/responses>.

mod stream;

use serde_json::{json, Map, Value};

pub use stream::{response_json, ResponseEncoder};

use super::openai::{image_source, tool_choice};
use super::{field_err, At, ClientRequest};
use crate::chat::{ChatRequest, Message, Part, Role, Tool, ToolCall, ToolResult};
use crate::error::GatewayError;

pub fn parse_request(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError> {
    let ClientRequest { model, stream, .. } = ClientRequest::read(body)?;
    if body
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err(GatewayError::bad_request(
            "`previous_response_id`: Protogate keeps no responses; send the whole conversation \
             in `input` (the AI SDK does with `store: false`)",
        ));
    }
    let mut system: Vec<String> = body
        .get("instructions")
        .and_then(Value::as_str)
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    let mut messages: Vec<Message> = vec![];
    match body.get("input") {
        Some(Value::String(text)) => messages.push(Message::text(Role::User, text.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                read_item(item, &|| format!("input[{i}]"), &mut system, &mut messages)?;
            }
        }
        _ => return Err(field_err("input", "a string or an array of input items")),
    }
    if messages.is_empty() {
        return Err(field_err("input", "at least one message"));
    }
    let mut untranslatable = vec![];
    let format = body
        .get("text")
        .and_then(|t| t.get("format"))
        .and_then(|f| f.get("type"));
    if let Some(kind) = format.and_then(Value::as_str).filter(|k| *k != "text") {
        untranslatable.push(format!("`text.format` of type `{kind}`"));
    }
    if body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .is_some_and(|e| !e.is_null())
    {
        untranslatable.push("`reasoning.effort`".into());
    }
    Ok(ClientRequest {
        model,
        stream,
        chat: ChatRequest {
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            max_tokens: body
                .get("max_output_tokens")
                .and_then(Value::as_u64)
                .map(|n| n.min(u32::MAX.into()) as u32),
            temperature: body.get("temperature").and_then(Value::as_f64),
            top_p: body.get("top_p").and_then(Value::as_f64),
            include_usage: true,
            tools: tools(body.get("tools"))?,
            tool_choice: tool_choice(body.get("tool_choice"))?,
            untranslatable,
            ..ChatRequest::default()
        },
    })
}

/// One input item: a message, a function call the model made, or its output.
fn read_item(
    item: &Value,
    field: At,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), GatewayError> {
    let kind = item.get("type").and_then(Value::as_str);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match kind {
        None | Some("message") => {
            let parts = content_parts(item.get("content"), field)?;
            match item.get("role").and_then(Value::as_str) {
                Some("system" | "developer") => system.push(
                    parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(t.as_str()),
                            _ => None,
                        })
                        .collect(),
                ),
                Some("user") => push(messages, Role::User, parts),
                Some("assistant") => push(messages, Role::Assistant, parts),
                _ => {
                    return Err(field_err(
                        &format!("{}.role", field()),
                        "user, assistant, system or developer",
                    ))
                }
            }
        }
        Some("function_call") => push(
            messages,
            Role::Assistant,
            vec![Part::ToolCall(ToolCall {
                id: text(&item["call_id"]),
                name: text(&item["name"]),
                arguments: text(&item["arguments"]),
            })],
        ),
        Some("function_call_output") => push(
            messages,
            Role::User,
            vec![Part::ToolResult(ToolResult {
                call_id: text(&item["call_id"]),
                content: match &item["output"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                is_error: false,
            })],
        ),
        // A model's reasoning handed back: only OpenAI's own models read it.
        Some("reasoning") => {}
        Some(other) => {
            return Err(GatewayError::bad_request(format!(
                "`{}` is a `{other}` item, which Protogate does not serve; messages, \
                 function calls and their outputs are",
                field()
            )))
        }
    }
    Ok(())
}

/// Adds parts to the last turn when it has the same role, as consecutive items belong
/// to one turn (a model's several function calls, their several outputs).
fn push(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => messages.push(Message { role, parts }),
    }
}

fn content_parts(content: Option<&Value>, field: At) -> Result<Vec<Part>, GatewayError> {
    match content {
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| {
                let at = || format!("{}.content[{j}]", field());
                match part.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => Ok(Part::Text(
                        part["text"].as_str().unwrap_or_default().to_string(),
                    )),
                    Some("input_image") => {
                        let url = part["image_url"]
                            .as_str()
                            .ok_or_else(|| field_err(&format!("{}.image_url", at()), "a URL"))?;
                        Ok(Part::Image(image_source(url)))
                    }
                    other => Err(GatewayError::bad_request(format!(
                        "`{}` is a `{}` part, which Protogate cannot pass on; text and \
                         images can",
                        at(),
                        other.unwrap_or("untyped")
                    ))),
                }
            })
            .collect(),
        _ => Err(field_err(
            &format!("{}.content", field()),
            "a string or content parts",
        )),
    }
}

fn tools(value: Option<&Value>) -> Result<Vec<Tool>, GatewayError> {
    let Some(Value::Array(list)) = value else {
        return Ok(vec![]);
    };
    list.iter()
        .enumerate()
        .map(|(i, tool)| match tool.get("type").and_then(Value::as_str) {
            Some("function") => Ok(Tool {
                name: tool["name"]
                    .as_str()
                    .ok_or_else(|| field_err(&format!("tools[{i}].name"), "a string"))?
                    .to_string(),
                description: tool["description"].as_str().map(String::from),
                parameters: tool
                    .get("parameters")
                    .filter(|p| !p.is_null())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            }),
            other => Err(GatewayError::bad_request(format!(
                "`tools[{i}]` is OpenAI's built-in `{}` tool, which runs on OpenAI's servers: \
                 Protogate serves function tools",
                other.unwrap_or("untyped")
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatEvent, FinishReason, Frame};

    fn parse(v: Value) -> Result<ClientRequest, GatewayError> {
        parse_request(v.as_object().unwrap())
    }

    #[test]
    fn input_items_become_turns_with_tool_calls_and_outputs() {
        let req = parse(json!({"model": "m", "instructions": "be brief", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ], "max_output_tokens": 50}))
        .unwrap();
        let chat = req.chat;
        assert_eq!(chat.system.as_deref(), Some("be brief"));
        assert_eq!(chat.max_tokens, Some(50));
        assert_eq!(chat.messages.len(), 3);
        assert!(matches!(chat.messages[0].parts[1], Part::Image(_)));
        assert!(matches!(&chat.messages[1].parts[0], Part::ToolCall(c) if c.name == "get_weather"));
        assert!(matches!(&chat.messages[2].parts[0], Part::ToolResult(r) if r.content == "sunny"));
    }

    #[test]
    fn stored_state_and_built_in_tools_are_refused_with_the_reason() {
        let e = parse(json!({"input": "hi", "previous_response_id": "resp_1"})).unwrap_err();
        assert!(e.to_string().contains("keeps no responses"), "{e}");
        let e = parse(json!({"input": "hi", "tools": [{"type": "web_search"}]})).unwrap_err();
        assert!(e.to_string().contains("web_search"), "{e}");
    }

    #[test]
    fn a_stream_of_text_and_a_tool_call_is_typed_and_numbered() {
        let mut encoder = ResponseEncoder::new("demo/x".into());
        let mut out = vec![];
        for event in [
            ChatEvent::Text("Hi".into()),
            ChatEvent::ToolCallStart {
                index: 0,
                id: "c1".into(),
                name: "f".into(),
            },
            ChatEvent::ToolCallDelta {
                index: 0,
                arguments: "{}".into(),
            },
            ChatEvent::Finish(FinishReason::ToolCalls),
            ChatEvent::End,
        ] {
            encoder.encode(&Frame::event(event), &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let kinds: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let numbers: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| {
                serde_json::from_str::<Value>(d).unwrap()["sequence_number"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (0..13).collect::<Vec<_>>());
    }
}
