//! WebKit, Safari's engine (WebKitGTK's MiniBrowser through WebKitWebDriver): an https
//! page, as a published Framer site is, runs the Framer component. Against Protogate's
//! `https://localhost` endpoint it streams the answer; against plain `http://127.0.0.1`
//! WebKit blocks the call as mixed content, and the component says to use the https
//! endpoint.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::desktop::{free_port, webdriver_session, Desktop};
use common::pages::*;
use common::*;
use serde_json::{json, Value};

/// MiniBrowser, wherever this architecture's WebKitGTK keeps it.
fn minibrowser() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|d| d.path().join("webkit2gtk-4.1/MiniBrowser"))
        .find(|p| p.exists())
        .expect("WebKitGTK's MiniBrowser is installed by scripts/install-deps.sh test")
}

/// Opens `url` in MiniBrowser under WebDriver and waits for the page's report. The page
/// stands in for a public https site with a certificate of its own, hence
/// `acceptInsecureCerts`.
async fn visit(
    desktop: &Desktop,
    home: &Path,
    url: &str,
    reports: &mut tokio::sync::mpsc::Receiver<Value>,
) -> Value {
    let port = free_port();
    let mut driver = desktop
        .command(Path::new("WebKitWebDriver"), home)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("WebKitWebDriver is installed by scripts/install-deps.sh test");
    let http = reqwest::Client::new();
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "webkitgtk:browserOptions": {"binary": minibrowser(), "args": ["--automation"]},
        "acceptInsecureCerts": true,
    }}});
    let base = webdriver_session(&http, &format!("http://127.0.0.1:{port}"), capabilities).await;
    http.post(format!("{base}/url"))
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), reports.recv()).await;
    let _ = http.delete(&base).send().await;
    let _ = driver.kill().await;
    report
        .expect("the page reports within a minute")
        .expect("a report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_webkit_an_https_page_streams_from_https_localhost_and_is_told_why_http_fails() {
    require_secret_service();
    let home = tempfile::tempdir().unwrap();
    let (_gateway, http_url, https_url) = serve_https(
        home.path(),
        json!({"cors": {"allowed_origins": ["https://127.0.0.2:*"]}}),
    )
    .await;
    let desktop = Desktop::start();
    let page = r#"<!doctype html><meta charset="utf-8"><title>prototype</title>
<div id="root"></div><script src="/component.js"></script>"#;
    let mut pages = serve_pages_tls(
        "127.0.0.2",
        HashMap::from([
            ("/", html(page.to_string())),
            ("/component.js", script("component.js").await),
        ]),
    )
    .await;
    let origin = format!("https://127.0.0.2:{}", pages.port);

    let url = format!("{origin}/?endpoint={https_url}/api/ai-gateway/stream");
    let report = visit(&desktop, home.path(), &url, &mut pages.reports).await;
    assert_eq!(
        report["phase"], "done",
        "https to https://localhost streams in WebKit: {report}"
    );
    assert!(
        report["answer"]
            .as_str()
            .unwrap()
            .starts_with("[Protogate demo]"),
        "{report}"
    );

    let url = format!("{origin}/?endpoint={http_url}/api/ai-gateway/stream");
    let report = visit(&desktop, home.path(), &url, &mut pages.reports).await;
    assert_eq!(
        report["phase"], "problem",
        "WebKit blocks http from an https page: {report}"
    );
    let problem = report["problem"].as_str().unwrap();
    assert!(
        problem.contains("Safari") && problem.contains("https://localhost:5712"),
        "the component points Safari users at the https endpoint: {problem}"
    );
}
