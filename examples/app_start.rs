//! Measures the desktop app for `scripts/bench-app.sh`: time from launch to its tray icon
//! (the app registering its StatusNotifierItem with the tray host, played here), and its
//! resident memory once idle. Run inside a display and a D-Bus session of its own:
//!
//! `xvfb-run dbus-run-session -- target/release/examples/app_start <protogate> <runs>`
//!
//! Prints `app_start: <start-to-tray median ms> <idle RSS median MB>`.

use std::time::{Duration, Instant};

#[path = "../tests/common/tray_host.rs"]
#[allow(dead_code)]
mod tray_host;

use tray_host::Watcher;

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (binary, runs) = (&args[1], args[2].parse::<usize>().unwrap());
    let watcher = Watcher::default();
    let _bus = zbus::connection::Builder::session()
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", watcher.clone())
        .unwrap()
        .build()
        .await
        .expect("a session bus of our own (dbus-run-session)");
    let (mut to_tray, mut idle) = (vec![], vec![]);
    for _ in 0..runs {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config/protogate");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("settings.json"),
            r#"{"port": 0, "https": {"enabled": false}}"#,
        )
        .unwrap();
        watcher.items.lock().unwrap().clear();
        let start = Instant::now();
        let mut app = tokio::process::Command::new(binary)
            .arg("--hidden")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = start + Duration::from_secs(30);
        let registered = loop {
            if let Some(item) = watcher.items.lock().unwrap().first() {
                break item.at;
            }
            assert!(Instant::now() < deadline, "no tray item within 30 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        to_tray.push((registered - start).as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_secs(5)).await;
        idle.push(rss_mb(app.id().unwrap()));
        app.kill().await.unwrap();
    }
    // Marked: the session's own services (at-spi) write to the same stdout.
    println!("app_start: {:.0} {:.1}", median(to_tray), median(idle));
}
