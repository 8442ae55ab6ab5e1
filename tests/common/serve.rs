//! A `protogate serve` process started by a test: the URL it announces on its first line
//! and what it writes on stderr, read as it comes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The first line `child` (spawned with piped stdout) prints, waited for up to 30 s, and
/// the `http://127.0.0.1:PORT` URL in it.
pub async fn announced(child: &mut Child) -> (String, String) {
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("the gateway starts")
        .unwrap()
        .expect("the line announcing its URL");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (url, line)
}

/// What `child` (spawned with piped stderr) writes on stderr, collected in the background
/// so the pipe never fills; read it whenever.
pub fn collect_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let sink = text.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}
