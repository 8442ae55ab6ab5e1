//! Voice end to end with real speech, offline: espeak-ng speaks digits, sox and ffmpeg
//! make the formats recorders make, and a real recognizer (PocketSphinx behind OpenAI's
//! transcription API) hears them through Protogate; Deepgram is a mock in its documented
//! format, checked against Deepgram's own SDK. Keys go in their header and nowhere else.
//! (Refusals and failures: `voice_refusals.rs`.)

mod common;

use common::speech::{heard_the_sentence, run_script};
use common::voice_world::{world, DG_KEY, SPHINX_KEY};
use serde_json::json;

#[tokio::test]
async fn the_openai_sdk_transcribes_real_speech_through_protogate() {
    let w = world(json!({})).await;
    w.speech.make("speech.webm");
    for model in ["local/sphinx-digits", "sphinx-digits"] {
        let out = w.sdk("speech.wav", model, &[]).await;
        assert!(
            heard_the_sentence(out["text"].as_str().unwrap()),
            "{model}: {out}"
        );
    }
    // What each response format gives, from the one recognizer.
    let verbose = w
        .sdk("speech.wav", "local/sphinx-digits", &["verbose_json"])
        .await;
    assert_eq!(verbose["type"], "TranscriptionVerbose", "{verbose}");
    assert!(
        heard_the_sentence(verbose["text"].as_str().unwrap()),
        "{verbose}"
    );
    let duration = verbose["duration"].as_f64().unwrap();
    assert!((duration - w.speech.seconds()).abs() < 0.1, "{verbose}");
    assert_eq!(verbose["language"], "english");
    assert!(
        verbose["segments"][0]["end"].as_f64().unwrap() > 0.5,
        "{verbose}"
    );
    let text = w.sdk("speech.webm", "local/sphinx-digits", &["text"]).await;
    assert!(heard_the_sentence(text["body"].as_str().unwrap()), "{text}");
    let srt = w.sdk("speech.wav", "local/sphinx-digits", &["srt"]).await;
    let srt = srt["body"].as_str().unwrap();
    assert!(
        srt.starts_with("1\n00:00:0") && srt.contains(" --> ") && heard_the_sentence(srt),
        "{srt}"
    );
    let vtt = w.sdk("speech.wav", "local/sphinx-digits", &["vtt"]).await;
    assert!(
        vtt["body"]
            .as_str()
            .unwrap()
            .starts_with("WEBVTT\n\n00:00:0"),
        "{vtt}"
    );
    // Streamed: word by word where the server streams, one piece where it does not.
    for (model, pieces) in [("local/sphinx-stream", 3), ("local/sphinx-digits", 1)] {
        let out = w.sdk("speech.wav", model, &["--stream"]).await;
        let deltas: Vec<&str> = out["deltas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert!(deltas.len() >= pieces, "{model}: {out}");
        assert_eq!(
            deltas.concat(),
            out["done"].as_str().unwrap(),
            "{model}: {out}"
        );
        assert!(heard_the_sentence(&deltas.concat()), "{model}: {out}");
    }
    // A model that refuses verbose_json is asked again for json. Its answer has no
    // timings: a WAV's length is read from its header (one cue over the whole audio), a
    // WebM's cannot be, and the 400 says why.
    let plain = w.sdk("speech.wav", "local/json-only", &[]).await;
    assert!(
        heard_the_sentence(plain["text"].as_str().unwrap()),
        "{plain}"
    );
    let vtt = w.sdk("speech.wav", "local/json-only", &["vtt"]).await;
    assert!(
        vtt["body"]
            .as_str()
            .unwrap()
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02."),
        "{vtt}"
    );
    let e = w
        .sdk("speech.webm", "local/json-only", &["verbose_json"])
        .await;
    assert_eq!(e["status"], 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("needs the audio's timings"),
        "{e}"
    );
}

#[tokio::test]
async fn a_page_transcribes_every_recorder_format_through_api_voice_process() {
    let w = world(json!({})).await;
    let wav = w.speech.wav();
    let (status, v) = w.process("speech.wav", "audio/wav", &wav, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert!(heard_the_sentence(v["text"].as_str().unwrap()), "{v}");
    assert_eq!(
        (v["provider"].as_str(), v["model"].as_str()),
        (Some("local"), Some("local/sphinx-digits"))
    );
    assert!(
        (v["duration_s"].as_f64().unwrap() - w.speech.seconds()).abs() < 0.1,
        "{v}"
    );
    // What Chrome's and Firefox's MediaRecorder make, and the usual files; a blob with no
    // name or type is known by its bytes.
    for (file, kind) in [
        ("speech.webm", "audio/webm;codecs=opus"),
        ("speech.opus.ogg", "audio/ogg;codecs=opus"),
        ("speech.ogg", "audio/ogg"),
        ("speech.mp3", "audio/mpeg"),
        ("speech.m4a", "audio/mp4"),
        ("speech.flac", "audio/flac"),
    ] {
        let bytes = w.speech.make(file);
        let (status, v) = w.process("blob", kind, &bytes, &[]).await;
        assert_eq!(status, 200, "{file}: {v}");
        assert!(
            heard_the_sentence(v["text"].as_str().unwrap()),
            "{file}: {v}"
        );
    }
    let (status, v) = w
        .process(
            "blob",
            "application/octet-stream",
            &wav,
            &[("language", "en")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["language"], "english", "the server's own word wins: {v}");
    // The log has the audio's type, size and length and the transcript, never the audio.
    let record = w.gw.record_for("/api/voice/process", "POST").await;
    assert_eq!(record.model.as_deref(), Some("local/sphinx-digits"));
    let prompt = record.prompt.unwrap();
    assert!(
        prompt.starts_with("audio: audio/wav, ")
            && prompt.contains(" KB, 2.")
            && prompt.ends_with(" s, language en"),
        "{prompt}"
    );
    assert!(heard_the_sentence(&record.answer.unwrap()));
    let files = w.gw.log_files_text().await;
    assert!(
        !files.contains("RIFF") && !files.contains("WAVE"),
        "no audio in the log"
    );
    assert!(!files.contains(SPHINX_KEY) && !files.contains(DG_KEY));
}

#[tokio::test]
async fn deepgram_gets_the_raw_audio_and_its_answer_is_translated_for_every_client() {
    let w = world(json!({})).await;
    let wav = w.speech.wav();
    let webm = w.speech.make("speech.webm");
    let (status, v) = w
        .process("speech.wav", "audio/wav", &wav, &[("provider", "dg")])
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["text"], format!("heard {} bytes of audio/wav", wav.len()));
    assert_eq!(
        (v["model"].as_str(), v["language"].as_str()),
        (Some("dg/nova-3"), Some("en"))
    );
    assert!(
        (v["duration_s"].as_f64().unwrap() - w.speech.seconds()).abs() < 0.1,
        "{v}"
    );
    let (status, v) = w
        .process(
            "blob",
            "audio/webm;codecs=opus",
            &webm,
            &[("model", "dg/nova-2"), ("language", "fr")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["text"],
        format!("heard {} bytes of audio/webm;codecs=opus", webm.len())
    );
    let seen = w.deepgram.seen();
    assert_eq!(
        seen[0].query,
        "model=nova-3&smart_format=true&detect_language=true"
    );
    assert_eq!(seen[1].query, "model=nova-2&smart_format=true&language=fr");
    assert_eq!(
        seen[0].bytes.as_ref(),
        &wav[..],
        "the raw audio is the body"
    );
    assert_eq!(
        seen[1].content_type.as_deref(),
        Some("audio/webm;codecs=opus")
    );
    // The key, in its header only.
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Token {DG_KEY}").as_str())
        );
        assert!(!s.query.contains(DG_KEY) && !String::from_utf8_lossy(&s.bytes).contains(DG_KEY));
    }
    // The OpenAI SDK, answered from Deepgram's transcript in each format.
    let json = w.sdk("speech.wav", "dg/nova-3", &[]).await;
    // (The SDK types the file by its name: audio/wav or audio/x-wav.)
    let heard = format!("heard {} bytes of audio/", wav.len());
    assert!(json["text"].as_str().unwrap().starts_with(&heard), "{json}");
    let verbose = w.sdk("speech.wav", "dg/nova-3", &["verbose_json"]).await;
    assert_eq!(
        (
            verbose["language"].as_str(),
            verbose["segments"].as_array().map(Vec::len)
        ),
        (Some("en"), Some(1)),
        "{verbose}"
    );
    let srt = w.sdk("speech.wav", "dg/nova-3", &["srt"]).await;
    assert!(
        srt["body"]
            .as_str()
            .unwrap()
            .starts_with("1\n00:00:00,000 --> 00:00:02,"),
        "{srt}"
    );
    let stream = w.sdk("speech.webm", "dg/nova-3", &["--stream"]).await;
    let heard = format!("heard {} bytes of ", webm.len());
    assert!(
        stream["done"].as_str().unwrap().starts_with(&heard),
        "{stream}"
    );
    assert!(!w.gw.log_files_text().await.contains(DG_KEY));
}

#[tokio::test]
async fn the_deepgram_mock_is_what_deepgrams_own_sdk_reads() {
    let w = world(json!({})).await;
    let url = w.deepgram.base_url.clone();
    let path = w.speech.path("speech.wav");
    let out = run_script("deepgram_check.py", &[&url, DG_KEY, path.to_str().unwrap()]).await;
    // The SDK sends any recording as application/octet-stream: Deepgram reads the format
    // from the bytes, and so does the mock.
    let heard = out["transcript"].as_str().unwrap();
    assert!(
        heard.starts_with("heard ") && heard.ends_with("of application/octet-stream"),
        "{out}"
    );
    assert_eq!(
        (out["words"].as_u64(), out["detected_language"].as_str()),
        (Some(5), Some("en"))
    );
    assert!(
        (out["duration"].as_f64().unwrap() - w.speech.seconds()).abs() < 0.1,
        "{out}"
    );
    let errors = &out["errors"];
    assert_eq!(errors["reject-key"]["status"], 401, "{out}");
    assert_eq!(
        errors["reject-key"]["body"]["err_msg"],
        "Invalid credentials."
    );
    assert_eq!(errors["rate-limited"]["status"], 429);
    assert_eq!(
        errors["error500"]["body"]["category"],
        "INTERNAL_SERVER_ERROR"
    );
    let seen = w.deepgram.seen();
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some(format!("Token {DG_KEY}").as_str())));
    assert!(
        seen[0].query.contains("model=nova-3") && seen[0].query.contains("smart_format=true"),
        "{:?}",
        seen[0].query
    );
}

#[tokio::test]
async fn the_demo_says_how_long_the_recording_was() {
    let w = world(json!({"default_voice_provider": "demo"})).await;
    let (status, v) = w
        .process("speech.wav", "audio/wav", &w.speech.wav(), &[])
        .await;
    assert_eq!(status, 200, "{v}");
    let expected = format!(
        "[Protogate demo] heard {:.1} s of audio — add a voice provider for a real transcript",
        w.speech.seconds()
    );
    assert_eq!(v["text"], expected);
    assert_eq!(v["model"], "demo/protogate-demo");
    let json = w.sdk("speech.wav", "demo/protogate-demo", &[]).await;
    assert_eq!(json["text"], expected);
}

/// Runs a transcription case of `tests/sdk/clients.mjs` (OpenAI's JS SDK, the AI SDK).
async fn js_sdk(case: &str, base: &str, model: &str, file: &std::path::Path) -> serde_json::Value {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    assert!(
        dir.join("node_modules/openai").exists(),
        "the SDKs are missing: run scripts/test.sh, which installs them"
    );
    let out = tokio::process::Command::new("node")
        .arg(dir.join("clients.mjs"))
        .args([case, base, model, file.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("node runs");
    let line = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("{case}: one JSON line expected ({e}): {line}"));
    assert_eq!(result["ok"], true, "{case} {model}: {result}");
    result
}

#[tokio::test]
async fn the_js_sdks_transcribe_through_protogate_with_every_voice_kind() {
    let w = world(json!({})).await;
    let base = w.gw.url("");
    let wav = w.speech.path("speech.wav");
    for case in ["openai-transcribe", "ai-transcribe"] {
        // The real recognizer behind an OpenAI-compatible server.
        let out = js_sdk(case, &base, "local/sphinx-digits", &wav).await;
        assert!(
            heard_the_sentence(out["text"].as_str().unwrap()),
            "{case}: {out}"
        );
        // Deepgram, translated to OpenAI's format (its mock says what it was sent).
        let out = js_sdk(case, &base, "dg/nova-3", &wav).await;
        let text = out["text"].as_str().unwrap();
        assert!(
            text.starts_with("heard ") && text.contains("audio/"),
            "{case}: {out}"
        );
        // The demo, labelled.
        let out = js_sdk(case, &base, "demo/protogate-demo", &wav).await;
        assert!(
            out["text"]
                .as_str()
                .unwrap()
                .starts_with("[Protogate demo] heard"),
            "{case}: {out}"
        );
    }
    let seen = w.deepgram.seen();
    assert_eq!(seen.len(), 2, "one Deepgram call per SDK");
    let token = format!("Token {DG_KEY}");
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some(token.as_str())));
}

#[test]
fn protogate_check_transcribes_a_spoken_sentence_on_each_voice_provider() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let deepgram = runtime.block_on(common::mock_deepgram::MockDeepgram::start(DG_KEY));
    let home = tempfile::tempdir().unwrap();
    let settings = common::settings(json!({"providers": [
        {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
        {"id": "dg", "kind": "deepgram", "base_url": deepgram.base_url},
    ]}));
    std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
    let out = std::process::Command::new(common::binary())
        .arg("--config")
        .arg(home.path().join("settings.json"))
        .arg("check")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("PROTOGATE_SECRET_DG", DG_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("demo: ok (chat: [Protogate demo]"),
        "{stdout}"
    );
    // Deepgram's mock says what it was sent: the bundled WAV, raw, with its type.
    assert!(
        stdout.contains("dg: ok (heard “heard 56658 bytes of audio/wav"),
        "{stdout}"
    );
    assert!(!stdout.contains(DG_KEY));
    let seen = deepgram.seen();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Token {DG_KEY}").as_str())
    );
}
