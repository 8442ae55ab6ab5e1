//! The desktop window end to end, as a designer uses it, driven over WebDriver
//! (`tauri-driver` + WebKitWebDriver) under Xvfb with a private session bus and a real
//! Secret Service: the endpoint shows and copies; the gateway stops and starts from the
//! window; a provider is added and its key lands in the keychain; the test chat streams
//! through the gateway from the webview; requests appear in Logs; a refused origin is
//! allowed with one click; Trust for Safari puts the local CA in the browsers' store; a
//! port taken by another app is left for the next free one in one click.
#![cfg(all(feature = "desktop", target_os = "linux"))] // WebKitWebDriver, Xvfb, a Secret Service

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::desktop::{free_port, webdriver_session, Desktop};
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .send(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().map(String::from)
    }

    /// Waits for an element matching `css`.
    async fn wait(&self, css: &str) -> String {
        for _ in 0..100 {
            if let Some(id) = self.find(css).await {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} in the window");
    }

    /// What a person sees in the element: its rendered text.
    async fn text(&self, css: &str) -> String {
        let script =
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null";
        let text = self
            .send(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": script, "args": [css]})),
            )
            .await;
        text.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the text of `css` satisfies `want`.
    async fn wait_text(&self, css: &str, want: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            if self.find(css).await.is_some() {
                last = self.text(css).await;
                if want(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css}: the window shows {last:?}");
    }

    /// Runs `script` (a function body, `arguments` = `args`) in the window; its answer.
    async fn script(&self, script: &str, args: Value) -> Value {
        self.send(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until `script`'s answer, as text, satisfies `want`.
    async fn wait_script(&self, script: &str, want: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            last = match self.script(script, json!([])).await {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if want(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{script}: the window answers {last:?}");
    }

    async fn click(&self, css: &str) {
        let id = self.wait(css).await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait(css).await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("PROTOGATE_SCREENSHOTS") else {
            return;
        };
        // The view as it settles: no passing toast, no answer still streaming in.
        let settled = "return document.querySelector('#toast').hidden \
            && document.querySelector('#chat-stop').disabled";
        // Settled for 400 ms in a row: a toast that a command's answer raises a moment
        // after the view changed has had time to appear (and then to go).
        let mut calm = 0;
        for _ in 0..80 {
            let script = json!({"script": settled, "args": []});
            let done = self
                .send(reqwest::Method::POST, "/execute/sync", Some(script))
                .await;
            calm = if done == json!(true) { calm + 1 } else { 0 };
            if calm == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let png = self.send(reqwest::Method::GET, "/screenshot", None).await;
        use base64::Engine as _;
        let decoded = png
            .as_str()
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b));
        if let Some(Ok(bytes)) = decoded {
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), bytes).unwrap();
        }
    }
}

async fn clipboard(display: &str) -> String {
    let out = tokio::process::Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .output()
        .await
        .expect("xclip is installed by scripts/install-deps.sh test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn secret_tool(desktop: &Desktop, home: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("secret-tool")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", &desktop.bus)
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .expect("secret-tool is installed by scripts/install-deps.sh test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The app on its own desktop (Xvfb, a private session bus with a real, unlocked Secret
/// Service) with `settings`, driven over WebDriver; everything it started ends when dropped.
struct Window {
    desktop: Desktop,
    home: tempfile::TempDir,
    w: Session,
    http: reqwest::Client,
    driver: tokio::process::Child,
    keyring: tokio::process::Child,
    /// Where the app's `xdg-open` (a stand-in first on its PATH) writes what it was asked
    /// to open, so a link "opened in the browser" is seen without a browser.
    opened: std::path::PathBuf,
}

impl Window {
    async fn open(settings: Value) -> Window {
        let desktop = Desktop::start();
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("data")).unwrap();
        // A real, unlocked Secret Service on the window's session bus.
        let mut keyring = desktop
            .command(Path::new("gnome-keyring-daemon"), home.path())
            .args(["--unlock", "--components=secrets", "--foreground"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("gnome-keyring is installed by scripts/install-deps.sh test");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = keyring.stdin.take().unwrap();
            stdin.write_all(b"window-test").await.unwrap();
        }
        let settings_path = home.path().join("settings.json");
        std::fs::write(&settings_path, settings.to_string()).unwrap();

        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let opened = home.path().join("opened.txt");
        let xdg_open = bin.join("xdg-open");
        std::fs::write(
            &xdg_open,
            format!("#!/bin/sh\necho \"$1\" >> '{}'\n", opened.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&xdg_open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );

        let driver_port = free_port();
        let driver = desktop
            .command(Path::new("tauri-driver"), home.path())
            .env("PATH", path)
            .args([
                "--port",
                &driver_port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tauri-driver is installed by scripts/install-deps.sh test");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{driver_port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": binary(),
            "args": ["--config", settings_path],
        }}}});
        let w = Session {
            http: http.clone(),
            url: webdriver_session(&http, &base, capabilities).await,
        };
        Window {
            desktop,
            home,
            w,
            http,
            driver,
            keyring,
            opened,
        }
    }

    async fn close(mut self) {
        let _ = self.http.delete(&self.w.url).send().await;
        let _ = self.driver.kill().await;
        let _ = self.keyring.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_designer_runs_the_window_end_to_end() {
    let mock = MockOpenAi::start().await;
    let window = Window::open(settings(json!({}))).await;
    let (desktop, home, w) = (&window.desktop, window.home.path(), &window.w);

    // Endpoint: the URL is shown and copies.
    let url = w
        .wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;
    let base_url = url.trim_end_matches("/api/ai-gateway/stream").to_string();
    assert_eq!(
        reqwest::get(format!("{base_url}/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    w.screenshot("endpoint-light").await;
    w.click("[data-copy=endpoint]").await;
    let mut copied = String::new();
    for _ in 0..50 {
        copied = clipboard(&desktop.display).await;
        if copied == url {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(copied, url, "Copy puts the endpoint on the clipboard");

    // Stop and start from the window; a request agrees each time.
    w.click("#toggle-gateway").await;
    w.wait_text("#endpoint-state", |t| t == "Stopped").await;
    assert!(reqwest::get(format!("{base_url}/health")).await.is_err());
    w.click("#toggle-gateway").await;
    let url = w
        .wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;
    let base_url = url.trim_end_matches("/api/ai-gateway/stream").to_string();
    assert_eq!(
        reqwest::get(format!("{base_url}/health"))
            .await
            .unwrap()
            .status(),
        200
    );

    // Providers: add one pointed at the mock, and set its key: it lands in the keychain.
    w.click("[data-view=providers]").await;
    w.type_into("#provider-form input[name=id]", "mock").await;
    w.type_into("#provider-form input[name=base_url]", &mock.base_url)
        .await;
    w.type_into("#provider-form input[name=default_model]", "gpt-test")
        .await;
    w.click("#provider-form button[type=submit]").await;
    w.wait("[data-provider=mock]").await;
    w.type_into(
        "[data-provider=mock] input[type=password]",
        "sk-window-0123456789",
    )
    .await;
    w.click("[data-provider=mock] .key-row button").await;
    let mut stored = String::new();
    for _ in 0..50 {
        stored = secret_tool(
            desktop,
            home,
            &["lookup", "service", "protogate", "username", "mock"],
        );
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored, "sk-window-0123456789",
        "the key is in the Secret Service"
    );
    let state = w
        .wait_text("[data-provider=mock] .key-state", |t| t.contains("set"))
        .await;
    assert!(
        state.contains("in the keychain") && state.contains("sent to this machine"),
        "a key stored for a server on this machine is shown as set and sent: {state}"
    );
    // Typing the key scrolled the view down a little: show it from its heading.
    w.script(
        "for (const e of [document.scrollingElement, ...document.querySelectorAll('main, section')]) \
         if (e) e.scrollTop = 0",
        json!([]),
    )
    .await;
    w.screenshot("providers-light").await;

    // Chat: streams from the webview through the gateway (a real cross-origin client).
    w.click("[data-view=chat]").await;
    w.type_into("#chat-input", "Hello from the window").await;
    w.click("#chat-send").await;
    let answer = w
        .wait_text(".bubble.assistant", |t| {
            t.starts_with("[Protogate demo]") || t.contains("Hello world")
        })
        .await;
    assert!(!answer.contains("error"), "{answer}");
    w.screenshot("chat-light").await;
    assert!(
        mock.authorizations().is_empty()
            || mock
                .authorizations()
                .iter()
                .all(|a| a.as_deref() == Some("Bearer sk-window-0123456789")),
        "the mock only ever saw the stored key"
    );

    // Logs: the chat's request is there; a refused origin is allowed with one click.
    let site = "https://acme-coffee.framer.app";
    let refused = post_json(
        &format!("{base_url}/api/ai-gateway/stream"),
        Some(site),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    w.click("[data-view=logs]").await;
    w.wait_text("#log-rows", |t| {
        t.contains("/api/ai-gateway/stream") && t.contains("200")
    })
    .await;
    w.wait_text("#log-rows", |t| {
        t.contains("acme-coffee.framer.app") && t.contains("403")
    })
    .await;
    w.screenshot("logs-light").await;
    w.click(".trow.refused .reason button").await;
    let mut status = 0;
    for _ in 0..50 {
        let res = post_json(
            &format!("{base_url}/api/ai-gateway/stream"),
            Some(site),
            json!({"message": "hi"}),
        )
        .await;
        status = res.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "Allow this origin lets the site in");
    w.click("[data-view=settings]").await;
    w.wait_text("#settings-form", |t| !t.is_empty()).await;
    w.screenshot("settings-light").await;

    // A new access token: on the clipboard and in the keychain, never in the page.
    w.click("#token-generate").await;
    let mut stored = String::new();
    for _ in 0..50 {
        stored = secret_tool(
            desktop,
            home,
            &[
                "lookup",
                "service",
                "protogate",
                "username",
                "protogate-access-token",
            ],
        );
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stored.starts_with("pg_"),
        "the token is in the keychain: {stored:?}"
    );
    assert_eq!(
        clipboard(&desktop.display).await,
        stored,
        "and on the clipboard"
    );
    let page = w.text("body").await;
    assert!(!page.contains(&stored), "the window never shows it");

    // Trust for Safari: the CA goes into this user's NSS database, as `tls trust` does.
    w.click("#tls-trust").await;
    w.wait_text("#tls-state", |t| t.starts_with("Trusted in"))
        .await;
    let nssdb = format!("sql:{}", home.join(".pki/nssdb").display());
    let listed = std::process::Command::new("certutil")
        .args(["-L", "-d", &nssdb, "-n", protogate::tls::trust::NICKNAME])
        .status()
        .expect("certutil is installed by scripts/install-deps.sh test");
    assert!(listed.success(), "the local CA is in the browsers' store");

    // Another app takes the port: the window says so, and one click moves Protogate on.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    w.type_into("#settings-form input[name=port]", &taken_port.to_string())
        .await;
    w.click("#settings-form button[type=submit]").await;
    w.click("[data-view=endpoint]").await;
    let problem = w
        .wait_text("#endpoint-problem", |t| t.contains("already in use"))
        .await;
    assert!(problem.contains(&taken_port.to_string()), "{problem}");
    w.click("#use-free-port").await;
    let url = w
        .wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;
    let base_url = url.trim_end_matches("/api/ai-gateway/stream").to_string();
    assert!(!base_url.ends_with(&format!(":{taken_port}")), "{base_url}");
    assert_eq!(
        reqwest::get(format!("{base_url}/health"))
            .await
            .unwrap()
            .status(),
        200,
        "it serves on the new port"
    );
    let fix_hidden = w
        .send(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return document.querySelector('#endpoint-fix').hidden", "args": []})),
        )
        .await;
    assert_eq!(fix_hidden, json!(true), "the problem is gone");
    drop(taken);

    window.close().await;
}

/// The last answer in the Chat view, as shown.
const LAST_ANSWER: &str =
    "return [...document.querySelectorAll('.bubble.assistant')].pop()?.innerText ?? ''";

/// The Chat view's "Search the web" and microphone, in the real window: a searched answer
/// shows its sources (the demo's canned, labelled results) as links, and the model got
/// them in its system prompt with the instruction to cite them; the microphone, where the
/// webview cannot record (WebKitGTK on this machine: no microphone), picks an audio file,
/// and a spoken WAV comes back as the transcript in the composer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_searches_the_web_with_sources_and_dictates_from_a_recording() {
    let mock = MockOpenAi::start().await;
    let spoken = tempfile::tempdir().unwrap();
    let wav = spoken.path().join("question.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "130", "-w"])
        .arg(&wav)
        .arg("what is cold brew coffee")
        .status()
        .expect("espeak-ng is installed by scripts/install-deps.sh test");
    assert!(status.success());
    let window = Window::open(settings(json!({
        "default_provider": "demo",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "mock", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"},
        ],
    })))
    .await;
    let w = &window.w;
    w.wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;

    // Search the web, answered by the demo: the answer, then its sources as links.
    w.click("[data-view=chat]").await;
    w.wait_script(
        "return [...document.querySelectorAll('#chat-model option')].map((o) => o.value).join(' ')",
        |t| t.contains("mock/gpt-test"),
    )
    .await;
    w.click("label.toggle").await;
    let on = w
        .script(
            "return document.querySelector('#chat-search').checked",
            json!([]),
        )
        .await;
    assert_eq!(on, json!(true), "the toggle turns search on");
    w.type_into("#chat-input", "What is cold brew?").await;
    w.click("#chat-send").await;
    let answer = w
        .wait_script(LAST_ANSWER, |t| t.ends_with("no change to your component."))
        .await;
    assert!(
        answer.starts_with("[Protogate demo]") && answer.contains("What is cold brew?"),
        "{answer}"
    );
    let sources = w
        .script(
            "return [...document.querySelectorAll('.sources a.source')].map((a) => \
             ({href: a.href, target: a.target, text: a.innerText}))",
            json!([]),
        )
        .await;
    let sources = sources.as_array().expect("source links").clone();
    assert_eq!(sources.len(), 3, "{sources:?}");
    for (n, source) in sources.iter().enumerate() {
        let n = n + 1;
        assert_eq!(
            source["href"],
            format!("https://example.com/protogate-demo/{n}")
        );
        assert_eq!(source["target"], "_blank", "opened in the browser");
        assert!(
            source["text"].as_str().unwrap().contains(&format!(
                "[Protogate demo] Result {n} for “What is cold brew?”"
            )),
            "{source}"
        );
    }
    w.screenshot("chat-search-light").await;
    // A source opens in the browser (through the opener plugin), not in the window.
    w.click(".sources a.source").await;
    let mut opened = String::new();
    for _ in 0..50 {
        opened = std::fs::read_to_string(&window.opened).unwrap_or_default();
        if !opened.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(opened.trim(), "https://example.com/protogate-demo/1");
    let still_here = w.script("return location.href", json!([])).await;
    assert!(
        still_here
            .as_str()
            .unwrap()
            .starts_with("tauri://localhost"),
        "the window stays on the app: {still_here}"
    );

    // The same with a model behind it: the results and the instruction to cite their URLs
    // are in the system prompt it was sent; the question is the user's message.
    let chosen = w
        .script(
            "const s = document.querySelector('#chat-model'); s.value = 'mock/gpt-test'; return s.value",
            json!([]),
        )
        .await;
    assert_eq!(chosen, "mock/gpt-test");
    w.type_into("#chat-input", "And iced coffee?").await;
    w.click("#chat-send").await;
    w.wait_script(LAST_ANSWER, |t| t == "Hello world").await;
    let body = mock.bodies().last().cloned().expect("the model was asked");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system", "{body}");
    let system = messages[0]["content"].as_str().unwrap();
    for n in 1..=3 {
        assert!(
            system.contains(&format!("URL: https://example.com/protogate-demo/{n}")),
            "{system}"
        );
    }
    assert!(
        system.contains("[Protogate demo] Result 1 for “And iced coffee?”")
            && system.contains("cite"),
        "{system}"
    );
    assert_eq!(messages.last().unwrap()["content"], "And iced coffee?");
    let lists = w
        .script(
            "return document.querySelectorAll('.sources').length",
            json!([]),
        )
        .await;
    assert_eq!(lists, 2, "each searched answer has its sources");

    // The microphone. This webview has no microphone to record from, so a click asks for
    // an audio file; the spoken WAV is chosen (WebDriver's file upload) and its
    // transcript lands in the composer.
    let can_record = w
        .script(
            "return Boolean(navigator.mediaDevices?.getUserMedia && window.MediaRecorder)",
            json!([]),
        )
        .await;

    w.click("#chat-mic").await;
    let note = w.wait_text("#chat-note", |t| !t.is_empty()).await;
    eprintln!("the webview can record: {can_record}; the window says: {note}");
    assert!(
        note.contains("choose an audio file"),
        "recording here: {can_record}; the window says: {note}"
    );
    let input = w.wait("#chat-audio-file").await;
    w.send(
        reqwest::Method::POST,
        &format!("/element/{input}/value"),
        Some(json!({"text": wav.display().to_string()})),
    )
    .await;
    let composed = w
        .wait_script("return document.querySelector('#chat-input').value", |t| {
            !t.is_empty()
        })
        .await;
    assert!(
        composed.starts_with("[Protogate demo] heard ") && composed.contains(" s of audio"),
        "the transcript is in the composer: {composed}"
    );
    let note = w.wait_text("#chat-note", |t| !t.is_empty()).await;
    assert!(note.starts_with("Transcribed by demo"), "{note}");
    w.screenshot("chat-voice-light").await;
    window.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_is_made_from_two_providers_answers_as_a_model_and_is_removed() {
    let mock = MockOpenAi::start().await;
    // `down` is a server on this machine that is not running: its port refuses.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/v1", down.local_addr().unwrap());
    drop(down);
    let window = Window::open(settings(json!({
        "default_provider": "demo",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "down", "kind": "openai", "base_url": down_url, "default_model": "gpt-test"},
            {"id": "mock", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"},
        ],
    })))
    .await;
    let w = &window.w;
    let url = w
        .wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;
    let base_url = url.trim_end_matches("/api/ai-gateway/stream").to_string();

    w.click("[data-view=providers]").await;
    w.wait_text("#route-empty", |t| t.contains("No routes yet"))
        .await;
    w.type_into("#route-form input[name=name]", "fast").await;
    w.click("#route-form select[name=first] option[value=down]")
        .await;
    w.click("#route-form select[name=second] option[value=mock]")
        .await;
    w.click("#route-form button[type=submit]").await;
    let card = w
        .wait_text("[data-route=fast]", |t| t.contains("mock/gpt-test"))
        .await;
    assert!(
        card.contains("down/gpt-test")
            && card.contains("fallback")
            && card.contains("\"model\": \"fast\""),
        "the route shows its strategy, its targets in order and how to use it: {card}"
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(window.home.path().join("settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved["routes"],
        json!([{"name": "fast", "targets": ["down", "mock"], "strategy": "fallback"}])
    );
    w.script(
        "document.querySelector('#routes-header').scrollIntoView()",
        json!([]),
    )
    .await;
    w.screenshot("providers-routes-light").await;

    // A prototype names the route as its model: the first provider is down, the second answers.
    let answer: Value = post_json(
        &format!("{base_url}/v1/chat/completions"),
        None,
        json!({"model": "fast", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(answer["model"], "fast");

    w.click("[data-route=fast] button.danger").await;
    // The empty note is in the page all along, hidden: wait for the card to go, then see it.
    let gone = "return document.querySelector('[data-route=fast]') ? 'listed' : 'gone'";
    w.wait_script(gone, |t| t == "gone").await;
    let empty = "const e = document.querySelector('#route-empty'); \
        return e.hidden ? 'hidden' : e.textContent";
    w.wait_script(empty, |t| t.contains("No routes yet")).await;
    let saved = std::fs::read_to_string(window.home.path().join("settings.json")).unwrap();
    assert!(!saved.contains("\"routes\""), "{saved}");
    window.close().await;
}

/// Traces to Langfuse, set up in Settings as a designer does: the host and public key go to
/// the settings file, the secret key to the keychain (never the file or the page), and the
/// app's next model call reaches Langfuse's OTLP path with Basic auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langfuse_is_set_up_in_settings_with_its_secret_key_in_the_keychain() {
    use base64::Engine as _;
    let receiver = common::otel::Receiver::start().await;
    let window = Window::open(settings(json!({}))).await;
    let (desktop, home, w) = (&window.desktop, window.home.path(), &window.w);
    let url = w
        .wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;
    w.click("[data-view=settings]").await;
    // Loaded: the key's state is read (it shows once Langfuse is chosen).
    let state = "return document.querySelector('#langfuse-key-state').textContent";
    w.wait_script(state, |t| t.contains("missing")).await;
    let choose = "const s = document.querySelector('#traces-form [name=traces_to]'); \
        s.value = 'langfuse'; s.dispatchEvent(new Event('change'))";
    w.script(choose, json!([])).await;
    let secret = "sk-lf-window-0123456789-do-not-leak";
    w.type_into("#traces-form [name=langfuse_host]", &receiver.url)
        .await;
    w.type_into("#traces-form [name=langfuse_public_key]", "pk-lf-window")
        .await;
    w.type_into("#traces-form [name=langfuse_secret_key]", secret)
        .await;
    w.click("#traces-form button[type=submit]").await;
    w.wait_text("#langfuse-key-state", |t| {
        t.contains("set (in the keychain)")
    })
    .await;
    w.script(
        "document.querySelector('#traces-form').scrollIntoView()",
        json!([]),
    )
    .await;
    w.screenshot("settings-traces").await;
    let file = std::fs::read_to_string(home.join("settings.json")).unwrap();
    let written: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(
        written["telemetry"]["langfuse"]["public_key"],
        "pk-lf-window"
    );
    assert!(
        !file.contains(secret),
        "the file never holds the secret key"
    );
    let stored = secret_tool(
        desktop,
        home,
        &["lookup", "service", "protogate", "username", "langfuse"],
    );
    assert_eq!(stored, secret, "it is in the keychain");
    let field = "return document.querySelector('#traces-form [name=langfuse_secret_key]').value";
    assert_eq!(
        w.script(field, json!([])).await,
        "",
        "cleared from the page"
    );
    assert!(!w.text("body").await.contains(secret));

    let answer = post_json(&url, None, json!({"message": "hi"})).await;
    let id = common::otel::request_id(&answer);
    answer.text().await.unwrap();
    let (span, _) = receiver.span_for(&id).await;
    assert_eq!(span["path"], "/api/public/otel/v1/traces");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("pk-lf-window:{secret}"));
    assert_eq!(span["headers"]["authorization"], format!("Basic {basic}"));
    window.close().await;
}

/// A record line as the request log writes it, for a log folder prepared before the app.
fn usage_line(time: &str, provider: &str, model: &str, tokens: (u64, u64)) -> String {
    json!({
        "id": uuid::Uuid::new_v4().simple().to_string(), "time": time, "method": "POST",
        "path": "/v1/chat/completions", "origin": FRAMER_ORIGIN, "provider": provider,
        "model": model, "status": 200, "latency_ms": 840.0, "ttft_ms": 310.0, "bytes_out": 900,
        "usage": {"input_tokens": tokens.0, "output_tokens": tokens.1}, "error": null,
        "prompt": "Write a welcome line", "answer": "Welcome!",
    })
    .to_string()
}

/// The Usage view: what each provider cost today, from log files the app did not write
/// itself (it reads its log folder, so a restart loses nothing) and a request it just
/// served; a model with no price says so until a price is set in the view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_view_shows_each_providers_cost_and_takes_a_price() {
    let mock = MockOpenAi::start().await;
    let logs = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let today = now.date();
    // Today: $0.90 of gpt-4o-mini (2 M tokens in, 1 M out) and a local model with no
    // price; two days ago, a little more, for the 7-day view.
    let mut lines: Vec<String> = (0..3)
        .map(|i| {
            let tokens = if i == 0 {
                (2_000_000, 1_000_000)
            } else {
                (0, 0)
            };
            usage_line(&at(now), "openai", "gpt-4o-mini", tokens)
        })
        .collect();
    // A member's request (team mode): the view adds its "By member" table.
    let mut ollama: Value =
        serde_json::from_str(&usage_line(&at(now), "ollama", "llama3.2", (1200, 800))).unwrap();
    ollama["member"] = json!("ana");
    lines.push(ollama.to_string());
    std::fs::write(
        logs.path().join(format!("requests.{today}.jsonl")),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let earlier = now - time::Duration::days(2);
    std::fs::write(
        logs.path()
            .join(format!("requests.{}.jsonl", earlier.date())),
        usage_line(&at(earlier), "openai", "gpt-4o-mini", (1000, 500)) + "\n",
    )
    .unwrap();

    let window = Window::open(settings(json!({
        "log": {"dir": logs.path()},
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "openai", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-4o-mini"},
        ],
        "usage": {"budgets": {"openai": {"daily_usd": 1, "stop_at_budget": true}}},
    })))
    .await;
    let w = &window.w;
    let url = w
        .wait_text("#endpoint-url", |t| t.starts_with("http://127.0.0.1:"))
        .await;
    let seed = post_json(&url, Some(FRAMER_ORIGIN), json!({"message": "hi"})).await;
    assert!(seed.text().await.unwrap().contains("[DONE]"));

    w.click("[data-view=usage]").await;
    let table = w
        .wait_text("#usage-models", |t| {
            t.contains("demo") && t.contains("$0.90")
        })
        .await;
    assert!(
        table.contains("openai") && table.contains("gpt-4o-mini") && table.contains("llama3.2"),
        "a row per provider and model: {table}"
    );
    assert!(
        table.contains("no price"),
        "an unknown model has no price: {table}"
    );
    let budget = w.text("#usage-budgets").await;
    assert!(
        budget.contains("$0.90 of $1.00 today (90 %)"),
        "today's budget: {budget}"
    );
    let sites = w.text("#usage-sites").await;
    assert!(sites.contains("framercanvas.com"), "{sites}");
    let members = w.text("#usage-members").await;
    assert!(
        members.contains("Member") && members.contains("ana"),
        "{members}"
    );
    let totals = w.text("#usage-totals").await;
    assert!(
        totals.contains("Requests\n5"),
        "four from the files, one just now: {totals}"
    );
    let bars = w
        .script(
            "return document.querySelectorAll('#usage-chart-time rect.requests').length",
            json!([]),
        )
        .await;
    assert_eq!(bars, 1, "today's requests are in this hour's bar");
    w.script(
        "for (const e of [document.scrollingElement, ...document.querySelectorAll('main, section')]) \
         if (e) e.scrollTop = 0",
        json!([]),
    )
    .await;
    w.screenshot("usage-light").await;

    // Seven days: the older record too.
    w.click("#usage-range [data-range='7d']").await;
    w.wait_text("#usage-totals", |t| t.contains("Requests\n6"))
        .await;

    // A price for the local model, set from its "no price" row.
    w.click("#usage-models .no-price + button").await;
    let model = w
        .script(
            "return [...document.querySelectorAll('#usage-price-rows input[name=model]')].pop().value",
            json!([]),
        )
        .await;
    assert_eq!(model, "ollama/llama3.2");
    w.type_into(
        "#usage-price-rows .price-row:last-child input[name=input]",
        "1000",
    )
    .await;
    w.type_into(
        "#usage-price-rows .price-row:last-child input[name=output]",
        "1000",
    )
    .await;
    w.click("#usage-settings button[type=submit]").await;
    let table = w
        .wait_text("#usage-models", |t| !t.contains("no price"))
        .await;
    assert!(
        table.contains("$2.00"),
        "1,200 + 800 tokens at $1000 per million: {table}"
    );
    let saved = std::fs::read_to_string(window.home.path().join("settings.json")).unwrap();
    assert!(
        saved.contains("ollama/llama3.2"),
        "the price is in the settings: {saved}"
    );
    window.close().await;
}
