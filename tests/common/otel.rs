//! An OTLP/HTTP trace receiver (`tests/otel/receiver.py`, in the venv `scripts/test.sh`
//! makes) that decodes each export with OpenTelemetry's own protobuf definitions and
//! writes every span as a JSON line, for the tests to read.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The receiver, and the file it writes each span to as a JSON line.
pub struct Receiver {
    pub url: String,
    out: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel/.venv/bin/python");
        assert!(
            python.exists(),
            "the receiver's venv is missing: run the tests through scripts/test.sh, which makes it"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("spans.jsonl");
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel/receiver.py"))
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .expect("its URL line");
        let url = line.trim_start_matches("listening on ").to_string();
        Receiver {
            url,
            out,
            _child: child,
            _dir: dir,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The span whose `protogate.request.id` is `id`, if it has been received.
    pub fn find(&self, id: &str) -> Option<(Value, Vec<Value>)> {
        let spans = self.spans();
        let i = spans
            .iter()
            .position(|s| s["attributes"]["protogate.request.id"] == id)?;
        Some((spans[i].clone(), spans[..i].to_vec()))
    }

    /// Waits until the span for request `id` arrives (spans leave every second), and
    /// returns it with every span received before it.
    pub async fn span_for(&self, id: &str) -> (Value, Vec<Value>) {
        for _ in 0..300 {
            if let Some(found) = self.find(id) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no span for request {id}; received {:#?}", self.spans());
    }
}

/// The request id a response carries, which its span carries as `protogate.request.id`.
pub fn request_id(response: &reqwest::Response) -> String {
    response.headers()[protogate::request_log::REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_string()
}
