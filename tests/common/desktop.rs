//! A desktop for the desktop app's tests: an Xvfb display and a private session bus that
//! starts nothing by itself, both ended when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A session bus with no service files: only what a test starts is on it.
pub const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>"#;

pub struct Desktop {
    pub display: String,
    pub bus: String,
    xvfb: Child,
    dbus: Child,
    _dir: tempfile::TempDir,
}

impl Desktop {
    pub fn start() -> Desktop {
        let dir = tempfile::tempdir().unwrap();
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed by scripts/install-deps.sh test");
        let display = format!(":{}", first_line(&mut xvfb));
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, BUS_CONFIG).unwrap();
        let mut dbus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed by scripts/install-deps.sh test");
        let bus = first_line(&mut dbus);
        Desktop {
            display,
            bus,
            xvfb,
            dbus,
            _dir: dir,
        }
    }

    /// A command that runs on this desktop, with its own home for settings and logs.
    pub fn command(&self, program: &Path, home: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home)
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        command
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.xvfb.kill();
        let _ = self.dbus.kill();
        let _ = self.xvfb.wait();
        let _ = self.dbus.wait();
    }
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

/// A free port on loopback for a driver to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Opens a WebDriver session at the driver on `base` (`http://127.0.0.1:PORT`), waiting
/// for the driver to listen; the session's URL.
pub async fn webdriver_session(
    http: &reqwest::Client,
    base: &str,
    capabilities: serde_json::Value,
) -> String {
    let mut created = serde_json::Value::Null;
    for _ in 0..100 {
        let request = http.post(format!("{base}/session")).json(&capabilities);
        if let Ok(res) = request.send().await {
            created = res.json().await.unwrap_or(serde_json::Value::Null);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let id = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("a WebDriver session: {created}"));
    format!("{base}/session/{id}")
}
