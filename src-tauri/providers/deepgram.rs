//! Deepgram's pre-recorded speech to text: `POST {base_url}/v1/listen?model=nova-3&
//! smart_format=true[&language=…]`, `Authorization: Token <key>`, the audio as the raw
//! body with its own `Content-Type`. The answer's transcript is at
//! `results.channels[0].alternatives[0].transcript`, its length at `metadata.duration`;
//! its words (with times) become the segments that `srt`, `vtt` and `verbose_json` need.
//! Errors are `{err_code, err_msg, request_id}` or `{category, message, details}`; the
//! vendor's words go to the page. See `docs/wire-formats.md`.

use axum::http::{Method, Request};
use reqwest::header::{self, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::client::Target;
use super::http::{self, Flavor};
use super::voice::{Audio, Segment, Transcript};
use super::Upstream;
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::wire::DecodeError;

const FLAVOR: Flavor = Flavor {
    upstream: "Deepgram",
    credential: "API key",
    error_message,
};

/// A segment ends at a sentence's end, or after this many words.
const WORDS_PER_SEGMENT: usize = 16;

#[derive(Clone, Debug)]
pub struct DeepgramProvider {
    pub config: ProviderConfig,
    upstream: Upstream,
    /// `{base_url}/v1/listen`, the query added per request.
    listen: reqwest::Url,
}

impl DeepgramProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        let base = config
            .base_url
            .clone()
            .expect("validated: deepgram providers have a base_url");
        let root = base.as_str().trim_end_matches('/');
        let path = if root.ends_with("/v1") {
            "/listen"
        } else {
            "/v1/listen"
        };
        let listen = reqwest::Url::parse(&format!("{root}{path}"))
            .expect("a valid base URL plus a path is valid");
        DeepgramProvider {
            config: config.clone(),
            upstream,
            listen,
        }
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    pub async fn transcribe(&self, audio: Audio) -> Result<Transcript, ProviderError> {
        let key = http::credential(&self.upstream, &self.config, &FLAVOR).await?;
        let mut request = Request::new(audio.bytes.clone());
        *request.method_mut() = Method::POST;
        let mut headers = self.config.headers.clone();
        let content_type = HeaderValue::from_str(&audio.content_type).map_err(|_| {
            ProviderError::Untranslatable {
                provider: self.id().into(),
                message: format!("`{}` is not a usable Content-Type", audio.content_type),
            }
        })?;
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(key) = key {
            let token = SecretString::from(format!("Token {}", key.expose_secret()));
            headers.insert(header::AUTHORIZATION, http::sensitive(self.id(), &token)?);
        }
        *request.headers_mut() = headers;
        let target = Target::new(listen_url(&self.listen, &audio));
        let response = http::send(&self.upstream, &target, request, self.id(), &FLAVOR).await?;
        http::read_body(&self.upstream, response, self.id(), |body| decode(&body)).await
    }
}

/// The listen URL with the request's model and language. With no language, Deepgram is
/// asked to detect it, so a prototype spoken in French is not heard as English.
fn listen_url(listen: &reqwest::Url, audio: &Audio) -> reqwest::Url {
    let mut url = listen.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("model", &audio.model);
        query.append_pair("smart_format", "true");
        match audio.language.as_deref().filter(|l| !l.is_empty()) {
            Some(language) => query.append_pair("language", language),
            None => query.append_pair("detect_language", "true"),
        };
        let prompt = audio.prompt.as_deref().filter(|p| !p.is_empty());
        if let Some(prompt) = prompt.filter(|_| audio.model.starts_with("nova-3")) {
            // Nova-3's keyterm prompting (other models have none): the terms a prompt
            // lists, comma-separated.
            for term in prompt
                .split([',', '\n'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .take(20)
            {
                query.append_pair("keyterm", term);
            }
        }
    }
    url
}

#[derive(Deserialize)]
struct Listen {
    #[serde(default)]
    metadata: Metadata,
    results: Results,
}

#[derive(Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    duration: Option<f64>,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    channels: Vec<Channel>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
    #[serde(default)]
    detected_language: Option<String>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    words: Vec<Word>,
}

#[derive(Deserialize)]
struct Word {
    word: String,
    #[serde(default)]
    punctuated_word: Option<String>,
    start: f64,
    end: f64,
}

fn decode(body: &[u8]) -> Result<Transcript, DecodeError> {
    let listen: Listen = crate::wire::json_from_bytes(body)
        .map_err(|e| DecodeError::Malformed(format!("not Deepgram's listen answer: {e}")))?;
    let channel = listen.results.channels.into_iter().next();
    let language = channel.as_ref().and_then(|c| c.detected_language.clone());
    let alternative = channel.and_then(|c| c.alternatives.into_iter().next());
    let (text, words) = alternative
        .map(|a| (a.transcript, a.words))
        .unwrap_or_default();
    Ok(Transcript {
        text,
        duration_s: listen.metadata.duration,
        language,
        segments: segments(&words),
    })
}

/// Words grouped into timed segments: cut after a sentence's last word, or when one
/// grows long.
fn segments(words: &[Word]) -> Vec<Segment> {
    let mut out = vec![];
    let mut current: Vec<&Word> = vec![];
    for word in words {
        current.push(word);
        let text = word.punctuated_word.as_deref().unwrap_or(&word.word);
        if text.ends_with(['.', '?', '!']) || current.len() >= WORDS_PER_SEGMENT {
            out.push(segment(&current));
            current.clear();
        }
    }
    if !current.is_empty() {
        out.push(segment(&current));
    }
    out
}

fn segment(words: &[&Word]) -> Segment {
    Segment {
        start: words.first().map_or(0.0, |w| w.start),
        end: words.last().map_or(0.0, |w| w.end),
        text: words
            .iter()
            .map(|w| w.punctuated_word.as_deref().unwrap_or(&w.word))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Deepgram's words in an error body: `err_msg`, or `message` with its `details`.
fn error_message(v: &Value) -> Option<String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(message) = text("err_msg") {
        return Some(message.to_string());
    }
    let message = text("message")?;
    Some(match text("details") {
        Some(details) if details != message => format!("{message} ({details})"),
        _ => message.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_answer_becomes_a_transcript_with_timed_segments() {
        let body = br#"{"metadata": {"request_id": "r", "duration": 2.37, "channels": 1},
            "results": {"channels": [{"detected_language": "en", "alternatives": [{
                "transcript": "One two. Three.", "confidence": 0.9,
                "words": [
                    {"word": "one", "start": 0.1, "end": 0.4, "confidence": 0.9, "punctuated_word": "One"},
                    {"word": "two", "start": 0.5, "end": 0.9, "confidence": 0.9, "punctuated_word": "two."},
                    {"word": "three", "start": 1.2, "end": 1.6, "confidence": 0.9, "punctuated_word": "Three."}
                ]}]}]}}"#;
        let t = decode(body).unwrap();
        assert_eq!(t.text, "One two. Three.");
        assert_eq!(t.duration_s, Some(2.37));
        assert_eq!(t.language.as_deref(), Some("en"));
        assert_eq!(t.segments.len(), 2);
        assert_eq!(t.segments[0].text, "One two.");
        assert_eq!((t.segments[1].start, t.segments[1].end), (1.2, 1.6));
        // Silence: no words, an empty transcript, still a duration.
        let t = decode(br#"{"metadata": {"duration": 1.0}, "results": {"channels": [{"alternatives": [{"transcript": "", "words": []}]}]}}"#).unwrap();
        assert_eq!((t.text.as_str(), t.duration_s), ("", Some(1.0)));
        assert!(decode(b"{\"err_msg\": \"x\"}").is_err());
    }

    #[test]
    fn both_error_shapes_give_the_vendor_words() {
        let v: Value = serde_json::from_str(r#"{"err_code": "Bad Request", "err_msg": "Bad Request: failed to process audio: corrupt or unsupported data", "request_id": "u"}"#).unwrap();
        assert_eq!(
            error_message(&v).unwrap(),
            "Bad Request: failed to process audio: corrupt or unsupported data"
        );
        let v: Value = serde_json::from_str(r#"{"category": "INVALID_JSON", "message": "Invalid JSON submitted.", "details": "expected `:`", "request_id": "u"}"#).unwrap();
        assert_eq!(
            error_message(&v).unwrap(),
            "Invalid JSON submitted. (expected `:`)"
        );
    }

    #[test]
    fn the_url_carries_model_language_and_key_terms() {
        let base = reqwest::Url::parse("https://api.deepgram.com/v1/listen").unwrap();
        let mut audio = Audio {
            bytes: bytes::Bytes::new(),
            content_type: "audio/wav".into(),
            filename: "a.wav".into(),
            model: "nova-3".into(),
            language: Some("fr".into()),
            prompt: None,
        };
        assert_eq!(
            listen_url(&base, &audio).as_str(),
            "https://api.deepgram.com/v1/listen?model=nova-3&smart_format=true&language=fr"
        );
        audio.language = None;
        audio.prompt = Some("Protogate, Framer".into());
        assert_eq!(
            listen_url(&base, &audio).query(),
            Some("model=nova-3&smart_format=true&detect_language=true&keyterm=Protogate&keyterm=Framer")
        );
    }
}
