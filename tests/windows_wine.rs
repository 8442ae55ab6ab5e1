//! Protogate for Windows, cross-built on this machine (`scripts/windows-build.sh`) and run
//! under Wine: the gateway answers a Linux client with CORS over http and https, keys go to
//! the Credential Manager and reach an upstream, `tls` uses the user's Root store, settings
//! land under `%APPDATA%`, the GUI-subsystem app still prints from a terminal, and the app
//! without WebView2 says so in words. Skipped, saying why, only where Wine is not installed.
//! One Wine prefix for the whole file (a prefix takes seconds to make); tests take turns.
#![cfg(target_os = "linux")]

#[path = "common/mock_openai.rs"]
#[allow(dead_code)]
mod mock_openai;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use mock_openai::MockOpenAi;
use serde_json::{json, Value};

struct Wine {
    prefix: tempfile::TempDir,
    /// The headless build (a console program) and the desktop app (GUI subsystem).
    headless: PathBuf,
    desktop: PathBuf,
}

static WINE: OnceLock<Option<Wine>> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The prefix and the executables, made once; `None` (the test passes, saying why) only
/// where Wine is not installed.
fn wine() -> Option<(&'static Wine, MutexGuard<'static, ()>)> {
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let wine = WINE.get_or_init(|| {
        if !on_path("wine") {
            eprintln!(
                "windows_wine: SKIPPED: Wine is not installed (Debian: apt install wine64 wine; \
                 scripts/install-deps.sh test installs it)"
            );
            return None;
        }
        let dir = root().join("target/cross/windows");
        let (headless, desktop) = (
            dir.join("protogate-headless.exe"),
            dir.join("protogate.exe"),
        );
        if !headless.exists() || !desktop.exists() {
            let built = Command::new(root().join("scripts/windows-build.sh"))
                .status()
                .expect("run scripts/windows-build.sh");
            assert!(built.success(), "scripts/windows-build.sh failed");
        }
        let prefix = tempfile::tempdir().unwrap();
        let boot = Command::new("wineboot")
            .arg("-i")
            .env("WINEPREFIX", prefix.path())
            .env("WINEDEBUG", "-all")
            .env_remove("DISPLAY")
            .output()
            .expect("wineboot");
        assert!(boot.status.success(), "wineboot failed: {boot:?}");
        // Wine 8 lacks bcryptprimitives.dll (ProcessPrng, imported by Rust's std): a
        // stand-in, built here from tests/windows/bcryptprimitives.c.
        let dll = prefix
            .path()
            .join("drive_c/windows/system32/bcryptprimitives.dll");
        let cc = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(&dll)
            .arg(root().join("tests/windows/bcryptprimitives.c"))
            .arg("-ladvapi32")
            .status()
            .expect("x86_64-w64-mingw32-gcc (Debian: gcc-mingw-w64-x86-64)");
        assert!(cc.success(), "cannot build the bcryptprimitives stand-in");
        Some(Wine {
            prefix,
            headless,
            desktop,
        })
    });
    wine.as_ref().map(|w| (w, turn))
}

impl Wine {
    fn appdata(&self) -> PathBuf {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        self.prefix
            .path()
            .join(format!("drive_c/users/{user}/AppData/Roaming"))
    }

    fn command(&self, exe: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("wine");
        cmd.arg(exe)
            .args(args)
            .env("WINEPREFIX", self.prefix.path())
            .env("WINEDEBUG", "-all")
            .env_remove("DISPLAY")
            .env_remove("PROTOGATE_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `exe args` to its end with `stdin`, within a minute.
    fn run(&self, exe: &Path, args: &[&str], stdin: &str) -> Output {
        let mut child = self.command(exe, args).spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("protogate.exe {args:?} did not finish within a minute");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }

    /// Ends the prefix's Wine session: the next program starts a new one, with its own
    /// environment. Wine's desktop process belongs to the session and keeps the display
    /// (or the lack of one) of the program that started it, so a GUI run after a console
    /// one found no display driver, and the reverse would leave a window behind.
    fn end_session(&self) {
        let _ = Command::new("wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.prefix.path())
            .status();
        self.settle();
    }

    /// Waits for every process of the prefix, so the registry is on disk.
    fn settle(&self) {
        let _ = Command::new("wineserver")
            .arg("-w")
            .env("WINEPREFIX", self.prefix.path())
            .status();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `Z:\…`: a Linux path as the Windows program sees it.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

struct Served {
    child: Child,
    http: String,
    https: Option<u16>,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `protogate.exe serve --port 0` with `settings`, once it prints where it listens.
fn serve(wine: &Wine, exe: &Path, dir: &Path, settings: &Value) -> Served {
    let config = dir.join("settings.json");
    std::fs::write(&config, serde_json::to_vec_pretty(settings).unwrap()).unwrap();
    let mut child = wine
        .command(
            exe,
            &["serve", "--port", "0", "--config", &windows_path(&config)],
        )
        .spawn()
        .unwrap();
    let (tx, stderr) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let http = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve printed no address: {line:?}"))
        .to_string();
    let https = line
        .split_whitespace()
        .find(|w| w.starts_with("https://localhost:"))
        .map(|w| w.rsplit(':').next().unwrap().parse().unwrap());
    Served {
        child,
        http,
        https,
        stderr,
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn seed_request(url: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Origin: https://framer.com",
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"message":"hi"}"#,
    ];
    args.extend_from_slice(extra);
    let endpoint = format!("{url}/api/ai-gateway/stream");
    args.push(&endpoint);
    curl(&args)
}

fn assert_seed_answer(answer: &str) {
    let lower = answer.to_ascii_lowercase();
    assert!(lower.starts_with("http/"), "{answer}");
    assert!(
        lower.contains("access-control-allow-origin: https://framer.com"),
        "no CORS header: {answer}"
    );
    assert!(
        lower.contains("content-type: text/event-stream"),
        "{answer}"
    );
    assert!(answer.contains("data: {\"text\":"), "{answer}");
    assert!(answer.trim_end().ends_with("data: [DONE]"), "{answer}");
}

#[test]
fn serve_answers_the_seed_route_with_cors_over_http_and_https() {
    let Some((wine, _turn)) = wine() else { return };
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"port": 0, "https": {"enabled": true, "port": 0}});
    let served = serve(wine, &wine.headless, dir.path(), &settings);
    assert_seed_answer(&seed_request(&served.http, &[]));

    // https://localhost with the install's own CA, which curl is told to trust.
    let port = served.https.expect("serve printed no https address");
    let ca = dir.path().join("ca.pem");
    let out = wine.run(
        &wine.headless,
        &[
            "tls",
            "export",
            &windows_path(&ca),
            "--config",
            &windows_path(&dir.path().join("settings.json")),
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE KEY"));
    let url = format!("https://localhost:{port}");
    assert_seed_answer(&seed_request(&url, &["--cacert", ca.to_str().unwrap()]));
    // A disallowed origin gets no CORS header.
    let refused = curl(&[
        "-X",
        "POST",
        "-H",
        "Origin: https://evil.example",
        "--data",
        r#"{"message":"hi"}"#,
        &format!("{}/api/ai-gateway/stream", served.http),
    ]);
    assert!(!refused
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));
}

#[test]
fn keys_live_in_the_credential_manager_and_reach_the_upstream() {
    let Some((wine, _turn)) = wine() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(MockOpenAi::start());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("settings.json");
    let settings = json!({
        "port": 0, "https": {"enabled": false},
        "providers": [{"id": "wine-oai", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"}],
        "default_provider": "wine-oai",
    });
    std::fs::write(&config, settings.to_string()).unwrap();
    let cfg = windows_path(&config);
    // A made-up key, unique to this run; never printed.
    let key = format!("sk-wine-{}", uuid::Uuid::new_v4().simple());

    let set = wine.run(
        &wine.headless,
        &["secrets", "set", "wine-oai", "--config", &cfg],
        &key,
    );
    assert!(set.status.success(), "{}", text(&set));
    let status = wine.run(&wine.headless, &["secrets", "status", "--config", &cfg], "");
    let shown = text(&status);
    assert!(
        shown.contains("wine-oai") && shown.contains("keychain"),
        "{shown}"
    );
    assert!(!shown.contains("cannot list"), "{shown}");
    assert!(!shown.contains(&key));

    let served = serve(wine, &wine.headless, dir.path(), &settings);
    let answer = seed_request(&served.http, &[]);
    assert!(answer.contains("data: [DONE]"), "{answer}");
    assert_eq!(
        mock.authorizations().last().cloned().flatten().as_deref(),
        Some(format!("Bearer {key}").as_str()),
        "the upstream did not get the key from the Credential Manager"
    );
    drop(served);

    // The store's search finds Protogate's entries: a key no provider uses is listed.
    let other = dir.path().join("other.json");
    std::fs::write(&other, json!({"https": {"enabled": false}}).to_string()).unwrap();
    let listed = text(&wine.run(
        &wine.headless,
        &["secrets", "status", "--config", &windows_path(&other)],
        "",
    ));
    assert!(
        listed.contains("wine-oai") && listed.contains("used by no provider"),
        "{listed}"
    );

    let delete = wine.run(
        &wine.headless,
        &["secrets", "delete", "wine-oai", "--config", &cfg],
        "",
    );
    assert!(text(&delete).contains("Removed"), "{}", text(&delete));
    let after = text(&wine.run(&wine.headless, &["secrets", "status", "--config", &cfg], ""));
    assert!(
        !after.contains("wine-oai                 openai         set"),
        "{after}"
    );

    // Nothing of the key in a file Protogate wrote (Wine keeps its Credential Manager in
    // its registry files, which are the store itself, and checked apart below).
    wine.settle();
    for file in walk(dir.path()).into_iter().chain(walk(&wine.appdata())) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&key),
            "the key is in {}",
            file.display()
        );
    }
    let registry = std::fs::read_to_string(wine.prefix.path().join("user.reg")).unwrap();
    assert!(
        !registry.contains(&key),
        "the key is in the registry in plain text"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn tls_trust_and_untrust_use_the_users_root_store_and_settings_go_to_appdata() {
    let Some((wine, _turn)) = wine() else { return };
    // No --config: the default place, which on Windows is under %APPDATA%.
    let status = text(&wine.run(&wine.headless, &["tls", "status"], ""));
    assert!(
        status.contains("CA") || status.contains("Local CA"),
        "{status}"
    );
    let settings = wine
        .appdata()
        .join("protogate/protogate/config/settings.json");
    assert!(settings.exists(), "no settings at {}", settings.display());

    let trust = wine.run(&wine.headless, &["tls", "trust"], "");
    let said = text(&trust);
    assert!(trust.status.success(), "{said}");
    assert!(said.contains(r"Cert:\CurrentUser\Root"), "{said}");
    assert!(said.contains("certutil -addstore Root"), "{said}");
    let status = text(&wine.run(&wine.headless, &["tls", "status"], ""));
    assert!(
        status.contains(r"Trusted in: Cert:\CurrentUser\Root"),
        "{status}"
    );
    wine.settle();
    let registry = std::fs::read_to_string(wine.prefix.path().join("user.reg")).unwrap();
    assert!(registry.contains(r"SystemCertificates\\Root\\Certificates\\"));

    let untrust = text(&wine.run(&wine.headless, &["tls", "untrust"], ""));
    assert!(
        untrust.contains(r"Removed the local CA from: Cert:\CurrentUser\Root"),
        "{untrust}"
    );
    let status = text(&wine.run(&wine.headless, &["tls", "status"], ""));
    assert!(status.contains("no store of this user yet"), "{status}");
    let again = text(&wine.run(&wine.headless, &["tls", "untrust"], ""));
    assert!(again.contains("in none of this user's stores"), "{again}");
}

#[test]
fn the_gui_subsystem_app_still_prints_from_a_terminal() {
    let Some((wine, _turn)) = wine() else { return };
    // Built for the GUI subsystem (no console window from the Start menu)...
    assert_eq!(
        pe_subsystem(&wine.desktop),
        2,
        "the app is not a GUI-subsystem program"
    );
    assert_eq!(
        pe_subsystem(&wine.headless),
        3,
        "the headless build is not a console program"
    );
    // ...and its command line still prints and logs.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("settings.json");
    std::fs::write(&config, json!({"https": {"enabled": false}}).to_string()).unwrap();
    let status = wine.run(
        &wine.desktop,
        &["secrets", "status", "--config", &windows_path(&config)],
        "",
    );
    assert!(text(&status).contains("demo"), "{}", text(&status));
    let settings = json!({"port": 0, "https": {"enabled": false}});
    let served = serve(wine, &wine.desktop, dir.path(), &settings);
    assert!(served.http.starts_with("http://127.0.0.1:"));
    let log = served.stderr.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(log.starts_with("protogate: settings "), "{log}");
    assert_seed_answer(&seed_request(&served.http, &[]));
}

/// The PE header's Subsystem field: 2 GUI, 3 console.
fn pe_subsystem(exe: &Path) -> u16 {
    let mut bytes = vec![];
    std::fs::File::open(exe)
        .unwrap()
        .take(4096)
        .read_to_end(&mut bytes)
        .unwrap();
    let pe = u32::from_le_bytes(bytes[0x3c..0x40].try_into().unwrap()) as usize;
    assert_eq!(&bytes[pe..pe + 4], b"PE\0\0");
    // Signature (4) + COFF header (20), then the optional header's Subsystem at 68.
    let at = pe + 24 + 68;
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

#[test]
fn the_app_without_webview2_says_what_is_missing_and_keeps_the_gateway() {
    let Some((wine, _turn)) = wine() else { return };
    if !on_path("Xvfb") {
        panic!("Xvfb is missing (scripts/install-deps.sh test installs it)");
    }
    // Xvfb picks a free display and writes its number once it accepts clients: a fixed
    // number and a fixed wait failed under load (Wine found no display, and the tray,
    // with no window to attach to, failed for want of one).
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut number = String::new();
    BufReader::new(xvfb.stdout.take().unwrap())
        .read_line(&mut number)
        .unwrap();
    let display = format!(":{}", number.trim());
    assert!(display.len() > 1, "Xvfb did not start");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("settings.json");
    std::fs::write(
        &config,
        json!({"port": port, "https": {"enabled": false}}).to_string(),
    )
    .unwrap();
    wine.end_session();
    let mut cmd = wine.command(&wine.desktop, &["--config", &windows_path(&config)]);
    cmd.env("DISPLAY", &display).env("WINEDEBUG", "err+seh");
    let mut app = cmd.spawn().unwrap();
    let mut err = app.stderr.take().unwrap();
    let (tx, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let _ = err.read_to_string(&mut all);
        let _ = tx.send(all);
    });
    // The gateway answers while the message is up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut health = String::new();
    while Instant::now() < deadline {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{port}/health"),
            ])
            .output()
            .unwrap();
        health = String::from_utf8_lossy(&out.stdout).into_owned();
        if health.contains("\"status\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let alive = app.try_wait().unwrap().is_none();
    let _ = app.kill();
    let _ = app.wait();
    wine.end_session();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    let said = said
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    assert!(said.contains("Microsoft Edge WebView2 Runtime"), "{said}");
    assert!(said.contains("go.microsoft.com"), "{said}");
    assert!(!said.contains("Unhandled exception"), "a crash: {said}");
    assert!(!said.contains("panicked"), "a panic: {said}");
    assert!(alive, "the app exited: {said}");
    assert!(
        health.contains("\"status\""),
        "the gateway did not answer: {health}\n{said}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
