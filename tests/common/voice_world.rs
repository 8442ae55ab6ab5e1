//! The voice tests' world: a gateway in front of a real recognizer (PocketSphinx behind
//! OpenAI's transcription API) and Deepgram's mock, with keys that must never leak, and
//! the two ways a prototype calls it (a page's form, OpenAI's Python SDK).

use serde_json::{json, Value};

use super::mock_deepgram::MockDeepgram;
use super::speech::{post_form, run_script, Recordings, Sphinx};
use super::{settings, spawn_gateway_env, TestGateway, FRAMER_ORIGIN};

pub const SPHINX_KEY: &str = "sk-sphinx-test-0123456789";
pub const DG_KEY: &str = "dg-test-key-0123456789abcdef";

/// A gateway with the PocketSphinx server (`local`, the default voice provider; `stale`,
/// the same server with a key it refuses), Deepgram's mock (`dg`), a chat-only provider
/// and the demo.
pub struct World {
    pub gw: TestGateway,
    pub deepgram: MockDeepgram,
    _sphinx: Sphinx,
    pub speech: Recordings,
}

pub async fn world(extra: Value) -> World {
    let sphinx = Sphinx::start(SPHINX_KEY).await;
    let deepgram = MockDeepgram::start(DG_KEY).await;
    let mut s = settings(json!({
        "default_voice_provider": "local",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "local", "kind": "openai", "base_url": sphinx.base_url, "default_model": "chat-model", "transcription_model": "sphinx-digits"},
            {"id": "dg", "kind": "deepgram", "base_url": deepgram.base_url},
            {"id": "chat", "kind": "openai", "base_url": sphinx.base_url, "default_model": "chat-model"},
            {"id": "stale", "kind": "openai", "base_url": sphinx.base_url, "default_model": "chat-model", "transcription_model": "sphinx-digits"},
        ],
    }));
    super::merge(&mut s, extra);
    let gw = spawn_gateway_env(
        s,
        &[
            ("PROTOGATE_SECRET_LOCAL", SPHINX_KEY),
            ("PROTOGATE_SECRET_DG", DG_KEY),
            ("PROTOGATE_SECRET_STALE", "sk-an-old-key-0123456789"),
        ],
    )
    .await;
    World {
        gw,
        deepgram,
        _sphinx: sphinx,
        speech: Recordings::new(),
    }
}

impl World {
    /// `POST /api/voice/process` from a Framer page, with `fields` beside the audio.
    pub async fn process(
        &self,
        name: &str,
        kind: &str,
        audio: &[u8],
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut parts = vec![("audio", Some((name, kind)), audio)];
        parts.extend(fields.iter().map(|(k, v)| (*k, None, v.as_bytes())));
        let res = post_form(
            &self.gw.url("/api/voice/process"),
            Some(FRAMER_ORIGIN),
            &parts,
        )
        .await;
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    /// OpenAI's Python SDK, `audio.transcriptions.create`, against Protogate.
    pub async fn sdk(&self, file: &str, model: &str, args: &[&str]) -> Value {
        let base = self.gw.url("/v1");
        let path = self.speech.path(file);
        let mut all = vec![base.as_str(), path.to_str().unwrap(), model];
        all.extend(args);
        run_script("sdk_transcribe.py", &all).await
    }
}
