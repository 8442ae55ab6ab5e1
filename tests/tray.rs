//! The tray, for real: this test is the desktop's tray host. It owns
//! `org.kde.StatusNotifierWatcher` on a private session bus, receives the app's tray item,
//! reads its menu over `com.canonical.dbusmenu`, and clicks it as a person would: the
//! status line tells the endpoint, Stop stops the gateway, Start starts it, the icon
//! changes with the state, Copy endpoint fills the clipboard, and Quit ends the app. It is
//! the notification server too: a refused site is announced once.
#![cfg(all(feature = "desktop", target_os = "linux"))] // the StatusNotifier tray host on D-Bus

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::desktop::Desktop;
use common::tray_host::Watcher;
use common::*;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// The desktop's notification server: what was shown, as (summary, body).
#[derive(Clone, Default)]
struct Notifications {
    shown: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        _app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap();
        shown.push((summary.to_string(), body.to_string()));
        shown.len() as u32
    }

    async fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        ("test".into(), "protogate".into(), "1".into(), "1.2".into())
    }

    async fn close_notification(&self, _id: u32) {}
}

/// One menu entry: its dbusmenu id and label (mnemonic underscores removed).
#[derive(Debug, Clone)]
struct Entry {
    id: i32,
    label: String,
    enabled: bool,
}

/// A dbusmenu layout node, `(ia{sv}av)`.
#[derive(Debug, serde::Deserialize, zbus::zvariant::Type, zbus::zvariant::OwnedValue)]
struct Layout {
    id: i32,
    props: HashMap<String, OwnedValue>,
    children: Vec<OwnedValue>,
}

fn entries(node: Layout, out: &mut Vec<Entry>) {
    let text = |name: &str| {
        node.props
            .get(name)
            .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
    };
    let label = text("label").unwrap_or_default().replace('_', "");
    let enabled = node
        .props
        .get("enabled")
        .and_then(|v| bool::try_from(v.try_clone().ok()?).ok())
        .unwrap_or(true);
    out.push(Entry {
        id: node.id,
        label,
        enabled,
    });
    for child in node.children {
        if let Ok(child) = Layout::try_from(child) {
            entries(child, out);
        }
    }
}

struct Tray {
    item: zbus::Proxy<'static>,
    menu: zbus::Proxy<'static>,
}

impl Tray {
    async fn entries(&self) -> Vec<Entry> {
        let reply = self
            .menu
            .call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
            .await
            .expect("the menu answers GetLayout");
        let (_revision, layout): (u32, Layout) =
            reply.body().deserialize().expect("a dbusmenu layout");
        let mut out = vec![];
        entries(layout, &mut out);
        out
    }

    async fn entry(&self, label_starts: &str) -> Entry {
        self.entries()
            .await
            .into_iter()
            .find(|e| e.label.starts_with(label_starts))
            .unwrap_or_else(|| panic!("a menu item starting with {label_starts:?}"))
    }

    async fn click(&self, label_starts: &str) {
        let entry = self.entry(label_starts).await;
        self.menu
            .call_method("Event", &(entry.id, "clicked", Value::I32(0), 0u32))
            .await
            .expect("the menu takes the click");
    }

    /// Waits until the status line (the first item) starts with `want`.
    async fn wait_status(&self, want: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            if let Some(first) = self
                .entries()
                .await
                .into_iter()
                .find(|e| !e.label.is_empty())
            {
                last = first.label;
                if last.starts_with(want) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the status line should start with {want:?}; it says {last:?}");
    }

    /// The icon's image: appindicator hands it over as a file whose path is `IconName`
    /// (or a name under `IconThemePath`).
    async fn icon(&self) -> Vec<u8> {
        let name: String = self.item.get_property("IconName").await.unwrap_or_default();
        let dir: String = self
            .item
            .get_property("IconThemePath")
            .await
            .unwrap_or_default();
        let path = if name.starts_with('/') {
            std::path::PathBuf::from(&name)
        } else {
            std::path::Path::new(&dir).join(format!("{name}.png"))
        };
        std::fs::read(&path).unwrap_or_else(|e| panic!("the tray icon {path:?}: {e}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_shows_the_state_and_its_menu_starts_stops_copies_and_quits() {
    let desktop = Desktop::start();
    let watcher = Watcher::default();
    let notifications = Notifications::default();
    let bus = zbus::connection::Builder::address(desktop.bus.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", watcher.clone())
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at("/org/freedesktop/Notifications", notifications.clone())
        .unwrap()
        .build()
        .await
        .expect("the test owns the tray watcher name");

    let home = tempfile::tempdir().unwrap();
    let settings_dir = home.path().join("config/protogate");
    std::fs::create_dir_all(&settings_dir).unwrap();
    std::fs::write(
        settings_dir.join("settings.json"),
        settings(json_port_zero()).to_string(),
    )
    .unwrap();
    let mut app = desktop
        .command(&binary(), home.path())
        .arg("--hidden")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let mut registered = None;
    for _ in 0..200 {
        registered = watcher
            .items
            .lock()
            .unwrap()
            .first()
            .map(|r| (r.bus.clone(), r.path.clone()));
        if registered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (name, path) = registered.expect("the app registers its tray item within seconds");
    // Uncached: appindicator announces a new icon with its own signal, not
    // PropertiesChanged, so a cached IconName would be stale.
    let item: zbus::Proxy<'static> = zbus::proxy::Builder::new(&bus)
        .destination(name.clone())
        .unwrap()
        .path(path)
        .unwrap()
        .interface("org.kde.StatusNotifierItem")
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let menu_path: OwnedObjectPath = item
        .get_property("Menu")
        .await
        .expect("the item has a menu");
    let menu = zbus::Proxy::new_owned(bus.clone(), name, menu_path, "com.canonical.dbusmenu")
        .await
        .unwrap();
    let tray = Tray { item, menu };

    let status = tray.wait_status("Running on http://127.0.0.1:").await;
    let endpoint = status.trim_start_matches("Running on ").to_string();
    let health = || reqwest::get(format!("{endpoint}/health"));
    assert_eq!(
        health().await.unwrap().status(),
        200,
        "the tray's endpoint answers"
    );
    let running_icon = tray.icon().await;

    // A published site the designer opened is refused, and announced once.
    let site = "https://acme-coffee.framer.app";
    for _ in 0..2 {
        let refused = post_json(
            &format!("{endpoint}/api/ai-gateway/stream"),
            Some(site),
            serde_json::json!({"message": "hi"}),
        )
        .await;
        assert_eq!(refused.status(), 403);
    }
    let mut shown = vec![];
    for _ in 0..50 {
        shown = notifications.shown.lock().unwrap().clone();
        if !shown.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shown_now = notifications.shown.lock().unwrap().clone();
    assert_eq!(
        shown_now.len(),
        1,
        "one notification per refused origin: {shown_now:?}"
    );
    assert!(
        shown[0].0.contains(site) && shown[0].1.contains("Allow this origin"),
        "it names the site and the one click: {shown:?}"
    );

    tray.click("Copy endpoint").await;
    let mut copied = String::new();
    for _ in 0..50 {
        copied = clipboard(&desktop.display).await;
        if copied == endpoint {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        copied, endpoint,
        "Copy endpoint puts the URL on the clipboard"
    );

    tray.click("Stop gateway").await;
    tray.wait_status("Stopped").await;
    assert!(health().await.is_err(), "a stopped gateway answers nothing");
    assert!(
        tray.entry("Start gateway").await.enabled,
        "the toggle now offers Start"
    );
    assert!(
        !tray.entry("Copy endpoint").await.enabled,
        "nothing to copy while stopped"
    );
    let mut stopped_icon = tray.icon().await;
    for _ in 0..20 {
        if stopped_icon != running_icon {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stopped_icon = tray.icon().await;
    }
    assert!(
        stopped_icon != running_icon,
        "the icon shows the state: stopped differs from running"
    );

    tray.click("Start gateway").await;
    let status = tray.wait_status("Running on").await;
    let endpoint = status.trim_start_matches("Running on ").to_string();
    assert_eq!(
        reqwest::get(format!("{endpoint}/health"))
            .await
            .unwrap()
            .status(),
        200,
        "started again from the tray"
    );

    // A second launch (the designer clicks the app icon again) hands over and ends; the
    // running app shows its window, which a `--hidden` start had not opened.
    assert_ne!(
        window_map_state(&desktop.display).await.as_deref(),
        Some("IsViewable"),
        "started hidden: no window yet"
    );
    let second = desktop
        .command(&binary(), home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let second = tokio::time::timeout(Duration::from_secs(15), second)
        .await
        .expect("a second launch ends at once")
        .unwrap();
    assert!(second.success(), "{second:?}");
    let mut state = None;
    for _ in 0..100 {
        state = window_map_state(&desktop.display).await;
        if state.as_deref() == Some("IsViewable") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state.as_deref(),
        Some("IsViewable"),
        "the running app shows its window"
    );
    assert!(app.try_wait().unwrap().is_none(), "the first app runs on");

    tray.click("Quit Protogate").await;
    let exit = tokio::time::timeout(Duration::from_secs(15), app.wait())
        .await
        .expect("Quit ends the app")
        .unwrap();
    assert!(exit.success(), "a clean exit: {exit:?}");
    assert!(
        reqwest::get(format!("{endpoint}/health")).await.is_err(),
        "the gateway ends with the app"
    );
}

/// The X map state of the window titled Protogate ("IsViewable" when on screen), or
/// `None` while there is no such window.
async fn window_map_state(display: &str) -> Option<String> {
    let out = tokio::process::Command::new("xwininfo")
        .args(["-name", "Protogate"])
        .env("DISPLAY", display)
        .output()
        .await
        .expect("xwininfo (x11-utils) is installed by scripts/install-deps.sh test");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Map State: ").map(String::from))
}

fn json_port_zero() -> serde_json::Value {
    serde_json::json!({"port": 0})
}
