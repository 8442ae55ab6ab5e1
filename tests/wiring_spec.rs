//! The wiring spec's own integration test (`tests/spec/test_wiring_spec.py`, Python, as
//! the spec wrote it) against a real gateway whose providers are mock upstreams of every
//! kind, each in its documented wire format: OpenAI-compatible, Anthropic, the ASAP
//! gateway (Bedrock payloads, signed tokens checked) and the built-in demo.

mod common;

use common::mock_anthropic::MockAnthropic;
use common::mock_asap::{self, MockAsapGateway};
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

#[tokio::test]
async fn the_specs_own_test_passes_through_every_provider_kind() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start(ANTHROPIC_KEY).await;
    let asap = MockAsapGateway::start().await;
    let s = settings(json!({
        "default_provider": "openai",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "openai", "kind": "openai", "base_url": openai.base_url, "default_model": "gpt-test"},
            {"id": "anthropic", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-test"},
            {"id": "gw", "kind": "asap-gateway", "base_url": asap.invoke_url, "default_model": "claude-bedrock",
             "asap": {"issuer": mock_asap::ISSUER, "key_id": mock_asap::KEY_ID, "audience": mock_asap::AUDIENCE, "lifetime_s": 600}},
        ],
    }));
    let key = test_key("openai");
    let gw = spawn_gateway_env(
        s,
        &[
            ("PROTOGATE_SECRET_OPENAI", key.as_str()),
            ("PROTOGATE_SECRET_ANTHROPIC", ANTHROPIC_KEY),
            ("PROTOGATE_SECRET_GW", mock_asap::PRIVATE_KEY),
        ],
    )
    .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/spec/test_wiring_spec.py"
    );
    for provider in ["openai", "anthropic", "gw", "demo"] {
        let out = tokio::process::Command::new("python3")
            .arg(script)
            .env("PROTOGATE_URL", gw.url(""))
            .env("PROTOGATE_PROVIDER", provider)
            .output()
            .await
            .expect("python3 runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the spec's test failed for {provider}: {stderr}"
        );
        let body: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
        assert_eq!(body["provider"], provider);
        let answer = body["response"].as_str().unwrap();
        if provider == "demo" {
            assert!(answer.contains("Protogate demo"), "{answer}");
        } else {
            assert_eq!(answer, "Hello world", "through {provider}");
        }
    }
    // Each upstream was called, in its own format: twice each (the test, then the check).
    assert_eq!(openai.bodies().len(), 2);
    assert_eq!(anthropic.bodies().len(), 2);
    assert_eq!(asap.bodies().len(), 2);
    assert!(asap.rejections().is_empty(), "{:?}", asap.rejections());
}
