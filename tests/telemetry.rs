//! OpenTelemetry traces as a collector receives them: a receiver that decodes each export
//! with OpenTelemetry's own protobuf definitions (`tests/otel/receiver.py`, PyPI
//! `opentelemetry-proto`, in the venv `scripts/test.sh` makes), checked span by span.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use common::mock_openai::MockOpenAi;
use common::otel::{request_id, Receiver};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Settings to merge that send traces to `receiver`, with `extra`.
fn traces_to(receiver: &Receiver, extra: Value) -> Value {
    let mut s = json!({"telemetry": {"otlp_endpoint": receiver.url}});
    merge(&mut s, extra);
    s
}

#[tokio::test]
async fn a_demo_chat_is_one_client_span_with_the_genai_attributes_and_nothing_else_is() {
    let receiver = Receiver::start().await;
    let gw = spawn_gateway(settings(traces_to(&receiver, json!({})))).await;
    // Not model calls: a preflight and /health get no span.
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, gw.url("/api/ai-gateway/stream"))
        .header("origin", FRAMER_ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let health = reqwest::get(gw.url("/health")).await.unwrap();
    assert!(health.status().is_success());
    gw.record_for("/health", "GET").await;
    gw.record_for("/api/ai-gateway/stream", "OPTIONS").await;

    let answer = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "Say hello to the traces"}),
    )
    .await;
    let id = request_id(&answer);
    assert!(!seed_text(&answer.text().await.unwrap()).is_empty());

    let (span, before) = receiver.span_for(&id).await;
    assert!(
        before.is_empty(),
        "the preflight and /health made spans: {before:#?}"
    );
    assert_eq!(span["path"], "/v1/traces");
    assert_eq!(span["headers"]["content-type"], "application/x-protobuf");
    assert_eq!(span["resource"]["service.name"], "protogate");
    assert_eq!(span["name"], "chat protogate-demo");
    assert_eq!(span["kind"], "SPAN_KIND_CLIENT");
    let a = &span["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "chat");
    assert_eq!(a["gen_ai.provider.name"], "protogate.demo");
    assert_eq!(a["gen_ai.request.model"], "protogate-demo");
    assert_eq!(a["gen_ai.response.model"], "protogate-demo");
    assert_eq!(a["gen_ai.response.finish_reasons"], json!(["stop"]));
    assert!(a["gen_ai.response.time_to_first_chunk"].as_f64().unwrap() > 0.0);
    assert_eq!(a["http.route"], "/api/ai-gateway/stream");
    assert_eq!(a["http.response.status_code"], 200);
    assert_eq!(a["protogate.provider.id"], "demo");
    assert_eq!(a["protogate.origin"], FRAMER_ORIGIN);
    assert!(a.get("error.type").is_none());
    assert_eq!(span["status"]["code"], "STATUS_CODE_UNSET");
    assert!(
        a.get("gen_ai.input.messages").is_none() && a.get("gen_ai.output.messages").is_none(),
        "no prompt or answer unless capture_content is on: {a:#}"
    );
    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    let length_ns = span["end_time_unix_nano"].as_u64().unwrap()
        - span["start_time_unix_nano"].as_u64().unwrap();
    assert_eq!(
        length_ns,
        (record.latency_ms * 1e6) as u64,
        "the span lasts as long as the request"
    );
}

async fn ask(gw: &TestGateway, model: &str) -> reqwest::Response {
    post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": model, "messages": [{"role": "user", "content": "Count to two"}]}),
    )
    .await
}

#[tokio::test]
async fn an_openai_call_has_its_usage_and_server_and_content_only_when_asked() {
    let receiver = Receiver::start().await;
    let mock = MockOpenAi::start().await;
    let port = url::Url::parse(&mock.base_url).unwrap().port().unwrap();

    let settings = traces_to(&receiver, json!({}));
    let gw = spawn_with_openai("team-openai", &mock.base_url, settings).await;
    let answer = ask(&gw, "gpt-test").await;
    let (span, _) = receiver.span_for(&request_id(&answer)).await;
    assert_eq!(span["name"], "chat gpt-test");
    let a = &span["attributes"];
    assert_eq!(a["gen_ai.provider.name"], "openai");
    assert_eq!(a["gen_ai.usage.input_tokens"], 9);
    assert_eq!(a["gen_ai.usage.output_tokens"], 2);
    assert_eq!(a["gen_ai.response.finish_reasons"], json!(["stop"]));
    assert_eq!(a["server.address"], "127.0.0.1");
    assert_eq!(a["server.port"], port);
    assert_eq!(a["protogate.provider.id"], "team-openai");
    assert!(a.get("gen_ai.input.messages").is_none(), "{a:#}");

    let failed = ask(&gw, "error500").await;
    assert_eq!(failed.status(), 502);
    let (span, _) = receiver.span_for(&request_id(&failed)).await;
    assert_eq!(span["status"]["code"], "STATUS_CODE_ERROR");
    assert!(!span["status"]["message"].as_str().unwrap().is_empty());
    assert!(span["attributes"]["error.type"].is_string(), "{span:#}");
    assert_eq!(span["attributes"]["http.response.status_code"], 502);

    let capture = json!({"telemetry": {"capture_content": true}, "log": {"max_text_chars": 8}});
    let settings = traces_to(&receiver, capture);
    let gw = spawn_with_openai("team-openai", &mock.base_url, settings).await;
    let answer = ask(&gw, "gpt-test").await;
    let (span, _) = receiver.span_for(&request_id(&answer)).await;
    let messages = |key: &str| -> Value {
        serde_json::from_str(span["attributes"][key].as_str().expect(key)).unwrap()
    };
    let asked = messages("gen_ai.input.messages");
    assert_eq!(asked[0]["role"], "user");
    assert_eq!(
        asked[0]["parts"][0]["content"], "Count to…",
        "cut to log.max_text_chars"
    );
    let answered = messages("gen_ai.output.messages");
    assert_eq!(answered[0]["role"], "assistant");
    assert_eq!(answered[0]["parts"][0]["content"], "Hello wo");
    assert_eq!(answered[0]["finish_reason"], "stop");
}

#[tokio::test]
async fn the_langfuse_preset_sends_basic_auth_to_its_otel_path() {
    let receiver = Receiver::start().await;
    let secret = "sk-lf-test-0123456789-do-not-leak";
    let settings = settings(json!({"telemetry": {
        "langfuse": {"host": receiver.url, "public_key": "pk-lf-test-public"},
        "capture_content": true,
    }}));
    let gw = spawn_gateway_env(settings, &[("PROTOGATE_SECRET_LANGFUSE", secret)]).await;
    let answer = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    let id = request_id(&answer);
    answer.text().await.unwrap();
    let (span, _) = receiver.span_for(&id).await;
    assert_eq!(span["path"], "/api/public/otel/v1/traces");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("pk-lf-test-public:{secret}"));
    assert_eq!(span["headers"]["authorization"], format!("Basic {basic}"));
    assert_eq!(span["headers"]["x-langfuse-ingestion-version"], "4");
    assert!(
        span["attributes"]["langfuse.observation.input"].is_string(),
        "{span:#}"
    );
    let logged = gw.log_files_text().await;
    assert!(
        !logged.contains(secret) && !logged.contains(&basic),
        "{logged}"
    );
}

/// `protogate serve` with `settings` and `env`, in its own directories; its child process
/// and its URL.
async fn serve(home: &Path, settings: Value, env: &[(&str, &str)]) -> (Child, String) {
    std::fs::write(home.join("settings.json"), settings.to_string()).unwrap();
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(home.join("settings.json"))
        .args(["serve", "--port", "0"])
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (url, _) = serve::announced(&mut child).await;
    (child, url)
}

/// Stops `child` as a service manager does, and returns what it wrote on stderr.
async fn stop(mut child: Child) -> String {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(status.success(), "a clean stop: {status}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    err
}

/// Everything under `dir`, as text.
fn files_text(dir: &Path) -> String {
    walk(dir)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

async fn chat_through(url: &str, message: &str) -> String {
    let answer = post_json(
        &format!("{url}/api/ai-gateway/stream"),
        None,
        json!({"message": message}),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let id = request_id(&answer);
    assert!(!seed_text(&answer.text().await.unwrap()).is_empty());
    id
}

#[tokio::test]
async fn serve_reads_the_standard_otel_environment_and_sends_the_last_spans_as_it_stops() {
    let receiver = Receiver::start().await;
    let home = tempfile::tempdir().unwrap();
    let token = "otlp-token-0123456789-do-not-leak";
    let headers = format!("authorization=Bearer%20{token},x-team=design");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
        ("OTEL_SERVICE_NAME", "prototype-gateway"),
        ("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str()),
    ];
    let (child, url) = serve(home.path(), settings(json!({})), &env).await;
    let id = chat_through(&url, "hi").await;
    let err = stop(child).await;
    // Sent as it stopped, at the latest: nothing to wait for here.
    let (span, _) = receiver
        .find(&id)
        .expect("the span was sent before the gateway exited");
    assert_eq!(span["path"], "/v1/traces");
    assert_eq!(span["resource"]["service.name"], "prototype-gateway");
    assert_eq!(span["headers"]["authorization"], format!("Bearer {token}"));
    assert_eq!(span["headers"]["x-team"], "design");
    let files = files_text(home.path());
    assert!(!err.contains(token) && !files.contains(token), "{err}");
}

#[tokio::test]
async fn a_collector_that_is_down_costs_only_the_spans_and_says_so_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/traces", closed.local_addr().unwrap());
    drop(closed);
    let home = tempfile::tempdir().unwrap();
    let env = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str())];
    let (child, url) = serve(home.path(), settings(json!({})), &env).await;
    for n in 0..3 {
        chat_through(&url, &format!("request {n}")).await;
    }
    let err = stop(child).await;
    let said: Vec<_> = err
        .lines()
        .filter(|l| l.contains("spans dropped"))
        .collect();
    assert_eq!(said.len(), 1, "one line per outage, not per span: {err}");
    assert!(said[0].contains("cannot be reached"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_langfuse_secret_key_goes_from_the_keychain_to_the_header_and_nowhere_else() {
    require_secret_service();
    let receiver = Receiver::start().await;
    let home = tempfile::tempdir().unwrap();
    let secret = "sk-lf-keychain-0123456789-do-not-leak";
    let settings = settings(json!({"telemetry": {
        "langfuse": {"host": receiver.url, "public_key": "pk-lf-keychain"},
    }}));
    std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
    let mut set = Command::new(binary())
        .arg("--config")
        .arg(home.path().join("settings.json"))
        .args(["secrets", "set", "langfuse"])
        .env("XDG_DATA_HOME", home.path().join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = set.stdin.take().unwrap();
    stdin.write_all(secret.as_bytes()).await.unwrap();
    drop(stdin);
    let out = set.wait_with_output().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(!said.contains(secret), "{said}");
    let stored = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "protogate", "username", "langfuse"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&stored.stdout),
        secret,
        "it is in the keychain"
    );

    let (child, url) = serve(home.path(), settings, &[]).await;
    let id = chat_through(&url, "hi").await;
    let err = stop(child).await;
    let (span, _) = receiver
        .find(&id)
        .expect("the span was sent before the gateway exited");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("pk-lf-keychain:{secret}"));
    assert_eq!(span["headers"]["authorization"], format!("Basic {basic}"));
    let files = files_text(home.path());
    for leak in [secret, basic.as_str()] {
        assert!(!err.contains(leak) && !files.contains(leak), "{err}");
    }
    let _ = std::process::Command::new("secret-tool")
        .args(["clear", "service", "protogate", "username", "langfuse"])
        .status();
}
