//! The seed's contract, `POST /api/ai-gateway/stream`: `{"message": ...}` in,
//! `data: {"text": ...}` per delta and `data: [DONE]` out. Every event is written whole,
//! because the seed's `Chat.tsx` splits each network read on newlines and drops an event
//! cut across two reads.

use serde::Deserialize;
use serde_json::json;

use crate::chat::{ChatEvent, ChatRequest, Frame, Message, Role};
use crate::error::GatewayError;

#[derive(Debug, Deserialize)]
pub struct SeedRequest {
    pub message: String,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct HistoryMessage {
    pub role: String,
    pub content: String,
}

impl SeedRequest {
    /// The chat to answer, history first and the new message last.
    pub fn into_chat(self) -> Result<ChatRequest, GatewayError> {
        if self.message.trim().is_empty() {
            return Err(GatewayError::bad_request("`message` must not be empty"));
        }
        let mut system = self.system.filter(|s| !s.is_empty());
        let mut messages = Vec::with_capacity(self.history.len() + 1);
        for (i, turn) in self.history.into_iter().enumerate() {
            let role = match turn.role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => {
                    system = Some(match system {
                        Some(s) => format!("{s}\n\n{}", turn.content),
                        None => turn.content,
                    });
                    continue;
                }
                other => {
                    return Err(GatewayError::bad_request(format!(
                        "`history[{i}].role` is `{other}`; use user or assistant"
                    )))
                }
            };
            messages.push(Message::text(role, turn.content));
        }
        messages.push(Message::text(Role::User, self.message));
        Ok(ChatRequest {
            system,
            messages,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            ..ChatRequest::default()
        })
    }
}

/// Appends the seed-format SSE bytes for `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    for event in &frame.events {
        match event {
            ChatEvent::Text(text) => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json!({ "text": text }).to_string().as_bytes());
                out.extend_from_slice(b"\n\n");
            }
            ChatEvent::End => out.extend_from_slice(b"data: [DONE]\n\n"),
            // The seed contract has text only; its requests carry no tools.
            ChatEvent::Finish(_)
            | ChatEvent::Usage(_)
            | ChatEvent::ToolCallStart { .. }
            | ChatEvent::ToolCallDelta { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<ChatRequest, GatewayError> {
        serde_json::from_value::<SeedRequest>(v)
            .unwrap()
            .into_chat()
    }

    #[test]
    fn history_comes_before_the_message() {
        let chat = parse(json!({
            "message": "and now?", "system": "be kind",
            "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        }))
        .unwrap();
        assert_eq!(chat.system.as_deref(), Some("be kind"));
        assert_eq!(chat.messages.len(), 3);
        assert_eq!(chat.prompt(), "and now?");
    }

    #[test]
    fn empty_message_and_unknown_role_are_refused() {
        assert!(parse(json!({"message": "  "})).is_err());
        let e = parse(json!({"message": "x", "history": [{"role": "bot", "content": "y"}]}))
            .unwrap_err();
        assert!(e.to_string().contains("history[0].role"), "{e}");
    }

    #[test]
    fn each_text_event_is_one_whole_line_pair() {
        let mut out = vec![];
        encode(
            &Frame::event(ChatEvent::Text("a \"quote\"\nnewline".into())),
            &mut out,
        );
        encode(&Frame::event(ChatEvent::End), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"text\":\"a \\\"quote\\\"\\nnewline\"}\n\ndata: [DONE]\n\n"
        );
    }
}
