//! A client's request body, as each route reads it: the seed contract, OpenAI's Chat
//! Completions, Anthropic's Messages, OpenAI's Responses, ChatKit and the wiring spec's
//! `/api/chat`. A body that parses
//! is then written for each upstream format, as the gateway does when it translates.
//! Bad input is an error with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protogate::chat::ChatRequest;
use protogate::chatkit::types::Request as ChatKitRequest;
use protogate::wire::{anthropic, openai, responses, seed};
use serde_json::{Map, Value};

fn translate(chat: &ChatRequest) {
    let _ = openai::request_body(chat, true);
    let _ = openai::request_body(chat, false);
    let _ = anthropic::request_body(chat, anthropic::Dialect::Api { stream: true });
    let _ = anthropic::request_body(chat, anthropic::Dialect::Bedrock);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<seed::SeedRequest>(data) {
        if let Ok(chat) = request.into_chat() {
            translate(&chat);
        }
    }
    let _ = serde_json::from_slice::<ChatKitRequest>(data);
    let _ = serde_json::from_slice::<protogate::chat_api::ChatInput>(data);
    let Ok(body) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    for parse in [
        openai::parse_request,
        anthropic::parse_request,
        responses::parse_request,
    ] {
        if let Ok(request) = parse(&body) {
            translate(&request.chat);
        }
    }
});
