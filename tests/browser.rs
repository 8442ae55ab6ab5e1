//! A real browser: headless Chromium loads a page from another origin on loopback that
//! runs the seed `Chat.tsx` reading loop, unchanged, against the gateway. From an allowed
//! origin the streamed text appears in the page; from another, the browser blocks it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use common::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The seed's `sendMessage` loop from `Chat.tsx`, as plain JS, writing into the page and
/// then reporting what the page shows to its own server (same origin, no CORS).
fn page(endpoint: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>prototype</title>
<div id="out"></div>
<script>
const apiEndpoint = {endpoint:?};
async function report(result) {{
  await fetch("/report", {{ method: "POST", body: JSON.stringify(result) }});
}}
async function sendMessage(message) {{
  try {{
    const response = await fetch(apiEndpoint, {{
      method: "POST",
      headers: {{ "Content-Type": "application/json" }},
      body: JSON.stringify({{ message }}),
    }});
    if (!response.ok) {{
      throw new Error("Failed to connect to AI Gateway streaming API");
    }}
    const reader = response.body?.getReader();
    if (!reader) {{
      throw new Error("No response stream available");
    }}
    const decoder = new TextDecoder();
    let fullText = "";
    while (true) {{
      const {{ done, value }} = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, {{ stream: true }});
      const lines = chunk.split("\n");
      for (const line of lines) {{
        if (line.startsWith("data: ")) {{
          const data = line.slice(6);
          if (data === "[DONE]") break;
          try {{
            const parsed = JSON.parse(data);
            if (parsed.text) {{
              fullText += parsed.text;
              document.getElementById("out").textContent = fullText;
            }}
          }} catch (e) {{
            // Skip invalid JSON
          }}
        }}
      }}
    }}
    await report({{ ok: true, shown: document.getElementById("out").textContent }});
  }} catch (error) {{
    await report({{ ok: false, error: String(error) }});
  }}
}}
sendMessage("Hello from a Framer prototype");
</script>"#
    )
}

/// Serves the page on `ip:0` and forwards its report.
async fn page_server(ip: &str, endpoint: String) -> (u16, mpsc::Receiver<Value>) {
    let (tx, rx) = mpsc::channel(4);
    let app = Router::new()
        .route("/", get(move || async move { Html(page(&endpoint)) }))
        .route(
            "/report",
            post(
                |State(tx): State<mpsc::Sender<Value>>, body: String| async move {
                    let _ = tx
                        .send(serde_json::from_str(&body).unwrap_or(Value::Null))
                        .await;
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, rx)
}

/// Opens `url` in headless Chromium and waits for the page's report.
async fn visit(url: &str, mut reports: mpsc::Receiver<Value>) -> Value {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "Chromium is missing: run the tests through scripts/test.sh, which installs it"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut browser = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let report = tokio::time::timeout(Duration::from_secs(60), reports.recv()).await;
    let _ = browser.kill().await;
    report
        .expect("the page reports within a minute")
        .expect("a report")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_chat_loop_streams_in_chromium_from_an_allowed_origin_only() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let endpoint = gw.url("/api/ai-gateway/stream");

    // http://localhost:* is allowed by default; the gateway is on 127.0.0.1: cross-origin.
    let (port, reports) = page_server("127.0.0.1", endpoint.clone()).await;
    let report = visit(&format!("http://localhost:{port}/"), reports).await;
    assert_eq!(report["ok"], true, "{report}");
    let shown = report["shown"].as_str().unwrap();
    assert!(
        shown.starts_with("[Protogate demo]"),
        "the streamed text is in the page: {shown}"
    );
    assert!(shown.contains("Hello from a Framer prototype"), "{shown}");
    assert!(
        shown.ends_with("no change to your component."),
        "no event was lost: {shown}"
    );

    // http://127.0.0.2:* is not in the allowlist: the browser must block the call.
    let (port, reports) = page_server("127.0.0.2", endpoint).await;
    let report = visit(&format!("http://127.0.0.2:{port}/"), reports).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("Failed to fetch"),
        "{report}"
    );
    let refused = gw
        .log
        .recent()
        .into_iter()
        .find(|r| r.origin.as_deref() == Some(&format!("http://127.0.0.2:{port}")))
        .expect("the refused call is in the request log");
    assert_eq!(refused.status, 403);
    assert!(refused.error.unwrap().contains("is not allowed"));
}
