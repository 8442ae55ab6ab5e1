//! The official SDKs, run by Node.js against the real gateway and mock upstreams: OpenAI's
//! and Anthropic's tool-calling examples through the other provider's format, both
//! directions, streaming and not; OpenAI's `responses.create`, streaming and not; and the
//! Vercel AI SDK's default `openai(model)`, which calls the Responses API.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::mock_anthropic::MockAnthropic;
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

/// Runs one case of `tests/sdk/clients.mjs` and returns what the SDK returned.
async fn sdk(case: &str, gw: &TestGateway, model: &str, then: Option<&str>) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    assert!(
        dir.join("node_modules/openai").exists(),
        "the SDKs are missing: run scripts/test.sh, which installs them"
    );
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("clients.mjs"))
        .args([case, &gw.url(""), model])
        .args(then)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let out = command.output().await.expect("node runs");
    let line = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("{case}: one JSON line expected ({e}): {line}"));
    assert_eq!(result["ok"], true, "{case} {model}: {result}");
    result
}

async fn world() -> (TestGateway, MockOpenAi, MockAnthropic) {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start(ANTHROPIC_KEY).await;
    let gw = spawn_gateway_env(
        settings(json!({"providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "oai", "kind": "openai", "base_url": openai.base_url, "default_model": "gpt-test"},
            {"id": "claude", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-test"},
        ]})),
        &[("PROTOGATE_SECRET_CLAUDE", ANTHROPIC_KEY)],
    )
    .await;
    (gw, openai, anthropic)
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tool_calling_through_an_anthropic_provider() {
    let (gw, _, anthropic) = world().await;
    let r = sdk(
        "openai-tools",
        &gw,
        "claude/claude-tool",
        Some("claude/claude-test"),
    )
    .await;
    assert_eq!(r["name"], "get_weather");
    assert_eq!(r["arguments"], json!({"location": "San Francisco, CA"}));
    assert_eq!(r["finish"], "tool_calls");
    assert_eq!(
        r["then"], "Hello world",
        "the turn after the tool result is answered"
    );
    let sent = anthropic.bodies().pop().unwrap();
    let result = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|b| b["type"] == "tool_result")
        .expect("the tool result reached Anthropic as a tool_result block");
    assert_eq!(result["content"], "18 degrees and sunny");

    let r = sdk("openai-tools-stream", &gw, "claude/claude-tool", None).await;
    assert_eq!(r["name"], "get_weather");
    assert_eq!(r["arguments"], json!({"location": "San Francisco, CA"}));
    assert_eq!(
        (r["finish"].as_str(), r["text"].as_str()),
        (Some("tool_calls"), Some("Let me check."))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_tool_use_through_an_openai_provider() {
    let (gw, openai, _) = world().await;
    let r = sdk(
        "anthropic-tools",
        &gw,
        "oai/tool-call",
        Some("oai/gpt-test"),
    )
    .await;
    assert_eq!(r["name"], "get_weather");
    assert_eq!(r["input"], json!({"location": "Paris, France"}));
    assert_eq!(r["stop"], "tool_use");
    assert_eq!(r["then"], "Hello world");
    let sent = openai.bodies().pop().unwrap();
    let tool = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the tool result reached OpenAI as a tool message")
        .clone();
    assert_eq!(tool["content"], "18 degrees and sunny");

    let r = sdk("anthropic-tools-stream", &gw, "oai/tool-call", None).await;
    assert_eq!(r["name"], "get_weather");
    assert_eq!(r["input"], json!({"location": "Paris, France"}));
    assert_eq!(r["stop"], "tool_use");
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_responses_create_against_every_provider_kind() {
    let (gw, openai, _) = world().await;
    for model in ["oai/gpt-test", "claude/claude-test"] {
        let r = sdk("responses", &gw, model, None).await;
        assert_eq!(
            (r["text"].as_str(), r["status"].as_str()),
            (Some("Hello world"), Some("completed")),
            "{model}"
        );
        let r = sdk("responses-stream", &gw, model, None).await;
        assert_eq!(r["text"], "Hello world", "{model}");
        assert_eq!(
            (r["first"].as_str(), r["last"].as_str()),
            (Some("response.created"), Some("response.completed"))
        );
    }
    assert!(
        openai.bodies().iter().all(|b| b.get("messages").is_some()),
        "an OpenAI-compatible upstream gets Chat Completions"
    );
    let r = sdk("responses", &gw, "demo/protogate-demo", None).await;
    assert!(r["text"].as_str().unwrap().starts_with("[Protogate demo]"));
    let r = sdk("responses-tools", &gw, "oai/tool-call", None).await;
    assert_eq!(r["name"], "get_weather");
    assert_eq!(r["arguments"], json!({"location": "Paris, France"}));
    let r = sdk("responses-tools", &gw, "claude/claude-tool", None).await;
    assert_eq!(r["arguments"], json!({"location": "San Francisco, CA"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ai_sdk_default_openai_model_works() {
    let (gw, _, _) = world().await;
    for model in ["oai/gpt-test", "claude/claude-test"] {
        let r = sdk("ai-sdk", &gw, model, None).await;
        assert_eq!(
            r["text"], "Hello world",
            "generateText via /v1/responses: {model}"
        );
        assert_eq!(
            r["streamed"], "Hello world",
            "streamText via /v1/responses: {model}"
        );
        assert_eq!(r["finish"], "stop");
    }
    let record = gw.record_for("/v1/responses", "POST").await;
    assert_eq!(
        record.status, 200,
        "the AI SDK's default path is the Responses API"
    );
}
