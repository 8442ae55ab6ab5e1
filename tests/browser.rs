//! A real browser on the path a Framer prototype takes: headless Chromium loads pages that
//! it treats as public (`--ip-address-space-overrides`), so every call to Protogate on
//! loopback meets Chrome's Local Network Access, as from a published Framer site. The
//! permission is granted, or not, through a managed policy, as an administrator would.
//! The pages run the seed `Chat.tsx` loop unchanged, the Framer component from
//! `ui/framer/` (compiled with esbuild against React and a stand-in for `framer`), and the
//! OpenAI JS SDK (over `http://127.0.0.1` and `https://localhost`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::pages::*;
use common::*;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

const CHROMIUM: &str = "/usr/bin/chromium";
const POLICY_DIR: &str = "/etc/chromium/policies/managed";

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

/// One Chromium at a time: the machine has two cores, and each page waits on a stream.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// Grants Local Network Access to `origins` through a managed policy file while alive.
struct Permission(Option<PathBuf>);

impl Permission {
    fn grant(origins: &[String]) -> Self {
        if origins.is_empty() {
            return Permission(None);
        }
        std::fs::create_dir_all(POLICY_DIR).unwrap_or_else(|e| {
            panic!("the tests grant Chrome's permission in {POLICY_DIR} (as root): {e}")
        });
        let path = PathBuf::from(POLICY_DIR).join(format!(
            "protogate-test-{}-{}.json",
            std::process::id(),
            origins.join("_").replace([':', '/', '.'], "-")
        ));
        let policy = json!({ "LocalNetworkAccessAllowedForUrls": origins });
        std::fs::write(&path, policy.to_string()).unwrap();
        Permission(Some(path))
    }
}

impl Drop for Permission {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Opens `url` in headless Chromium, with the `public` addresses treated as public and
/// Local Network Access granted to the `granted` origins, and waits for a report.
async fn visit(
    url: &str,
    public: &[String],
    granted: &[String],
    reports: &mut mpsc::Receiver<Value>,
) -> Value {
    visit_as(url, public, granted, reports, None).await
}

/// As [`visit`], with Chromium's `HOME` (and so its NSS trust store) in `home` when given.
async fn visit_as(
    url: &str,
    public: &[String],
    granted: &[String],
    reports: &mut mpsc::Receiver<Value>,
    home: Option<&std::path::Path>,
) -> Value {
    visit_with(url, public, granted, reports, home, &[]).await
}

/// As [`visit_as`], with `extra` arguments for Chromium (a fake microphone, say).
async fn visit_with(
    url: &str,
    public: &[String],
    granted: &[String],
    reports: &mut mpsc::Receiver<Value>,
    home: Option<&std::path::Path>,
    extra: &[String],
) -> Value {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "Chromium is missing: run the tests through scripts/test.sh, which installs it"
    );
    let _one_at_a_time = BROWSER.lock().await;
    let _permission = Permission::grant(granted);
    let overrides: Vec<String> = public.iter().map(|a| format!("{a}=public")).collect();
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
        .arg(format!(
            "--ip-address-space-overrides={}",
            overrides.join(",")
        ))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .envs(home.map(|h| ("HOME", h)))
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

/// Opens `path` of `pages` as a public page that has Local Network Access granted.
async fn visit_public(pages: &mut Pages, path: &str) -> Value {
    let granted = [pages.origin()];
    visit(
        &pages.url(path),
        &[pages.address()],
        &granted,
        &mut pages.reports,
    )
    .await
}

async fn seed_page(ip: &'static str, endpoint: &str) -> Pages {
    serve_pages(ip, HashMap::from([("/", html(page(endpoint)))])).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_chat_loop_streams_from_a_public_page_once_local_network_access_is_granted() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let endpoint = gw.url("/api/ai-gateway/stream");

    let mut pages = seed_page("127.0.0.1", &endpoint).await;
    let report = visit_public(&mut pages, "/").await;
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

    let mut pages = seed_page("127.0.0.1", &endpoint).await;
    let report = visit(&pages.url("/"), &[pages.address()], &[], &mut pages.reports).await;
    assert_eq!(
        report["ok"], false,
        "without the permission a public page cannot reach loopback: {report}"
    );
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("Failed to fetch"),
        "{report}"
    );

    // A public page whose origin is not allowed: the browser blocks the answer, and the
    // request log says why, even with the permission granted.
    let mut pages = seed_page("127.0.0.2", &endpoint).await;
    let report = visit_public(&mut pages, "/").await;
    assert_eq!(report["ok"], false, "{report}");
    let refused = gw
        .log
        .recent()
        .into_iter()
        .find(|r| r.origin.as_deref() == Some(pages.origin().as_str()))
        .expect("the refused call is in the request log");
    assert_eq!(refused.status, 403);
    assert!(refused.error.unwrap().contains("is not allowed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_framer_component_streams_and_explains_a_missing_permission() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let endpoint = gw.url("/api/ai-gateway/stream");
    let path = format!("/?endpoint={endpoint}");

    let mut pages = component_page("127.0.0.1").await;
    let report = visit_public(&mut pages, &path).await;
    assert_eq!(report["phase"], "done", "{report}");
    let answer = report["answer"].as_str().unwrap();
    assert!(
        answer.starts_with("[Protogate demo]") && answer.contains("Hello from a Framer prototype"),
        "the component shows the streamed answer: {answer}"
    );
    assert_eq!(report["problem"], "");

    let mut pages = component_page("127.0.0.1").await;
    let report = visit(
        &pages.url(&path),
        &[pages.address()],
        &[],
        &mut pages.reports,
    )
    .await;
    assert_eq!(
        report["phase"], "problem",
        "without the permission the component says so instead of hanging: {report}"
    );
    let problem = report["problem"].as_str().unwrap();
    // Headless Chromium turns the question down at once, as a person who dismissed it.
    assert!(
        problem.contains("Local network access") && problem.contains("Allow"),
        "the guidance names the permission and the fix: {problem}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_cross_origin_frame_the_permission_must_be_delegated() {
    let gw = spawn_gateway(settings(json!({
        "cors": {"allowed_origins": ["http://127.0.0.2:*"]},
    })))
    .await;
    let endpoint = gw.url("/api/ai-gateway/stream");
    let mut frame = component_page("127.0.0.2").await;
    let frame_url = frame.url(&format!("/?endpoint={endpoint}"));

    for (allow, phase) in [("", "problem"), (r#"allow="local-network-access""#, "done")] {
        let outer = serve_pages(
            "127.0.0.1",
            HashMap::from([(
                "/",
                html(format!(
                    r#"<!doctype html><title>canvas</title><iframe src="{frame_url}" {allow} width="600" height="400"></iframe>"#
                )),
            )]),
        )
        .await;
        let granted = [outer.origin(), frame.origin()];
        let public = [outer.address(), frame.address()];
        let report = visit(&outer.url("/"), &public, &granted, &mut frame.reports).await;
        assert_eq!(report["phase"], phase, "iframe {allow:?}: {report}");
        if phase == "problem" {
            let problem = report["problem"].as_str().unwrap();
            assert!(
                problem.contains("frame") && problem.contains("preview"),
                "a frame that was not given the permission gets the canvas guidance: {problem}"
            );
        } else {
            assert!(report["answer"]
                .as_str()
                .unwrap()
                .starts_with("[Protogate demo]"));
        }
    }
}

/// A page that runs the OpenAI JS SDK (the bundle of `tests/browser/sdk-page.js`)
/// against the `?base=` URL.
async fn sdk_pages() -> Pages {
    serve_pages(
        "127.0.0.1",
        HashMap::from([
            (
                "/",
                html(r#"<!doctype html><title>sdk</title><script src="/sdk.js"></script>"#.into()),
            ),
            ("/sdk.js", script("sdk.js").await),
        ]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_sdk_streams_from_a_public_page() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let mut pages = sdk_pages().await;
    let report = visit_public(&mut pages, &format!("/?base={}", gw.url("/v1"))).await;
    assert_eq!(report["ok"], true, "{report}");
    let text = report["text"].as_str().unwrap();
    assert!(
        text.starts_with("[Protogate demo]") && text.contains("Hello from the OpenAI SDK"),
        "{text}"
    );
}

/// The same SDK to `https://localhost` (the endpoint Safari needs, and Chrome takes too),
/// from a public page in a Chromium that trusts Protogate's local CA through
/// `protogate tls trust`, with no flag that weakens certificate checks.
#[tokio::test(flavor = "multi_thread")]
async fn the_openai_sdk_streams_from_a_public_page_over_https_localhost() {
    require_secret_service();
    let home = tempfile::tempdir().unwrap();
    let (_gateway, _, https) = serve_https(home.path(), json!({})).await;
    protogate_in(home.path(), &["tls", "trust"]);
    let mut pages = sdk_pages().await;
    let granted = [pages.origin()];
    let report = visit_as(
        &pages.url(&format!("/?base={https}/v1")),
        &[pages.address()],
        &granted,
        &mut pages.reports,
        Some(home.path()),
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    let text = report["text"].as_str().unwrap();
    assert!(
        text.starts_with("[Protogate demo]") && text.contains("Hello from the OpenAI SDK"),
        "{text}"
    );
}

/// ChatKit.js's request loop, as the ChatKit component in `ui/framer/` runs it: every call
/// is a `fetch` marked `targetAddressSpace: "loopback"` to `/api/chatkit`, streamed
/// answers read as SSE from the body. Creates a thread (unless `list_only`), adds a
/// message, lists the threads, and reports.
fn chatkit_page(base: &str, list_only: bool) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>chatkit</title>
<script>
const base = {base:?};
const call = (body) => fetch(base + "/api/chatkit", {{
  method: "POST",
  headers: {{ "Content-Type": "application/json" }},
  body: JSON.stringify(body),
  targetAddressSpace: "loopback",
}});
async function events(body) {{
  const response = await call(body);
  if (!response.ok) throw new Error("ChatKit request failed: " + response.status);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", out = [];
  while (true) {{
    const {{ done, value }} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {{ stream: true }});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {{
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (block.startsWith("data: ")) out.push(JSON.parse(block.slice(6)));
    }}
  }}
  return out;
}}
const input = (text) => ({{ content: [{{ type: "input_text", text }}], attachments: [], inference_options: {{}} }});
(async () => {{
  const report = {{ ok: false }};
  try {{
    if (!{list_only}) {{
      const created = await events({{ type: "threads.create", params: {{ input: input("Hi from ChatKit") }} }});
      const thread = created.find((e) => e.type === "thread.created").thread.id;
      const more = await events({{ type: "threads.add_user_message", params: {{ thread_id: thread, input: input("And again") }} }});
      const answer = (list) => list.filter((e) => e.type === "thread.item.updated" && e.update.type.endsWith("text_delta"))
        .map((e) => e.update.delta).join("");
      report.first = answer(created);
      report.second = answer(more);
      report.types = created.map((e) => e.type);
    }}
    const threads = await (await call({{ type: "threads.list", params: {{}} }})).json();
    report.threads = threads.data.map((t) => t.title);
    report.ok = true;
  }} catch (error) {{
    report.error = String(error);
  }}
  await fetch("/report", {{ method: "POST", body: JSON.stringify(report) }});
}})();
</script>"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn chatkit_streams_from_a_public_page_and_threads_stay_with_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn_gateway(settings(json!({"chatkit": {"dir": dir.path()}}))).await;
    let base = gw.url("");
    let mut pages = serve_pages(
        "127.0.0.1",
        HashMap::from([("/", html(chatkit_page(&base, false)))]),
    )
    .await;
    let report = visit_public(&mut pages, "/").await;
    assert_eq!(report["ok"], true, "{report}");
    let first = report["first"].as_str().unwrap();
    assert!(
        first.starts_with("[Protogate demo]") && first.contains("Hi from ChatKit"),
        "{first}"
    );
    assert!(
        report["second"].as_str().unwrap().contains("And again"),
        "{report}"
    );
    assert_eq!(report["threads"], json!(["Hi from ChatKit"]));
    assert_eq!(report["types"][0], "thread.created", "{report}");

    // Another prototype (another origin) lists no threads: it cannot see this one.
    let mut other = serve_pages(
        "127.0.0.1",
        HashMap::from([("/", html(chatkit_page(&base, true)))]),
    )
    .await;
    let report = visit_public(&mut other, "/").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["threads"], json!([]), "{report}");
}

/// The wiring spec's `streamChat`: `new EventSource(url)` on `GET /api/chat/stream`. The
/// page adds up the text and reports once the EventSource has closed for good, which only
/// the server's `204` after `[DONE]` does (the page never calls `close()`). Where the
/// browser gives up on a broken connection itself, the page opens a new EventSource with
/// `last_event_id`, as the README tells designers to.
fn eventsource_page(url: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>eventsource</title>
<script>
const url = {url:?};
let text = "", ids = [], done = 0, errors = 0, reopened = 0, started = null, lastId = "";
function open(u) {{
  const source = new EventSource(u);
  source.onmessage = (e) => {{
    ids.push(e.lastEventId);
    lastId = e.lastEventId;
    if (e.data === "[DONE]") {{ done++; return; }}
    const data = JSON.parse(e.data);
    if (data.conversation_id) started = data;
    if (data.text) text += data.text;
  }};
  source.onerror = () => {{
    errors++;
    if (source.readyState !== EventSource.CLOSED) return;
    if (!done && lastId && !reopened) {{
      reopened++;
      open(url + "&last_event_id=" + encodeURIComponent(lastId));
      return;
    }}
    fetch("/report", {{ method: "POST", body: JSON.stringify({{ text, ids, done, errors, reopened, started }}) }});
  }};
}}
open(url);
</script>"#
    )
}

/// A TCP proxy in front of the gateway that cuts its first connection right after
/// passing on the event holding `cut_after`; later connections pass whole. `abrupt`
/// drops the connection mid-body, as a lost network does; otherwise the body is ended
/// cleanly, as a proxy that gives up on a slow upstream ends its answer. `cut` fires
/// when it has cut.
async fn cutting_proxy(
    target: std::net::SocketAddr,
    cut_after: &'static str,
    abrupt: bool,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut_tx, cut_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut cut_tx = Some(cut_tx);
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let upstream = tokio::net::TcpStream::connect(target).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut up_read, mut up_write) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
            });
            let mut cut = cut_tx.take();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = up_read.read(&mut buf).await {
                    if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if cut.is_none() {
                        continue;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    let whole = text
                        .find(cut_after)
                        .is_some_and(|at| text[at..].contains("\n\n") && text.ends_with("\r\n"));
                    if whole {
                        if !abrupt {
                            // The chunked body's last chunk.
                            let _ = client_write.write_all(b"0\r\n\r\n").await;
                        }
                        let _ = client_write.shutdown().await;
                        let _ = cut.take().unwrap().send(());
                        break;
                    }
                }
            });
        }
    });
    (addr, cut_rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eventsource_streams_the_answer_resumes_after_a_cut_and_asks_the_model_once() {
    let openai = common::mock_openai::MockOpenAi::start().await;
    let gw = spawn_with_openai("openai", &openai.base_url, json!({})).await;

    // A whole answer: the browser reconnects after [DONE], is told 204, and stops.
    let url = gw.url("/api/chat/stream?message=Hello&provider=openai");
    let mut pages = serve_pages(
        "127.0.0.1",
        HashMap::from([("/", html(eventsource_page(&url)))]),
    )
    .await;
    let report = visit_public(&mut pages, "/").await;
    assert_eq!(report["text"], "Hello world", "{report}");
    assert_eq!(
        (report["done"].as_u64(), report["reopened"].as_u64()),
        (Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(report["started"]["model"], "openai/gpt-test", "{report}");
    let ids = report["ids"].as_array().unwrap();
    assert!(
        ids.iter().all(|id| !id.as_str().unwrap().is_empty()),
        "{report}"
    );
    let told_to_stop = gw
        .log
        .recent()
        .into_iter()
        .any(|r| r.path == "/api/chat/stream" && r.status == 204);
    assert!(told_to_stop, "the reconnect after [DONE] was answered 204");
    assert_eq!(
        openai.bodies().len(),
        1,
        "the reconnect did not ask the model again"
    );

    // Cut mid-answer, once cleanly (the EventSource comes back on its own) and once
    // abruptly (Chromium gives that EventSource up; the page opens another where it was).
    for (abrupt, reopened) in [(false, 0), (true, 1)] {
        let calls = openai.bodies().len();
        let (proxy, cut) = cutting_proxy(gw.addr, "first", abrupt).await;
        let url = format!("http://{proxy}/api/chat/stream?message=Hello&model=openai/gated");
        let mut pages = serve_pages(
            "127.0.0.1",
            HashMap::from([("/", html(eventsource_page(&url)))]),
        )
        .await;
        let release = openai.clone();
        tokio::spawn(async move {
            let _ = cut.await;
            // The rest of the answer arrives while the page is away.
            release.release();
        });
        let report = visit_public(&mut pages, "/").await;
        assert_eq!(
            report["text"], "first last",
            "no word lost or doubled (abrupt: {abrupt}): {report}"
        );
        assert_eq!(report["done"], 1, "{report}");
        assert_eq!(report["reopened"], reopened, "{report}");
        assert_eq!(
            openai.bodies().len(),
            calls + 1,
            "one upstream call for the cut answer: {report}"
        );
    }
    assert_eq!(openai.dropped_streams(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_chat_loop_reads_the_chat_api_stream_unchanged() {
    // `POST /api/chat/stream` opens with an event that names the conversation and has no
    // `text`: the seed's reader passes over it and shows the answer whole.
    let gw = spawn_gateway(settings(json!({}))).await;
    let mut pages = seed_page("127.0.0.1", &gw.url("/api/chat/stream")).await;
    let report = visit_public(&mut pages, "/").await;
    assert_eq!(report["ok"], true, "{report}");
    let shown = report["shown"].as_str().unwrap();
    assert!(shown.starts_with("[Protogate demo]"), "{shown}");
    assert!(
        shown.ends_with("no change to your component."),
        "no event was lost: {shown}"
    );
    assert!(!shown.contains("conversation_id"), "{shown}");
}

/// The voice component's test page (`tests/browser/voice-page.jsx`), opened as a public
/// page with Local Network Access granted and `wav` as Chromium's microphone; `query`
/// tells the page how long to hold the button and how many turns to take.
async fn visit_voice(wav: &std::path::Path, query: &str) -> Value {
    let page = r#"<!doctype html><meta charset="utf-8"><title>voice prototype</title>
<div id="root"></div><script src="/voice.js"></script>"#;
    let mut pages = serve_pages(
        "127.0.0.1",
        HashMap::from([
            ("/", html(page.to_string())),
            ("/voice.js", script("voice.js").await),
        ]),
    )
    .await;
    let microphone = [
        "--use-fake-ui-for-media-stream".to_string(),
        "--use-fake-device-for-media-stream".to_string(),
        format!("--use-file-for-fake-audio-capture={}", wav.display()),
    ];
    let granted = [pages.origin()];
    let mut report = visit_with(
        &pages.url(&format!("/?{query}")),
        &[pages.address()],
        &granted,
        &mut pages.reports,
        None,
        &microphone,
    )
    .await;
    report["origin"] = json!(pages.origin());
    report
}

/// A designer's voice assistant prototype: `ui/framer/ProtogateVoice.tsx` on a public page
/// in Chromium, whose microphone is a spoken WAV. Held for 2.5 s and let go, the recording
/// goes through `/api/voice/process` (the demo hears it and says for how long), and the
/// answer streams from `/api/chat/stream`; click, click makes a second turn in the same
/// conversation.
#[tokio::test(flavor = "multi_thread")]
async fn the_voice_component_transcribes_the_microphone_and_streams_the_answer() {
    let speech = common::speech::Recordings::new();
    let gw = spawn_gateway(settings(json!({}))).await;
    let report = visit_voice(
        &speech.path("speech.wav"),
        &format!("endpoint={}&hold=2500", gw.url("")),
    )
    .await;

    let first = &report["turns"][0];
    assert_eq!(first["while_held"], "listening", "{report}");
    assert_eq!(first["phase"], "done", "{report}");
    let transcript = first["transcript"].as_str().unwrap();
    let seconds: f64 = transcript
        .strip_prefix("[Protogate demo] heard ")
        .and_then(|rest| rest.split(" s of audio").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the demo's transcript is shown: {transcript:?}"));
    assert!(
        (1.5..6.0).contains(&seconds),
        "about the 2.5 s the button was held, sent as WAV: {transcript}"
    );
    let answer = first["answer"].as_str().unwrap();
    assert!(
        answer.starts_with("[Protogate demo] This is the built-in demo provider")
            && answer.contains(&format!("heard {seconds:.1} s of audio"))
            && answer.ends_with("no change to your component."),
        "the answer to the transcript streamed in whole: {answer}"
    );
    let conversation = first["conversation"].as_str().unwrap();
    assert!(conversation.len() > 4, "{report}");

    let second = &report["turns"][1];
    assert_eq!(second["while_clicked"], "listening", "{report}");
    assert_eq!(second["phase"], "done", "{report}");
    assert!(
        second["transcript"]
            .as_str()
            .unwrap()
            .starts_with("[Protogate demo] heard "),
        "{report}"
    );
    assert_eq!(
        second["conversation"], conversation,
        "the second turn continues the conversation: {report}"
    );
    let origin = report["origin"].as_str().unwrap();
    let records: Vec<_> = gw
        .log
        .recent()
        .into_iter()
        .filter(|r| r.origin.as_deref() == Some(origin) && r.method == "POST")
        .map(|r| (r.path, r.status))
        .collect();
    for path in ["/api/voice/process", "/api/chat/stream"] {
        let ok = records.iter().filter(|r| *r == &(path.to_string(), 200));
        assert_eq!(ok.count(), 2, "{path}: {records:?}");
    }
}

/// The same component, heard by a real recognizer: Chromium's microphone plays espeak-ng
/// saying "one two three four five", MediaRecorder records it (Opus), the component sends
/// it as 16 kHz WAV, and the PocketSphinx server behind an OpenAI-compatible voice
/// provider writes down the digits; the demo then answers the transcript.
#[tokio::test(flavor = "multi_thread")]
async fn the_voice_component_is_heard_by_a_real_recognizer() {
    use common::speech::{heard_the_sentence, Recordings, Sphinx};
    const KEY: &str = "sk-sphinx-browser-0123456789";
    let speech = Recordings::new();
    let sphinx = Sphinx::start(KEY).await;
    let gw = spawn_gateway_env(
        settings(json!({
            "default_voice_provider": "local",
            "providers": [
                {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
                {"id": "local", "kind": "openai", "base_url": sphinx.base_url,
                 "default_model": "chat-model", "transcription_model": "sphinx-digits"},
            ],
        })),
        &[("PROTOGATE_SECRET_LOCAL", KEY)],
    )
    .await;
    let hold = ((speech.seconds() + 1.0) * 1000.0) as u64;
    let report = visit_voice(
        &speech.path("speech.wav"),
        &format!("endpoint={}&hold={hold}&turns=1", gw.url("")),
    )
    .await;
    let first = &report["turns"][0];
    assert_eq!(first["phase"], "done", "{report}");
    let transcript = first["transcript"].as_str().unwrap();
    assert!(
        heard_the_sentence(transcript),
        "the recognizer heard the spoken digits through the browser's microphone: {report}"
    );
    assert!(
        first["answer"]
            .as_str()
            .unwrap()
            .contains(&format!("You asked: “{transcript}”")),
        "{report}"
    );
}

/// A page that chats over `/ws/chat` with the access token as a subprotocol (a browser
/// cannot set headers on a WebSocket) and reports the text.
fn socket_page(endpoint: &str, token: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>prototype</title>
<div id="out"></div>
<script>
async function report(result) {{
  await fetch("/report", {{ method: "POST", body: JSON.stringify(result) }});
}}
const socket = new WebSocket({endpoint:?}, ["protogate", {token:?}]);
let text = "";
socket.onopen = () => socket.send(JSON.stringify(
  {{ type: "chat", id: "b1", message: "Hello from a browser socket" }}));
socket.onmessage = (event) => {{
  const frame = JSON.parse(event.data);
  if (frame.type === "delta") {{
    text += frame.text;
    document.getElementById("out").textContent = text;
  }} else if (frame.type === "done") {{
    report({{ ok: true, text, protocol: socket.protocol, finish: frame.finish_reason }});
    socket.close();
  }} else if (frame.type === "error") {{
    report({{ ok: false, error: frame.error }});
  }}
}};
socket.onerror = () => report({{ ok: false, error: "the socket failed" }});
</script>"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_streams_an_answer_over_a_websocket_from_a_public_page() {
    const TOKEN: &str = "pg_wsTokenNeverLogged0123456789";
    let gw = spawn_gateway_env(
        settings(json!({"require_access_token": true})),
        &[("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", TOKEN)],
    )
    .await;
    let endpoint = gw.url("/ws/chat").replacen("http://", "ws://", 1);
    let mut pages = serve_pages(
        "127.0.0.1",
        HashMap::from([("/", html(socket_page(&endpoint, TOKEN)))]),
    )
    .await;
    let report = visit_public(&mut pages, "/").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["protocol"], "protogate",
        "the token is never echoed: {report}"
    );
    assert_eq!(report["finish"], "stop");
    let text = report["text"].as_str().unwrap();
    assert!(
        text.starts_with("[Protogate demo]") && text.contains("Hello from a browser socket"),
        "{text}"
    );
    let record = gw.record_for("/ws/chat", "WS").await;
    assert_eq!(record.origin.as_deref(), Some(pages.origin().as_str()));
    assert_eq!(record.chat_id.as_deref(), Some("b1"));
    assert!(!gw.log_files_text().await.contains(TOKEN));
}
