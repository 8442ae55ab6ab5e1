//! Property tests of the translators: any valid OpenAI chat request (text, images, tools,
//! tool calls and their results) survives OpenAI → canonical → Anthropic → canonical with
//! its meaning; the canonical request read back equals the one read first.

use proptest::prelude::*;
use protogate::chat::ChatRequest;
use protogate::wire::{anthropic, openai};
use serde_json::{json, Map, Value};

/// Text as people type it: words, punctuation, newlines, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é漢\\n-]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn tool() -> impl Strategy<Value = Value> {
    ("[a-z][a-z_]{0,11}", text()).prop_map(|(name, description)| {
        json!({"type": "function", "function": {
            "name": name, "description": description,
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
        }})
    })
}

/// A user turn: text, sometimes with an image (a data URL).
fn user_turn() -> impl Strategy<Value = Value> {
    (text(), any::<bool>()).prop_map(|(text, image)| {
        if image {
            json!({"role": "user", "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]})
        } else {
            json!({"role": "user", "content": text})
        }
    })
}

/// An exchange after a user turn: a plain answer, or a tool call answered by the tool.
fn exchange(tool_names: Vec<String>) -> impl Strategy<Value = Vec<Value>> {
    let call = if tool_names.is_empty() {
        Just(None).boxed()
    } else {
        (
            prop::sample::select(tool_names),
            text(),
            "[a-zA-Z0-9]{6,12}",
        )
            .prop_map(Some)
            .boxed()
    };
    (text(), call).prop_map(|(answer, call)| match call {
        None => vec![json!({"role": "assistant", "content": answer})],
        Some((name, argument, id)) => vec![
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{id}"), "type": "function",
                "function": {"name": name, "arguments": json!({"q": argument}).to_string()}
            }]}),
            json!({"role": "tool", "tool_call_id": format!("call_{id}"), "content": answer}),
        ],
    })
}

fn request() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::vec(tool(), 0..3),
        prop::option::of(text()),
        prop::option::of(1u32..4096),
        prop::option::of(0u8..=10),
        prop::option::of(prop::collection::vec("[A-Z]{1,5}", 1..3)),
    )
        .prop_flat_map(|(tools, system, max_tokens, temperature, stop)| {
            // Tool names must be distinct, as both APIs require.
            let mut names: Vec<String> = tools
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names.dedup();
            let tools: Vec<Value> = names
                .iter()
                .map(|n| {
                    tools
                        .iter()
                        .find(|t| t["function"]["name"] == n.as_str())
                        .unwrap()
                        .clone()
                })
                .collect();
            let turns = prop::collection::vec((user_turn(), exchange(names)), 0..3);
            (
                Just((tools, system, max_tokens, temperature, stop)),
                turns,
                user_turn(),
            )
        })
        .prop_map(
            |((tools, system, max_tokens, temperature, stop), turns, last)| {
                let mut messages = vec![];
                if let Some(system) = system {
                    messages.push(json!({"role": "system", "content": system}));
                }
                for (user, answer) in turns {
                    messages.push(user);
                    messages.extend(answer);
                }
                messages.push(last);
                let mut body = json!({"model": "gpt-test", "messages": messages});
                if !tools.is_empty() {
                    body["tools"] = Value::Array(tools);
                    body["tool_choice"] = json!("auto");
                }
                if let Some(n) = max_tokens {
                    body["max_tokens"] = json!(n);
                }
                if let Some(t) = temperature {
                    body["temperature"] = json!(f64::from(t) / 10.0);
                }
                if let Some(stop) = stop {
                    body["stop"] = json!(stop);
                }
                body.as_object().unwrap().clone()
            },
        )
}

/// What the two formats both carry: everything but the client's own body and the
/// fields only one side has.
fn meaning(chat: &ChatRequest) -> String {
    format!(
        "{:?}",
        (
            &chat.system,
            &chat.messages,
            chat.temperature,
            chat.top_p,
            &chat.stop,
            &chat.tools,
            &chat.tool_choice
        )
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn openai_requests_survive_a_trip_through_anthropic(body in request()) {
        let first = openai::parse_request(&body).expect("a valid OpenAI request parses").chat;
        let upstream = anthropic::request_body(&first, anthropic::Dialect::Api { stream: false })
            .expect("a parsed request translates");
        let second = anthropic::parse_request(upstream.as_object().unwrap())
            .expect("Protogate's Anthropic body parses as Anthropic")
            .chat;
        prop_assert_eq!(meaning(&first), meaning(&second), "via {}", upstream);
        // Anthropic requires max_tokens: the client's is kept, a default fills in.
        if first.max_tokens.is_some() {
            prop_assert_eq!(first.max_tokens, second.max_tokens);
        } else {
            prop_assert!(second.max_tokens.is_some());
        }
    }
}
