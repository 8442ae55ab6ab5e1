//! Nothing is lost between formats: tools, tool calls, tool results and images cross from
//! OpenAI's format to Anthropic's and back, streaming and not, against mocks that speak
//! each API's documented tool-use wire format; what cannot cross is a 400 that names it.

mod common;

use common::mock_anthropic::MockAnthropic;
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
/// A 1×1 PNG, as an OpenAI data URL carries it.
const PIXEL: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

async fn world() -> (TestGateway, MockOpenAi, MockAnthropic) {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start(ANTHROPIC_KEY).await;
    let gw = spawn_gateway_env(
        settings(json!({"providers": [
            {"id": "oai", "kind": "openai", "base_url": openai.base_url, "default_model": "tool-call"},
            {"id": "claude", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-tool"},
        ]})),
        &[("PROTOGATE_SECRET_CLAUDE", ANTHROPIC_KEY)],
    )
    .await;
    (gw, openai, anthropic)
}

/// OpenAI's function-calling example: the weather tool.
fn openai_tools() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    }}])
}

async fn post(gw: &TestGateway, path: &str, body: Value) -> (u16, String) {
    let res = post_json(&gw.url(path), None, body).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn openai_tool_calling_reaches_anthropic_and_comes_back_streaming_and_not() {
    let (gw, _, anthropic) = world().await;
    let request = json!({"model": "claude/claude-tool", "stream": true, "tools": openai_tools(),
    "tool_choice": "auto",
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What's the weather like in San Francisco?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PIXEL}")}},
    ]}]});
    let (status, body) = post(&gw, "/v1/chat/completions", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let chunks: Vec<Value> = sse_data(&body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]
                .as_object()
                .map(|_| &c["choices"][0]["delta"]["tool_calls"][0])
        })
        .collect();
    assert_eq!(calls[0]["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    let arguments: Value =
        serde_json::from_str(&arguments).expect("the streamed arguments are JSON");
    assert_eq!(arguments, json!({"location": "San Francisco, CA"}));
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"),
        "the finish reason says a tool is to be called"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");

    let sent = anthropic.bodies().pop().unwrap();
    assert_eq!(
        sent["tools"],
        json!([{"name": "get_weather", "description": "Get the current weather in a given location",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]),
        "the tool reached Anthropic in its own shape"
    );
    assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}),
        "the image crossed as a base64 block"
    );

    // Not streamed: the tool call is in the message.
    let mut whole = request.clone();
    whole["stream"] = false.into();
    let (status, body) = post(&gw, "/v1/chat/completions", whole).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"location": "San Francisco, CA"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    // The second turn: the call and its result go back as tool_use and tool_result.
    let (status, _) = post(&gw, "/v1/chat/completions", json!({"model": "claude/claude-tool", "tools": openai_tools(),
        "messages": [
            {"role": "user", "content": "What's the weather like in San Francisco?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\": \"San Francisco, CA\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees, sunny"},
        ]})).await;
    assert_eq!(status, 200);
    let sent = anthropic.bodies().pop().unwrap();
    assert_eq!(
        sent["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
            "input": {"location": "San Francisco, CA"}}])
    );
    assert_eq!(sent["messages"][2]["role"], "user");
    assert_eq!(
        sent["messages"][2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
            "content": "15 degrees, sunny", "is_error": false}])
    );
}

/// Anthropic's tool-use example, as its SDK sends it.
fn anthropic_tools() -> Value {
    json!([{"name": "get_weather", "description": "Get the current weather in a given location",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}])
}

#[tokio::test]
async fn anthropic_tool_use_reaches_openai_and_comes_back_streaming_and_not() {
    let (gw, openai, _) = world().await;
    let request = json!({"model": "oai/tool-call", "max_tokens": 1024, "stream": true,
    "tools": anthropic_tools(), "tool_choice": {"type": "tool", "name": "get_weather"},
    "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
        {"type": "text", "text": "What is the weather in Paris?"},
    ]}]});
    let (status, body) = post(&gw, "/v1/messages", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let events: Vec<Value> = sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let start = events
        .iter()
        .find(|e| e["type"] == "content_block_start" && e["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start["content_block"]["id"], "call_abc123");
    assert_eq!(start["content_block"]["name"], "get_weather");
    let index = start["index"].clone();
    let partial: String = events
        .iter()
        .filter(|e| e["type"] == "content_block_delta" && e["index"] == index)
        .filter_map(|e| e["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"location": "Paris, France"})
    );
    assert!(events
        .iter()
        .any(|e| e["type"] == "content_block_stop" && e["index"] == index));
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    let sent = openai.bodies().pop().unwrap();
    assert_eq!(
        sent["tools"],
        openai_tools(),
        "the tool reached OpenAI in its own shape"
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(
        sent["messages"][0]["content"][0],
        json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PIXEL}")}}),
        "the image crossed as a data URL"
    );

    let mut whole = request.clone();
    whole["stream"] = false.into();
    let (status, body) = post(&gw, "/v1/messages", whole).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let block = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(
        (block["id"].as_str(), block["name"].as_str()),
        (Some("call_abc123"), Some("get_weather"))
    );
    assert_eq!(block["input"], json!({"location": "Paris, France"}));
    assert_eq!(v["stop_reason"], "tool_use");

    let (status, _) = post(&gw, "/v1/messages", json!({"model": "oai/gpt-test", "max_tokens": 100, "tools": anthropic_tools(),
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris, France"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_abc123", "content": "18 degrees"}]},
        ]})).await;
    assert_eq!(status, 200);
    let sent = openai.bodies().pop().unwrap();
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "call_abc123");
    assert_eq!(
        serde_json::from_str::<Value>(
            sent["messages"][1]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        )
        .unwrap(),
        json!({"location": "Paris, France"})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_abc123", "content": "18 degrees"})
    );
}

#[tokio::test]
async fn what_cannot_cross_is_a_400_that_names_it() {
    let (gw, openai, anthropic) = world().await;
    let schema = json!({"model": "claude/claude-tool", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}});
    let (status, body) = post(&gw, "/v1/chat/completions", schema.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("response_format") && body.contains("claude"),
        "{body}"
    );
    assert!(
        anthropic.bodies().is_empty(),
        "nothing was sent with a field dropped"
    );

    let mut same = schema.clone();
    same["model"] = "oai/gpt-test".into();
    let (status, _) = post(&gw, "/v1/chat/completions", same).await;
    assert_eq!(
        status, 200,
        "the same body passes through to an OpenAI-kind provider"
    );
    assert_eq!(
        openai.bodies().pop().unwrap()["response_format"]["type"],
        "json_schema"
    );

    let (status, body) = post(&gw, "/v1/chat/completions", json!({"model": "claude/claude-tool",
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]})).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("messages[0].content[0]") && body.contains("input_audio"),
        "{body}"
    );

    let (status, body) = post(&gw, "/v1/messages", json!({"model": "oai/gpt-test", "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]})).await;
    assert_eq!(status, 400);
    assert!(body.contains("document"), "{body}");

    let (status, body) = post(
        &gw,
        "/v1/messages",
        json!({"model": "oai/gpt-test", "max_tokens": 10,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("web_search_20250305"), "{body}");
}
