//! ChatKit on `/api/chatkit`: a whole session checked by OpenAI's own SDK (its pydantic
//! models and its reference server, in the venv `scripts/test.sh` makes), threads kept
//! per origin, and kept across a restart of the gateway.

mod common;

use std::path::PathBuf;

use common::mock_openai::MockOpenAi;
use serde_json::{json, Value};

const ORIGIN: &str = common::FRAMER_ORIGIN;
const OTHER_ORIGIN: &str = "http://localhost:5173";

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chatkit/.venv/bin/python");
    assert!(
        python.exists(),
        "the ChatKit SDK's venv is missing: run the tests through scripts/test.sh, which makes it"
    );
    python
}

fn chatkit_settings(dir: &std::path::Path, mock: &MockOpenAi) -> Value {
    common::settings(json!({
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "mock", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"},
        ],
        "chatkit": {"dir": dir},
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatkit_session_is_what_the_openai_sdk_accepts_and_emits() {
    let mock = MockOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = common::spawn_gateway_env(
        chatkit_settings(dir.path(), &mock),
        &[("PROTOGATE_SECRET_MOCK", "sk-test-mock")],
    )
    .await;
    let base = gateway.url("");
    let output = tokio::process::Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chatkit/conformance.py"))
        .args([base.as_str(), ORIGIN, "mock/cut", "mock/gpt-test"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Protogate's ChatKit answers differ from the SDK's:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let seen = &report["seen"];
    // The demo provider answered the first message, echoing it.
    let first = seen["first_answer"].as_str().unwrap();
    assert!(
        first.starts_with("[Protogate demo]") && first.contains("Hello"),
        "{first}"
    );
    assert_eq!(seen["title"], "Hello");
    assert_eq!(seen["renamed"], "Renamed");
    // A provider cut mid-answer is an error event that says so; the half answer is not kept.
    let failure = seen["failure_message"].as_str().unwrap();
    assert!(failure.contains("mock"), "{failure}");
    // The image reached the provider as image input, with the thread as history.
    assert_eq!(seen["upload_status"], 200);
    assert_eq!(seen["attached"], true);
    assert_eq!(seen["attachment_answer"], "Hello world");
    let body = mock.bodies().last().cloned().unwrap();
    let messages = body["messages"].as_array().unwrap();
    let last = &messages[messages.len() - 1]["content"];
    assert!(
        last.to_string().contains("data:image/png;base64,"),
        "the image is not in the upstream call: {last}"
    );
    assert!(
        messages.len() >= 7,
        "the thread's history is not in the upstream call: {body}"
    );
    // Anything but an image is refused with the reason.
    assert_eq!(seen["pdf_upload"]["status"], 415);
    let why = seen["pdf_upload"]["body"].as_str().unwrap();
    assert!(
        why.contains("application/pdf") && why.contains("images"),
        "{why}"
    );
    assert_eq!(seen["after_delete_status"], 404);
    // The turns are in the request log with their thread.
    let thread = seen["thread_id"].as_str().unwrap();
    let records: Vec<_> = gateway
        .log
        .recent()
        .into_iter()
        .filter(|r| r.path == "/api/chatkit")
        .collect();
    assert!(
        records
            .iter()
            .any(|r| r.thread.as_deref() == Some(thread) && r.provider.as_deref() == Some("demo")),
        "no ChatKit turn with its thread in the log: {records:?}"
    );
}

async fn chatkit(base: &str, origin: &str, body: Value) -> reqwest::Response {
    common::post_json(&format!("{base}/api/chatkit"), Some(origin), body).await
}

fn create(text: &str) -> Value {
    json!({"type": "threads.create", "params": {"input": {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {}
    }}})
}

#[tokio::test]
async fn threads_belong_to_their_origin_and_outlive_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("chatkit");
    let mock = MockOpenAi::start().await;
    let settings = chatkit_settings(&dir, &mock);
    let (mut first, base) = common::serve_process(home.path(), settings.clone()).await;

    let body = chatkit(&base, ORIGIN, create("Remember me"))
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = common::sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_string();
    assert_eq!(events.last().unwrap()["type"], "thread.updated", "{body}");

    // Another prototype sees nothing of it, and cannot read it by id.
    let list = json!({"type": "threads.list", "params": {}});
    let theirs: Value = chatkit(&base, OTHER_ORIGIN, list.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], json!([]));
    let by_id = json!({"type": "threads.get_by_id", "params": {"thread_id": thread}});
    let refused = chatkit(&base, OTHER_ORIGIN, by_id.clone()).await;
    assert_eq!(refused.status(), 404);

    first.kill().await.unwrap();
    let (_second, base) = common::serve_process(home.path(), settings).await;
    let ours: Value = chatkit(&base, ORIGIN, by_id).await.json().await.unwrap();
    assert_eq!(ours["id"], thread.as_str());
    assert_eq!(ours["title"], "Remember me");
    let kinds: Vec<_> = ours["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["user_message", "assistant_message"]);
}

#[tokio::test]
async fn a_corrupt_thread_file_is_set_aside_and_the_gateway_serves_on() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("chatkit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("threads.json"), b"{\"origins\": [oops").unwrap();
    let mock = MockOpenAi::start().await;
    let (_gateway, base) = common::serve_process(home.path(), chatkit_settings(&dir, &mock)).await;
    let response = chatkit(&base, ORIGIN, create("Still here?")).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("thread.item.done"));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("threads.corrupt-")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "threads.json"), "{names:?}");
}

#[tokio::test]
async fn bad_chatkit_requests_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let gateway =
        common::spawn_gateway(common::settings(json!({"chatkit": {"dir": dir.path()}}))).await;
    let base = gateway.url("");
    let unknown = chatkit(&base, ORIGIN, json!({"type": "threads.fly", "params": {}})).await;
    assert_eq!(unknown.status(), 400);
    let text = unknown.text().await.unwrap();
    assert!(text.contains("threads.fly"), "{text}");
    let missing = chatkit(
        &base,
        ORIGIN,
        json!({"type": "threads.add_user_message", "params": {"thread_id": "thr_nope", "input": {
            "content": [{"type": "input_text", "text": "hi"}], "attachments": [], "inference_options": {}
        }}}),
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("thr_nope"));
}
