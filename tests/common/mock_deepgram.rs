//! A mock Deepgram on `127.0.0.1:0`: `POST /v1/listen` in the documented pre-recorded
//! format (checked against Deepgram's own Python SDK by `tests/voice/deepgram_check.py`).
//! It cannot hear, so its transcript says what it received: "heard 104432 bytes of
//! audio/wav", with words, times and `metadata.duration` (from the WAV header, else 1 s).
//! The `model` query parameter picks a behaviour:
//!
//! - `nova-3` (any other name): the answer above.
//! - `reject-key`: 401 `{err_code: "INVALID_AUTH", err_msg, request_id}`.
//! - `rate-limited`: 429 `{err_code: "TOO_MANY_REQUESTS", …}` with `Retry-After: 7`.
//! - `error500`: 500 in the other documented shape, `{category, message, details}`.
//! - `stall`: takes the audio and never answers; counts the requests whose connection
//!   went away ([`MockDeepgram::dropped`]).
//!
//! A request without `Authorization: Token <key>` is a 401; a body that is not audio
//! (empty, or no known header) is Deepgram's 400 "failed to process audio".

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

/// One request as the mock saw it: never kept beyond the test.
#[derive(Clone, Debug)]
pub struct Seen {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub query: String,
    pub bytes: Bytes,
}

#[derive(Clone)]
pub struct MockDeepgram {
    inner: Arc<Inner>,
    pub base_url: String,
}

struct Inner {
    key: String,
    seen: Mutex<Vec<Seen>>,
    dropped: AtomicUsize,
    stalled: tokio::sync::Notify,
}

impl MockDeepgram {
    /// A mock that takes `key`.
    pub async fn start(key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mock = MockDeepgram {
            inner: Arc::new(Inner {
                key: key.to_string(),
                seen: Mutex::default(),
                dropped: AtomicUsize::new(0),
                stalled: tokio::sync::Notify::new(),
            }),
            base_url: format!("http://{addr}"),
        };
        let app = Router::new()
            .route("/v1/listen", post(listen))
            .with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        mock
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// Stalled requests whose connection the caller closed.
    pub fn dropped(&self) -> usize {
        self.inner.dropped.load(Ordering::SeqCst)
    }

    /// Waits until a `stall` request has arrived whole.
    pub async fn stalled(&self) {
        self.inner.stalled.notified().await
    }
}

struct CountDrop(Arc<Inner>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn listen(
    State(mock): State<MockDeepgram>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    raw_query: axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let authorization = header("authorization");
    mock.inner.seen.lock().unwrap().push(Seen {
        authorization: authorization.clone(),
        content_type: header("content-type"),
        query: raw_query.0.unwrap_or_default(),
        bytes: body.clone(),
    });
    let model = query.get("model").map(String::as_str).unwrap_or("base");
    if authorization.as_deref() != Some(&format!("Token {}", mock.inner.key))
        || model == "reject-key"
    {
        let body = json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": request_id()});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    match model {
        "rate-limited" => {
            let body = json!({"err_code": "TOO_MANY_REQUESTS", "err_msg": "Too many requests. Please try again later", "request_id": request_id()});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "7")],
                Json(body),
            )
                .into_response();
        }
        "error500" => {
            let body = json!({"category": "INTERNAL_SERVER_ERROR", "message": "Something went wrong.", "details": "The transcription could not be completed.", "request_id": request_id()});
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        }
        "stall" => {
            let _count = CountDrop(mock.inner.clone());
            mock.inner.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let Some(duration) = audio_duration(&body) else {
        let body = json!({"err_code": "Bad Request", "err_msg": "Bad Request: failed to process audio: corrupt or unsupported data", "request_id": request_id()});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let kind = header("content-type").unwrap_or_default();
    Json(answer(
        &format!("heard {} bytes of {kind}", body.len()),
        duration,
        model,
        &query,
    ))
    .into_response()
}

/// The audio's length: from a WAV header, else 1 s for any other known container;
/// `None` for bytes that are not audio.
fn audio_duration(b: &[u8]) -> Option<f64> {
    if b.len() >= 44 && &b[..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        let rate = u32::from_le_bytes(b[28..32].try_into().unwrap());
        return Some((b.len() - 44) as f64 / f64::from(rate.max(1)));
    }
    let known: [&[u8]; 4] = [b"OggS", b"\x1a\x45\xdf\xa3", b"ID3", b"fLaC"];
    let audio = known.iter().any(|sig| b.starts_with(sig)) || b.get(4..8) == Some(b"ftyp");
    audio.then_some(1.0)
}

/// A pre-recorded answer as Deepgram documents it, `smart_format` on.
fn answer(text: &str, duration: f64, model: &str, query: &HashMap<String, String>) -> Value {
    let words: Vec<&str> = text.split(' ').collect();
    let step = duration / words.len() as f64;
    let words: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            json!({"word": w.to_lowercase(), "start": i as f64 * step, "end": (i as f64 + 0.9) * step,
                   "confidence": 0.99, "punctuated_word": w})
        })
        .collect();
    let mut channel =
        json!({"alternatives": [{"transcript": text, "confidence": 0.99, "words": words}]});
    if query.get("detect_language").map(String::as_str) == Some("true") {
        channel["detected_language"] = json!("en");
        channel["language_confidence"] = json!(0.98);
    }
    json!({
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": request_id(),
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
            "created": "2026-01-01T12:00:00.000Z",
            "duration": duration,
            "channels": 1,
            "models": ["1abfe86b-e047-4eed-858a-35e5625b41ee"],
            "model_info": {"1abfe86b-e047-4eed-858a-35e5625b41ee": {"name": format!("general-{model}"), "version": "2025-01-01.0", "arch": model}},
        },
        "results": {"channels": [channel]},
    })
}
