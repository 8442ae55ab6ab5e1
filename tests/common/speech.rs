//! Real speech for the voice tests, made offline: espeak-ng speaks a known sentence to
//! WAV, sox and ffmpeg turn it into what recorders and phones make (OGG, WebM, MP3,
//! M4A), and a PocketSphinx server (`tests/voice/sphinx_server.py`, in the venv that
//! `scripts/test.sh` makes) recognizes it behind OpenAI's transcription API.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncBufReadExt;

/// What the recordings say: digits, which PocketSphinx hears reliably from espeak-ng.
pub const SENTENCE: &str = "one two three four five";
/// Words a transcript of [`SENTENCE`] must hold (PocketSphinx sometimes hears an extra
/// "oh", or "well" for "one").
pub const ROBUST_WORDS: [&str; 3] = ["two", "three", "four"];

/// Whether `text` has the robust words of [`SENTENCE`], in order.
pub fn heard_the_sentence(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    let mut at = 0;
    ROBUST_WORDS
        .iter()
        .all(|w| match words[at..].iter().position(|x| x == w) {
            Some(i) => {
                at += i + 1;
                true
            }
            None => false,
        })
}

/// The test folder's Python: `tests/voice/.venv`, made by `scripts/test.sh`.
pub fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/voice/.venv/bin/python");
    assert!(
        python.exists(),
        "the voice tests need tests/voice/.venv: run them through scripts/test.sh"
    );
    python
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/voice")
        .join(name)
}

/// Recordings of [`SENTENCE`] in one temporary folder.
pub struct Recordings {
    pub dir: tempfile::TempDir,
}

impl Recordings {
    /// Speaks [`SENTENCE`] to `speech.wav` (22,050 Hz mono, as espeak-ng writes it).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        run(
            "espeak-ng",
            &["-v", "en-us", "-s", "130", "-w"],
            &[dir.path().join("speech.wav").to_str().unwrap(), SENTENCE],
        );
        Recordings { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn wav(&self) -> Vec<u8> {
        std::fs::read(self.path("speech.wav")).unwrap()
    }

    /// The speech as `name`, made by sox (`.ogg` is Vorbis, `.flac`) or ffmpeg (`.webm`
    /// and `.opus.ogg` are Opus, as `MediaRecorder` makes them; `.mp3`, `.m4a`).
    pub fn make(&self, name: &str) -> Vec<u8> {
        let (src, out) = (self.path("speech.wav"), self.path(name));
        let (src, out) = (src.to_str().unwrap(), out.to_str().unwrap());
        match name
            .rsplit_once('.')
            .map(|(stem, ext)| (stem.ends_with(".opus"), ext))
        {
            Some((false, "ogg" | "flac")) => run("sox", &[src], &[out]),
            Some((opus, ext)) => {
                let codec = match ext {
                    "mp3" => "libmp3lame",
                    "m4a" => "aac",
                    _ if opus || ext == "webm" => "libopus",
                    _ => panic!("no recipe for {name}"),
                };
                run(
                    "ffmpeg",
                    &["-loglevel", "error", "-y", "-i", src, "-c:a", codec],
                    &[out],
                )
            }
            None => panic!("no recipe for {name}"),
        }
        std::fs::read(self.path(name)).unwrap()
    }

    /// The WAV's length, as sox measures it.
    pub fn seconds(&self) -> f64 {
        let out = std::process::Command::new("soxi")
            .arg("-D")
            .arg(self.path("speech.wav"))
            .output()
            .expect("soxi (from sox) runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

fn run(program: &str, args: &[&str], rest: &[&str]) {
    let status = std::process::Command::new(program)
        .args(args)
        .args(rest)
        .status()
        .unwrap_or_else(|e| {
            panic!("{program} runs (scripts/install-deps.sh test installs it): {e}")
        });
    assert!(status.success(), "{program} {args:?} {rest:?}");
}

/// The PocketSphinx server, stopped when dropped; `base_url` ends in `/v1`.
pub struct Sphinx {
    pub base_url: String,
    _child: tokio::process::Child,
}

impl Sphinx {
    /// Starts it on loopback, taking only `Authorization: Bearer <key>`.
    pub async fn start(key: &str) -> Self {
        let mut child = tokio::process::Command::new(python())
            .arg("-W")
            .arg("ignore")
            .arg(script("sphinx_server.py"))
            .args(["--key", key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            tokio::io::BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("the PocketSphinx server starts")
        .unwrap()
        .expect("it prints where it listens");
        let url = line.rsplit(' ').next().unwrap().to_string();
        Sphinx {
            base_url: format!("{url}/v1"),
            _child: child,
        }
    }
}

/// Runs a script of `tests/voice` with the venv's Python; its standard output, parsed.
pub async fn run_script(name: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(python())
        .arg(script(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{name}: {e}: {stdout}"))
}

/// One field of a form: `(name, Some((filename, type)), bytes)` for a file, `(name,
/// None, bytes)` for text.
pub type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart form as a browser's `FormData` writes it.
pub fn form(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "----protogate-voice-test";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some((filename, kind)) = file {
            body.extend(format!("; filename=\"{filename}\"\r\nContent-Type: {kind}").bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts `form` to `url` as a page on `origin` would.
pub async fn post_form(url: &str, origin: Option<&str>, parts: &[Part<'_>]) -> reqwest::Response {
    let (content_type, body) = form(parts);
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("the gateway answers")
}
