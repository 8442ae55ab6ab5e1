//! The three client formats as [`Encoder`]s for the SSE driver.

use serde_json::json;

use super::sse::Encoder;
use crate::chat::Frame;
use crate::error::GatewayError;
use crate::wire::{anthropic, openai, responses, seed};

/// The seed contract: `data: {"error": ...}` then `data: [DONE]` on failure.
pub struct SeedEncoder;

impl Encoder for SeedEncoder {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        seed::encode(frame, out)
    }
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        write_data(out, &json!({"error": error.to_string()}).to_string());
        write_data(out, "[DONE]");
    }
}

/// OpenAI's SDKs raise an `APIError` on a `data:` chunk holding an `error` object.
impl Encoder for openai::ChunkEncoder {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        openai::ChunkEncoder::encode(self, frame, out)
    }
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        let body = json!({"error": {"message": error.to_string(), "type": error.error_type()}});
        write_data(out, &body.to_string());
        write_data(out, "[DONE]");
    }
}

/// Anthropic's SDKs raise on an `error` event; their streams have no `[DONE]`.
impl Encoder for anthropic::EventEncoder {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        anthropic::EventEncoder::encode(self, frame, out)
    }
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        anthropic::error_event(out, error.error_type(), &error.to_string());
    }
}

/// The Responses API's SDKs raise on an `error` event and end on `response.failed`.
impl Encoder for responses::ResponseEncoder {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        responses::ResponseEncoder::encode(self, frame, out)
    }
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        responses::ResponseEncoder::error(self, error.error_type(), &error.to_string(), out);
    }
}

fn write_data(out: &mut Vec<u8>, data: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}
