//! OpenAI Chat Completions requests: a client's body read into the canonical model, and
//! the canonical model written as a body for an OpenAI-compatible upstream. Tools, tool
//! calls, tool results and images cross both ways; fields with no equivalent are noted
//! as untranslatable, never dropped without a word.

use serde_json::{json, Map, Value};

use crate::chat::{
    ChatRequest, ImageSource, Message, Part, Role, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::error::GatewayError;
use crate::wire::{field_err, At, ClientRequest};

/// Reads what the gateway needs from a client body; the body itself is kept for
/// pass-through, so fields not read here still reach an OpenAI upstream.
pub fn parse_request(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError> {
    let ClientRequest { model, stream, .. } = ClientRequest::read(body)?;
    let Some(Value::Array(raw_messages)) = body.get("messages") else {
        return Err(field_err("messages", "an array of {role, content}"));
    };
    if raw_messages.is_empty() {
        return Err(field_err("messages", "a non-empty array"));
    }
    let mut system: Vec<String> = vec![];
    let mut messages: Vec<Message> = Vec::with_capacity(raw_messages.len());
    for (i, m) in raw_messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let field = || format!("messages[{i}]");
        let field: At = &field;
        match role {
            "system" | "developer" => system.push(text_of(m.get("content"), field)?),
            "user" => messages.push(Message {
                role: Role::User,
                parts: parts_of(m.get("content"), field)?,
            }),
            "assistant" => {
                let mut parts = parts_of(m.get("content"), field)?;
                parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
                for (j, call) in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    parts.push(Part::ToolCall(tool_call(call, &|| {
                        format!("{}.tool_calls[{j}]", field())
                    })?));
                }
                messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" => {
                let call_id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| field_err(&format!("{}.tool_call_id", field()), "a string"))?;
                let result = Part::ToolResult(ToolResult {
                    call_id: call_id.to_string(),
                    content: text_of(m.get("content"), field)?,
                    is_error: false,
                });
                // Consecutive tool messages answer one assistant turn: one user turn.
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last.parts.iter().all(|p| matches!(p, Part::ToolResult(_))) =>
                    {
                        last.parts.push(result)
                    }
                    _ => messages.push(Message {
                        role: Role::User,
                        parts: vec![result],
                    }),
                }
            }
            _ => {
                return Err(field_err(
                    &format!("{}.role", field()),
                    "one of system, developer, user, assistant, tool",
                ))
            }
        }
    }
    let number = |name: &str| body.get(name).and_then(Value::as_f64);
    let max_tokens = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .map(|n| n.min(u32::MAX as u64) as u32);
    let stop = match body.get("stop") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => vec![],
    };
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ClientRequest {
        model,
        stream,
        chat: ChatRequest {
            model: String::new(),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            max_tokens,
            temperature: number("temperature"),
            top_p: number("top_p"),
            stop,
            include_usage,
            tools: tools(body.get("tools"))?,
            tool_choice: tool_choice(body.get("tool_choice"))?,
            untranslatable: untranslatable(body),
            native: None,
        },
    })
}

/// Fields that change the answer and have no counterpart in other providers' formats.
fn untranslatable(body: &Map<String, Value>) -> Vec<String> {
    let mut found = vec![];
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        found.push("`n` above 1".into());
    }
    match body
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        None | Some("text") => {}
        Some(kind) => found.push(format!("`response_format` of type `{kind}`")),
    }
    if body.get("logprobs").and_then(Value::as_bool) == Some(true) {
        found.push("`logprobs`".into());
    }
    for field in ["audio", "prediction", "web_search_options"] {
        if body.get(field).is_some_and(|v| !v.is_null()) {
            found.push(format!("`{field}`"));
        }
    }
    let modalities = body.get("modalities").and_then(Value::as_array);
    if modalities.is_some_and(|m| m.iter().any(|x| x != "text")) {
        found.push("`modalities` beyond text".into());
    }
    found
}

/// A system or tool message's content: a string or text parts.
fn text_of(content: Option<&Value>, field: At) -> Result<String, GatewayError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect()),
        Some(_) => Err(field_err(
            &format!("{}.content", field()),
            "a string or an array of text parts",
        )),
    }
}

/// A user or assistant message's content as parts: text and images.
fn parts_of(content: Option<&Value>, field: At) -> Result<Vec<Part>, GatewayError> {
    match content {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| content_part(part, &|| format!("{}.content[{j}]", field())))
            .collect(),
        Some(_) => Err(field_err(
            &format!("{}.content", field()),
            "a string or an array of content parts",
        )),
    }
}

fn content_part(part: &Value, field: At) -> Result<Part, GatewayError> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Part::Text(
            part.get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )),
        Some("image_url") => {
            let url = part
                .get("image_url")
                .and_then(|i| i.get("url").or(Some(i)))
                .and_then(Value::as_str)
                .ok_or_else(|| field_err(&format!("{}.image_url.url", field()), "a string"))?;
            Ok(Part::Image(image_source(url)))
        }
        other => Err(GatewayError::bad_request(format!(
            "`{}` is a `{}` part, which Protogate cannot pass on in another format; \
             text and images can",
            field(),
            other.unwrap_or("untyped")
        ))),
    }
}

/// A `data:` URL becomes inline data; anything else stays a URL.
pub(crate) fn image_source(url: &str) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((media_type, data)) = rest.split_once(";base64,") {
            return ImageSource::Base64 {
                media_type: media_type.to_string(),
                data: data.to_string(),
            };
        }
    }
    ImageSource::Url(url.to_string())
}

fn tool_call(call: &Value, field: At) -> Result<ToolCall, GatewayError> {
    let function = call
        .get("function")
        .ok_or_else(|| field_err(&format!("{}.function", field()), "an object"))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(ToolCall {
        id: text(call.get("id")),
        name: text(function.get("name")),
        arguments: match function.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "{}".into(),
        },
    })
}

fn tools(value: Option<&Value>) -> Result<Vec<Tool>, GatewayError> {
    let Some(Value::Array(list)) = value else {
        return Ok(vec![]);
    };
    list.iter()
        .enumerate()
        .map(|(i, tool)| {
            let field = format!("tools[{i}]");
            match tool.get("type").and_then(Value::as_str) {
                Some("function") => {}
                other => {
                    return Err(GatewayError::bad_request(format!(
                        "`{field}` is a `{}` tool; only function tools cross between formats",
                        other.unwrap_or("untyped")
                    )))
                }
            }
            let function = tool.get("function").unwrap_or(tool);
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| field_err(&format!("{field}.function.name"), "a string"))?;
            Ok(Tool {
                name: name.to_string(),
                description: function
                    .get("description")
                    .and_then(Value::as_str)
                    .map(String::from),
                parameters: function
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

pub(crate) fn tool_choice(value: Option<&Value>) -> Result<Option<ToolChoice>, GatewayError> {
    Ok(match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => {
                return Err(field_err(
                    "tool_choice",
                    "auto, none, required or a named function",
                ))
            }
        }),
        Some(named) => {
            let name = named
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| named.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    field_err("tool_choice", "auto, none, required or a named function")
                })?;
            Some(ToolChoice::Named(name.to_string()))
        }
    })
}

/// The upstream body for a request that did not come in OpenAI's format.
pub fn request_body(chat: &ChatRequest, stream: bool) -> Value {
    let mut messages = Vec::with_capacity(chat.messages.len() + 1);
    if let Some(system) = &chat.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &chat.messages {
        write_message(m, &mut messages);
    }
    let mut body = json!({"model": chat.model, "messages": messages, "stream": stream});
    let obj = body.as_object_mut().expect("object");
    if let Some(n) = chat.max_tokens {
        obj.insert("max_tokens".into(), n.into());
    }
    if let Some(t) = chat.temperature {
        obj.insert("temperature".into(), t.into());
    }
    if let Some(p) = chat.top_p {
        obj.insert("top_p".into(), p.into());
    }
    if !chat.stop.is_empty() {
        obj.insert("stop".into(), chat.stop.clone().into());
    }
    // Always asked for: the request log and Usage count the tokens; each client's
    // encoder passes them on only if that client asked (`chat.include_usage`).
    if stream {
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !chat.tools.is_empty() {
        let tools: Vec<Value> = chat
            .tools
            .iter()
            .map(|t| {
                let mut function = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    function["description"] = d.clone().into();
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        obj.insert("tools".into(), tools.into());
    }
    if let Some(choice) = &chat.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
        };
        obj.insert("tool_choice".into(), choice);
    }
    body
}

/// One canonical turn as OpenAI messages: tool results become `tool` messages of their
/// own, before whatever else the turn says; tool calls ride on the assistant message.
fn write_message(m: &Message, out: &mut Vec<Value>) {
    let mut content = vec![];
    let mut calls = vec![];
    for part in &m.parts {
        match part {
            Part::Text(text) => content.push(json!({"type": "text", "text": text})),
            Part::Image(source) => {
                let url = match source {
                    ImageSource::Base64 { media_type, data } => {
                        format!("data:{media_type};base64,{data}")
                    }
                    ImageSource::Url(url) => url.clone(),
                };
                content.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            Part::ToolCall(call) => calls.push(json!({
                "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            })),
            Part::ToolResult(result) => out.push(json!({
                "role": "tool", "tool_call_id": result.call_id, "content": result.content,
            })),
        }
    }
    if content.is_empty() && calls.is_empty() {
        if !m.parts.is_empty() {
            return; // only tool results, written above
        }
        content.push(json!({"type": "text", "text": ""}));
    }
    // Plain text stays a string: what every OpenAI-compatible server takes.
    let all_text = content.iter().all(|c| c["type"] == "text");
    let content = if content.is_empty() {
        Value::Null
    } else if all_text {
        Value::String(content.iter().filter_map(|c| c["text"].as_str()).collect())
    } else {
        Value::Array(content)
    };
    let mut message = json!({"role": m.role, "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = calls.into();
    }
    out.push(message);
}
