//! Anthropic Messages requests: a client's body read into the canonical model, and the
//! canonical model written for Anthropic's API or Bedrock's payload (the ASAP gateway).
//! Tool use, tool results and images cross both ways; what cannot cross is named.

use serde_json::{json, Map, Value};

use super::{BEDROCK_VERSION, DEFAULT_MAX_TOKENS};
use crate::chat::{
    ChatRequest, ImageSource, Message, Part, Role, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::error::GatewayError;
use crate::wire::{field_err, At, ClientRequest};

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
        let field = || format!("messages[{i}]");
        let field: At = &field;
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => return Err(field_err(&format!("{}.role", field()), "user or assistant")),
        };
        let parts = match m.get("content") {
            Some(Value::String(s)) => vec![Part::Text(s.clone())],
            Some(Value::Array(blocks)) => blocks
                .iter()
                .enumerate()
                .filter_map(|(j, b)| block(b, &|| format!("{}.content[{j}]", field())).transpose())
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(field_err(
                    &format!("{}.content", field()),
                    "a string or content blocks",
                ))
            }
        };
        messages.push(Message { role, parts });
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
            tools: tools(body.get("tools"))?,
            tool_choice: tool_choice(body.get("tool_choice")),
            untranslatable: untranslatable(body),
            ..ChatRequest::default()
        },
    })
}

/// Fields that change the answer and have no counterpart in OpenAI's format.
fn untranslatable(body: &Map<String, Value>) -> Vec<String> {
    let mut found = vec![];
    let thinking = body.get("thinking").and_then(|t| t.get("type"));
    if thinking
        .and_then(Value::as_str)
        .is_some_and(|t| t != "disabled")
    {
        found.push("`thinking`".into());
    }
    for field in ["mcp_servers", "container"] {
        if body.get(field).is_some_and(|v| !v.is_null()) {
            found.push(format!("`{field}`"));
        }
    }
    found
}

/// One content block as a part; `None` for blocks that carry nothing to translate
/// (a model's `thinking` handed back, which only Anthropic reads).
fn block(b: &Value, field: At) -> Result<Option<Part>, GatewayError> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(Some(match b.get("type").and_then(Value::as_str) {
        Some("text") => Part::Text(text(&b["text"])),
        Some("image") => {
            let source = &b["source"];
            match source["type"].as_str() {
                Some("base64") => Part::Image(ImageSource::Base64 {
                    media_type: text(&source["media_type"]),
                    data: text(&source["data"]),
                }),
                Some("url") => Part::Image(ImageSource::Url(text(&source["url"]))),
                _ => {
                    return Err(field_err(
                        &format!("{}.source", field()),
                        "a base64 or url image source",
                    ))
                }
            }
        }
        Some("tool_use") => Part::ToolCall(ToolCall {
            id: text(&b["id"]),
            name: text(&b["name"]),
            arguments: b.get("input").unwrap_or(&json!({})).to_string(),
        }),
        Some("tool_result") => Part::ToolResult(ToolResult {
            call_id: text(&b["tool_use_id"]),
            content: b.get("content").and_then(blocks_text).unwrap_or_default(),
            is_error: b["is_error"].as_bool().unwrap_or(false),
        }),
        Some("thinking" | "redacted_thinking") => return Ok(None),
        other => {
            return Err(GatewayError::bad_request(format!(
                "`{}` is a `{}` block, which Protogate cannot pass on in another format; \
                 text, images, tool use and tool results can",
                field(),
                other.unwrap_or("untyped")
            )))
        }
    }))
}

/// Text of a string or of the text blocks (also inside `tool_result` blocks).
pub(super) fn blocks_text(content: &Value) -> Option<String> {
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

fn tools(value: Option<&Value>) -> Result<Vec<Tool>, GatewayError> {
    let Some(Value::Array(list)) = value else {
        return Ok(vec![]);
    };
    list.iter()
        .enumerate()
        .map(|(i, tool)| {
            // Anthropic's own tools (web search, bash, computer use) have a versioned type.
            if let Some(kind) = tool
                .get("type")
                .and_then(Value::as_str)
                .filter(|k| *k != "custom")
            {
                return Err(GatewayError::bad_request(format!(
                    "`tools[{i}]` is Anthropic's `{kind}` tool, which other providers do not have"
                )));
            }
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| field_err(&format!("tools[{i}].name"), "a string"))?;
            Ok(Tool {
                name: name.to_string(),
                description: tool
                    .get("description")
                    .and_then(Value::as_str)
                    .map(String::from),
                parameters: tool
                    .get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn tool_choice(value: Option<&Value>) -> Option<ToolChoice> {
    let choice = value?;
    Some(match choice.get("type").and_then(Value::as_str)? {
        "auto" => ToolChoice::Auto,
        "none" => ToolChoice::None,
        "any" => ToolChoice::Required,
        "tool" => ToolChoice::Named(choice.get("name")?.as_str()?.to_string()),
        _ => return None,
    })
}

/// Who receives a body built from the canonical request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Anthropic's own API: `model` and `stream` in the body.
    Api { stream: bool },
    /// Bedrock's `InvokeModel[WithResponseStream]`: the model and streaming are in the URL.
    Bedrock,
}

/// The upstream body for a request that did not come in Anthropic's format. Tool call
/// arguments that are not JSON are refused: Anthropic takes `input` as an object.
pub fn request_body(chat: &ChatRequest, dialect: Dialect) -> Result<Value, String> {
    let mut messages = Vec::with_capacity(chat.messages.len());
    for (i, m) in chat.messages.iter().enumerate() {
        let mut blocks = Vec::with_capacity(m.parts.len());
        for part in &m.parts {
            blocks.push(match part {
                Part::Text(text) if text.is_empty() && m.parts.len() > 1 => continue,
                Part::Text(text) => json!({"type": "text", "text": text}),
                Part::Image(ImageSource::Base64 { media_type, data }) => json!({"type": "image",
                    "source": {"type": "base64", "media_type": media_type, "data": data}}),
                Part::Image(ImageSource::Url(url)) => {
                    json!({"type": "image", "source": {"type": "url", "url": url}})
                }
                Part::ToolCall(call) => {
                    let input: Value = serde_json::from_str(&call.arguments).map_err(|_| {
                        format!(
                            "the arguments of tool call `{}` in messages[{i}] are not JSON",
                            call.id
                        )
                    })?;
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
                }
                Part::ToolResult(result) => json!({"type": "tool_result",
                    "tool_use_id": result.call_id, "content": result.content,
                    "is_error": result.is_error}),
            });
        }
        if blocks.is_empty() {
            blocks.push(json!({"type": "text", "text": ""}));
        }
        messages.push(json!({"role": m.role, "content": blocks}));
    }
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
    if !chat.tools.is_empty() {
        let tools: Vec<Value> = chat
            .tools
            .iter()
            .map(|t| {
                let mut tool = json!({"name": t.name, "input_schema": t.parameters});
                if let Some(d) = &t.description {
                    tool["description"] = d.clone().into();
                }
                tool
            })
            .collect();
        obj.insert("tools".into(), tools.into());
    }
    if let Some(choice) = &chat.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Named(name) => json!({"type": "tool", "name": name}),
        };
        obj.insert("tool_choice".into(), choice);
    }
    Ok(body)
}
