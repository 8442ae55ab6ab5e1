//! Voice requests that cannot be served, refused in plain words and never a 500: bad
//! input before anything goes upstream (415, 413 with and without a length, an empty
//! file), the providers' own refusals (401, 429, 500, undecodable audio), a stalled
//! provider, and a page that leaves while its audio is being transcribed.

mod common;

use common::speech::post_form;
use common::voice_world::{world, DG_KEY, SPHINX_KEY};
use common::FRAMER_ORIGIN;
use serde_json::{json, Value};

#[tokio::test]
async fn bad_input_is_refused_in_plain_words_before_anything_goes_upstream() {
    let w = world(json!({"limits": {"max_audio_bytes": 200_000}})).await;
    let wav = w.speech.wav();
    let pdf: &[u8] = b"%PDF-1.4 not audio";
    let (status, v) = w.process("notes.pdf", "application/pdf", pdf, &[]).await;
    assert_eq!(status, 415, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("`notes.pdf` is application/pdf")
            && e.contains("WAV, MP3, M4A/MP4, OGG/Opus, WebM")
            && e.contains("audio/webm"),
        "{e}"
    );
    let (status, v) = w.process("take.wav", "audio/wav", b"", &[]).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("`take.wav` is empty"),
        "{v}"
    );
    let (status, v) = w
        .process("a.wav", "audio/wav", &wav, &[("provider", "chat")])
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("providers that can: demo, local, dg"),
        "{v}"
    );
    let (status, v) = w
        .process("a.wav", "audio/wav", &wav, &[("provider", "whisper")])
        .await;
    assert!(
        status == 400
            && v["error"]
                .as_str()
                .unwrap()
                .contains("unknown provider `whisper`"),
        "{v}"
    );
    let res = post_form(
        &w.gw.url("/api/voice/process"),
        None,
        &[("file_id", None, b"x")],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("the form has no `audio` file"));
    // OpenAI's route answers in OpenAI's error shape.
    let url = w.gw.url("/v1/audio/transcriptions");
    let res = post_form(
        &url,
        None,
        &[
            ("file", Some(("a.txt", "text/plain")), b"hello"),
            ("model", None, b"sphinx-digits"),
        ],
    )
    .await;
    assert_eq!(res.status(), 415);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    for (format, stream, says) in [
        ("json2", "false", "`response_format` `json2`"),
        ("srt", "true", "cannot be streamed"),
        ("json", "yes", "`stream` must be"),
    ] {
        let parts = [
            ("file", Some(("a.wav", "audio/wav")), &wav[..]),
            ("response_format", None, format.as_bytes()),
            ("stream", None, stream.as_bytes()),
        ];
        let res = post_form(&url, None, &parts).await;
        assert_eq!(res.status(), 400, "{format}");
        let v: Value = res.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    // Over max_audio_bytes: 413, whether the length is announced or the body is chunked.
    let big = vec![0u8; 300_000];
    let (status, v) = w.process("long.wav", "audio/wav", &big, &[]).await;
    assert_eq!(status, 413, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("larger than the limit of 200000 bytes"),
        "{v}"
    );
    let (content_type, body) =
        common::speech::form(&[("audio", Some(("long.wav", "audio/wav")), &big)]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let res = reqwest::Client::new()
        .post(w.gw.url("/api/voice/process"))
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(
        w.deepgram.seen().is_empty(),
        "nothing refused went upstream"
    );
}

#[tokio::test]
async fn upstream_refusals_reach_the_page_in_the_vendors_words() {
    let w = world(json!({})).await;
    let wav = w.speech.wav();
    let dg = |model: &'static str| [("provider", "dg"), ("model", model)];
    let (status, v) = w
        .process("a.wav", "audio/wav", &wav, &dg("reject-key"))
        .await;
    assert_eq!(
        status, 502,
        "a refused key is the upstream's failure, not the page's: {v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("Deepgram rejected the API key for provider 'dg'"),
        "{v}"
    );
    let res = post_form(
        &w.gw.url("/api/voice/process"),
        None,
        &[
            ("audio", Some(("a.wav", "audio/wav")), &wav),
            ("model", None, b"dg/rate-limited"),
        ],
    )
    .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many requests. Please try again later"));
    let (status, v) = w.process("a.wav", "audio/wav", &wav, &dg("error500")).await;
    assert_eq!(status, 502, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("Something went wrong. (The transcription could not be completed.)"),
        "{v}"
    );
    // Bytes that only claim to be audio: each provider's own words, never a 500.
    let noise = b"this is not a recording at all".to_vec();
    let (status, v) = w
        .process("a.wav", "audio/wav", &noise, &[("provider", "dg")])
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("failed to process audio: corrupt or unsupported data"),
        "{v}"
    );
    let (status, v) = w.process("a.wav", "audio/wav", &noise, &[]).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("Could not decode"),
        "{v}"
    );
    let body = serde_json::to_string(&v).unwrap();
    assert!(!body.contains(SPHINX_KEY) && !body.contains(DG_KEY));
    // An OpenAI-compatible server that refuses the key, answered to a Framer page with
    // its CORS headers, in OpenAI's shape on OpenAI's route.
    let parts = [
        ("file", Some(("a.wav", "audio/wav")), &wav[..]),
        ("model", None, &b"stale/sphinx-digits"[..]),
    ];
    let res = post_form(
        &w.gw.url("/v1/audio/transcriptions"),
        Some(FRAMER_ORIGIN),
        &parts,
    )
    .await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["access-control-allow-origin"], FRAMER_ORIGIN);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected the API key for provider 'stale'"),
        "{v}"
    );
    let files = w.gw.log_files_text().await;
    assert!(!files.contains(DG_KEY) && !files.contains("sk-an-old-key"));
}

#[tokio::test]
async fn a_stalled_provider_times_out_and_a_client_that_leaves_ends_the_upstream_call() {
    let w = world(json!({})).await;
    let wav = w.speech.wav();
    let (status, v) = w
        .process("a.wav", "audio/wav", &wav, &[("model", "dg/stall")])
        .await;
    assert_eq!(status, 504, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1.5 s"),
        "{v}"
    );

    let patient = world(json!({"limits": {"first_byte_timeout_ms": 120_000}})).await;
    let url = patient.gw.url("/api/voice/process");
    let request = tokio::spawn(async move {
        post_form(
            &url,
            None,
            &[
                ("audio", Some(("a.wav", "audio/wav")), &wav),
                ("model", None, b"dg/stall"),
            ],
        )
        .await
    });
    patient.deepgram.stalled().await;
    request.abort();
    for _ in 0..500 {
        if patient.deepgram.dropped() == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the upstream call outlived the client that asked for it");
}
