//! The gateway's own chat model: what every client format is parsed into and every
//! provider is driven from, so N formats and M providers need N + M translators.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn: what was said, in order. Tool results are parts of a user turn, as in
/// Anthropic's format; OpenAI's `tool` messages are read into and written from them.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Image(ImageSource),
    /// The assistant asked to call a tool.
    ToolCall(ToolCall),
    /// A tool's answer to an earlier call.
    ToolResult(ToolResult),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImageSource {
    /// Inline image data: OpenAI's `data:` URLs and Anthropic's base64 blocks.
    Base64 {
        media_type: String,
        data: String,
    },
    Url(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, as OpenAI carries them.
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    pub content: String,
    pub is_error: bool,
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    Named(String),
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            parts: vec![Part::Text(text.into())],
        }
    }

    /// The text parts, joined: what the request log shows and the demo echoes.
    pub fn text_content(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One chat turn to answer. `native` keeps the client's own body when it is already in
/// the provider's format, so fields Protogate does not model (tools, response_format, ...)
/// pass through untouched.
#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    /// The model as the upstream names it (provider prefix removed).
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    /// The client asked for a usage report at the end of the stream.
    pub include_usage: bool,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// Fields of the client's body that have no equivalent in the canonical model (e.g.
    /// `response_format`): fine when the body passes through to a provider of the same
    /// format, a 400 naming them when it would have to be translated.
    pub untranslatable: Vec<String>,
    pub native: Option<NativeBody>,
}

/// A client body in a provider's wire format, to pass through to a provider of that
/// format.
#[derive(Clone, Debug)]
pub enum NativeBody {
    OpenAi(Native),
    Anthropic(Native),
}

/// A client's body: its fields, and the bytes as they came.
#[derive(Clone, Debug)]
pub struct Native {
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub raw: bytes::Bytes,
}

impl Native {
    /// The body to send upstream with `model` and `stream` set: the bytes as they came
    /// when they already say so (rebuilding costs time in proportion to the
    /// conversation), else the fields written anew.
    pub fn into_body(mut self, model: &str, stream: bool) -> bytes::Bytes {
        if self.already_says(model, stream) {
            return self.raw;
        }
        self.fields.insert("model".into(), model.into());
        self.fields.insert("stream".into(), stream.into());
        serde_json::to_vec(&self.fields)
            .expect("a JSON map serializes")
            .into()
    }

    fn already_says(&self, model: &str, stream: bool) -> bool {
        use memchr::memmem::Finder;
        use std::sync::LazyLock;
        // Built once: building a finder costs more than searching a short body with it.
        static ESCAPE: LazyLock<Finder> = LazyLock::new(|| Finder::new(b"\\u"));
        static MODEL: LazyLock<Finder> = LazyLock::new(|| Finder::new(b"\"model\""));
        static STREAM: LazyLock<Finder> = LazyLock::new(|| Finder::new(b"\"stream\""));
        let stream_matches = match self.fields.get("stream") {
            Some(serde_json::Value::Bool(given)) => *given == stream,
            None => !stream,
            Some(_) => false,
        };
        let raw = &self.raw[..];
        // A key given twice might be read differently upstream (the first of two, where
        // serde keeps the last), and only a `\u` escape can spell a key's letters
        // otherwise: so one plain `"model"`, at most one plain `"stream"`, no `\u`.
        stream_matches
            && self.fields.get("model").and_then(|m| m.as_str()) == Some(model)
            && ESCAPE.find(raw).is_none()
            && MODEL.find_iter(raw).count() == 1
            && STREAM.find_iter(raw).count() <= 1
    }
}

impl ChatRequest {
    /// The last user message's text, which is what the request log shows as "the prompt".
    pub fn prompt(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User && m.parts.iter().any(|p| matches!(p, Part::Text(_))))
            .map(Message::text_content)
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Other,
}

impl FinishReason {
    /// The name OpenAI's format uses.
    pub fn as_openai(self) -> &'static str {
        match self {
            FinishReason::Stop | FinishReason::Other => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
        }
    }

    pub fn from_openai(name: &str) -> Self {
        match name {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            _ => FinishReason::Other,
        }
    }
}

/// What a provider stream says, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatEvent {
    Text(String),
    /// A tool call begins; `index` counts tool calls in this answer, from 0.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More of a tool call's arguments (JSON text, in pieces).
    ToolCallDelta {
        index: usize,
        arguments: String,
    },
    Finish(FinishReason),
    Usage(Usage),
    /// The upstream's own end marker (`[DONE]`, `message_stop`): the answer is complete.
    End,
}

/// One upstream event, parsed, with the event itself kept verbatim in `raw` so that a
/// client speaking the upstream's format gets it untouched.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    pub raw: Option<RawEvent>,
    pub events: Vec<ChatEvent>,
}

/// An upstream SSE event as received: its `event:` name and its `data:`.
#[derive(Clone, Debug)]
pub struct RawEvent {
    pub name: Option<String>,
    pub data: bytes::Bytes,
}

impl Frame {
    pub fn event(event: ChatEvent) -> Self {
        Frame {
            raw: None,
            events: vec![event],
        }
    }
}

/// A whole answer, for clients that did not ask to stream.
#[derive(Clone, Debug, Default)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish: Option<FinishReason>,
    pub usage: Option<Usage>,
    /// The upstream's body verbatim, for a client that speaks the upstream's format.
    pub raw: Option<bytes::Bytes>,
}

#[cfg(test)]
mod tests {
    use super::Native;

    fn native(raw: &str) -> Native {
        Native {
            fields: serde_json::from_str(raw).unwrap(),
            raw: bytes::Bytes::copy_from_slice(raw.as_bytes()),
        }
    }

    #[test]
    fn a_body_that_already_says_model_and_stream_goes_as_it_came() {
        let raw = r#"{ "messages": [{"role": "user", "content": "hi"}], "model": "m" }"#;
        assert_eq!(native(raw).into_body("m", false), raw.as_bytes());
        let raw = r#"{"model":"m","stream":true,"messages":[]}"#;
        assert_eq!(native(raw).into_body("m", true), raw.as_bytes());
    }

    #[test]
    fn a_body_is_rebuilt_when_it_must_change_or_could_be_read_two_ways() {
        let rebuilt = |raw: &str, model: &str, stream: bool| {
            let body = native(raw).into_body(model, stream);
            assert_ne!(body, raw.as_bytes(), "{raw}");
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        };
        // The client's `provider/model`, or no model at all.
        let v = rebuilt(r#"{"model":"p/m","messages":[]}"#, "m", false);
        assert_eq!(
            (v["model"].as_str(), v["stream"].as_bool()),
            (Some("m"), Some(false))
        );
        rebuilt(r#"{"messages":[]}"#, "m", false);
        // A stream asked for in another way than the body says.
        let v = rebuilt(r#"{"model":"m","messages":[]}"#, "m", true);
        assert_eq!(v["stream"], true);
        rebuilt(r#"{"model":"m","stream":"yes","messages":[]}"#, "m", false);
        // Keys an upstream might read differently from serde (which keeps the last).
        let v = rebuilt(r#"{"model":"evil","model":"m","messages":[]}"#, "m", false);
        assert_eq!(v["model"], "m");
        rebuilt(
            r#"{"mod\u0065l":"evil","model":"m","messages":[]}"#,
            "m",
            false,
        );
        rebuilt(r#"{"model":"m","stream":true,"stream":false}"#, "m", false);
    }
}
