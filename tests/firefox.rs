//! Firefox (Debian's firefox-esr) on a prototype's path: a page it treats as public
//! (`network.lna.address_space.public.override`) calling Protogate on loopback. Firefox
//! holds such a call while it asks for its "loopback-network" permission; granted (here
//! by the `permissions.default.loopback-network` preference), the call goes through.
// Linux only: Debian's Firefox, its process group.
#![cfg(target_os = "linux")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::pages::*;
use common::*;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

const FIREFOX: &str = "/usr/bin/firefox-esr";

/// One Firefox at a time: it is heavy for two cores.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// Opens `url` in headless Firefox with `public` (`ip:port`) treated as public addresses,
/// and the loopback permission granted or not, and waits for the page's report.
async fn visit(
    url: &str,
    public: &str,
    granted: bool,
    reports: &mut mpsc::Receiver<Value>,
) -> Value {
    assert!(
        std::path::Path::new(FIREFOX).exists(),
        "Firefox is missing: run the tests through scripts/test.sh, which installs it"
    );
    let _one_at_a_time = BROWSER.lock().await;
    let profile = tempfile::tempdir().unwrap();
    let mut prefs = vec![
        format!(r#"user_pref("network.lna.address_space.public.override", "{public}");"#),
        r#"user_pref("app.update.enabled", false);"#.to_string(),
        r#"user_pref("browser.shell.checkDefaultBrowser", false);"#.to_string(),
        r#"user_pref("datareporting.policy.dataSubmissionEnabled", false);"#.to_string(),
    ];
    if granted {
        prefs.push(r#"user_pref("permissions.default.loopback-network", 1);"#.to_string());
    }
    std::fs::write(profile.path().join("user.js"), prefs.join("\n")).unwrap();
    let mut browser = tokio::process::Command::new(FIREFOX)
        .args(["--headless", "--no-remote", "--profile"])
        .arg(profile.path())
        .arg(url)
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start firefox");
    let report = tokio::time::timeout(Duration::from_secs(90), reports.recv()).await;
    if let Some(pid) = browser.id() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
    }
    let _ = browser.wait().await;
    report
        .expect("the page reports within a minute and a half")
        .expect("a report")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_framer_component_streams_in_firefox_once_loopback_access_is_allowed() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let path = format!("/?endpoint={}", gw.url("/api/ai-gateway/stream"));

    let mut pages = component_page("127.0.0.1").await;
    let report = visit(
        &pages.url(&path),
        &pages.address(),
        true,
        &mut pages.reports,
    )
    .await;
    assert_eq!(report["phase"], "done", "{report}");
    assert!(
        report["answer"]
            .as_str()
            .unwrap()
            .starts_with("[Protogate demo]"),
        "{report}"
    );

    // Not yet allowed: Firefox holds the call while it asks, and the component says where
    // to look instead of spinning silently.
    let mut pages = component_page("127.0.0.1").await;
    let report = visit(
        &pages.url(&path),
        &pages.address(),
        false,
        &mut pages.reports,
    )
    .await;
    assert_eq!(report["phase"], "asking", "{report}");
    let hint = report["hint"].as_str().unwrap();
    assert!(
        hint.contains("asking") && hint.contains("Allow"),
        "the component points at the browser's question: {hint}"
    );
}
