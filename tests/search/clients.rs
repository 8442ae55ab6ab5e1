//! Search checked by code that is not Protogate's route: Tavily's own Python client
//! against the mock Tavily (so the mock's shapes are the vendor's), and `protogate check`,
//! which searches one word on each search provider.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::common::mock_brave::MockBrave;
use super::common::mock_tavily::MockTavily;
use super::common::{binary, settings};
use super::{search, world, BRAVE_KEY, TAVILY_KEY};

#[test]
fn protogate_check_runs_a_one_word_search_on_each_search_provider() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (tavily, brave) = runtime.block_on(async {
        (
            MockTavily::start(TAVILY_KEY).await,
            MockBrave::start(BRAVE_KEY).await,
        )
    });
    let home = tempfile::tempdir().unwrap();
    let settings = settings(json!({"providers": [
        {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
        {"id": "tavily", "kind": "tavily", "base_url": tavily.base_url},
        {"id": "brave", "kind": "brave", "base_url": brave.base_url},
    ]}));
    std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
    let out = std::process::Command::new(binary())
        .arg("--config")
        .arg(home.path().join("settings.json"))
        .arg("check")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("PROTOGATE_SECRET_TAVILY", TAVILY_KEY)
        .env("PROTOGATE_SECRET_BRAVE", BRAVE_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for id in ["demo", "tavily", "brave"] {
        assert!(stdout.contains(&format!("{id}: ok")), "{stdout}");
    }
    assert_eq!(tavily.seen()[0].body["query"], "Protogate");
    assert_eq!(tavily.seen()[0].body["max_results"], 1);
    assert_eq!(
        brave.seen()[0].uri,
        "/res/v1/web/search?q=Protogate&count=1"
    );
    for key in [TAVILY_KEY, BRAVE_KEY] {
        assert!(!stdout.contains(key) && !stderr.contains(key));
    }
}

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chatkit/.venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run the tests through scripts/test.sh, which makes it"
    );
    python
}

/// The mock Tavily speaks what Tavily's own client sends and reads, so the gateway's
/// tests against it test against Tavily's real shapes; and what Protogate sends is a
/// subset of what that client sends for the same search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_tavily_is_what_tavilys_own_client_expects() {
    let w = world().await;
    let output = tokio::process::Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/search/tavily_client.py"))
        .args([w.tavily.base_url.as_str(), TAVILY_KEY])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tavily-python and the mock disagree:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let errors = &report["errors"];
    assert_eq!(
        errors["401"],
        "InvalidAPIKeyError: Unauthorized: missing or invalid API key."
    );
    assert!(errors["429"]
        .as_str()
        .unwrap()
        .starts_with("UsageLimitExceededError: Your request has been blocked"));
    assert!(errors["432"]
        .as_str()
        .unwrap()
        .starts_with("ForbiddenError: This request exceeds your plan"));
    assert!(errors["400"]
        .as_str()
        .unwrap()
        .starts_with("BadRequestError: Invalid search depth"));
    assert_eq!(errors["500"], "HTTPError");

    // The same search through Protogate: its body has the client's fields and values.
    let client_body = w.tavily.seen()[0].body.clone();
    let (status, _, _) = search(
        &w.gw,
        json!({"query": "who is Leo Messi?", "provider": "tavily", "max_results": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let ours = w.tavily.seen().last().unwrap().body.clone();
    assert_eq!(ours, client_body, "Protogate's body is the vendor client's");
    let client_headers = &w.tavily.seen()[0].headers;
    assert!(client_headers
        .iter()
        .any(|(n, v)| n == "authorization" && v == &format!("Bearer {TAVILY_KEY}")));
}
