//! OpenAI's transcription format (`POST …/audio/transcriptions`), both ways: what an
//! OpenAI-compatible server answers, read into a [`Transcript`]; and what Protogate's
//! `/v1/audio/transcriptions` answers a client, written from a [`Transcript`] whichever
//! provider made it (Deepgram's included), so the OpenAI SDKs read it as OpenAI's.
//!
//! Bodies: `json` → `{text, usage?}`; `text` → the text; `verbose_json` → `{task,
//! language, duration, text, segments}`; `srt`/`vtt` → subtitles. Streaming
//! (`stream=true`): `data: {"type": "transcript.text.delta", "delta"}` events, then one
//! `transcript.text.done` with the whole `text`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::DecodeError;
use crate::providers::voice::{Segment, Transcript, TranscriptEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl ResponseFormat {
    pub const NAMES: &'static str = "json, text, verbose_json, srt or vtt";

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim() {
            "" | "json" => ResponseFormat::Json,
            "text" => ResponseFormat::Text,
            "verbose_json" => ResponseFormat::VerboseJson,
            "srt" => ResponseFormat::Srt,
            "vtt" => ResponseFormat::Vtt,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ResponseFormat::Json => "json",
            ResponseFormat::Text => "text",
            ResponseFormat::VerboseJson => "verbose_json",
            ResponseFormat::Srt => "srt",
            ResponseFormat::Vtt => "vtt",
        }
    }
}

// What an upstream answers.

#[derive(Deserialize)]
struct Wire {
    text: String,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    segments: Option<Vec<WireSegment>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct WireSegment {
    start: f64,
    end: f64,
    text: String,
}

/// A `json` or `verbose_json` answer. Whisper-style `usage: {type: "duration",
/// seconds}` gives the length when `duration` is absent.
pub fn decode(body: &[u8]) -> Result<Transcript, DecodeError> {
    let wire: Wire = super::json_from_bytes(body)
        .map_err(|e| DecodeError::Malformed(format!("not a transcription answer: {e}")))?;
    Ok(Transcript {
        duration_s: wire.duration.or_else(|| usage_seconds(wire.usage.as_ref())),
        text: wire.text,
        language: wire.language.filter(|l| !l.is_empty()),
        segments: wire
            .segments
            .unwrap_or_default()
            .into_iter()
            .map(|s| Segment {
                start: s.start,
                end: s.end,
                text: s.text.trim().to_string(),
            })
            .collect(),
    })
}

fn usage_seconds(usage: Option<&Value>) -> Option<f64> {
    let usage = usage?;
    (usage.get("type")? == "duration")
        .then(|| usage.get("seconds")?.as_f64())
        .flatten()
}

/// One event of a streamed answer; `None` for the kinds that carry no text
/// (`transcript.text.segment`, keep-alives).
pub fn decode_event(data: &str) -> Result<Option<TranscriptEvent>, DecodeError> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| DecodeError::Malformed(format!("a stream event is not JSON: {e}")))?;
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        return Err(DecodeError::Upstream(super::openai::error_message(error)));
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    match v.get("type").and_then(Value::as_str) {
        Some("transcript.text.delta") => Ok(text("delta").map(TranscriptEvent::Delta)),
        Some("transcript.text.done") => Ok(Some(TranscriptEvent::Done(Transcript {
            text: text("text").unwrap_or_default(),
            duration_s: usage_seconds(v.get("usage")),
            ..Transcript::default()
        }))),
        _ => Ok(None),
    }
}

// What a client is answered.

/// The body of a whole answer and its content type; `Err` names what the provider's
/// transcript lacks for `format` (timings, for subtitles and `verbose_json`).
pub fn body(
    t: &Transcript,
    format: ResponseFormat,
    language: Option<&str>,
) -> Result<(&'static str, String), String> {
    let no_timings = || {
        format!(
            "`response_format` `{}` needs the audio's timings, which this provider did not \
             give; ask for json or text",
            format.name()
        )
    };
    Ok(match format {
        ResponseFormat::Json => {
            let mut body = json!({"text": t.text});
            if let Some(seconds) = t.duration_s {
                body["usage"] = json!({"type": "duration", "seconds": seconds});
            }
            ("application/json", body.to_string())
        }
        ResponseFormat::Text => ("text/plain; charset=utf-8", format!("{}\n", t.text)),
        ResponseFormat::VerboseJson => {
            let duration = t.duration_s.ok_or_else(no_timings)?;
            let segments: Vec<Value> = cues(t)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(id, s)| {
                    json!({"id": id, "seek": 0, "start": s.start, "end": s.end,
                           "text": s.text, "tokens": [], "temperature": 0.0,
                           "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0})
                })
                .collect();
            let language = t.language.as_deref().or(language).unwrap_or("und");
            let body = json!({"task": "transcribe", "language": language,
                              "duration": duration, "text": t.text, "segments": segments,
                              "usage": {"type": "duration", "seconds": duration}});
            ("application/json", body.to_string())
        }
        ResponseFormat::Srt => (
            "text/plain; charset=utf-8",
            srt(&cues(t).ok_or_else(no_timings)?),
        ),
        ResponseFormat::Vtt => (
            "text/vtt; charset=utf-8",
            vtt(&cues(t).ok_or_else(no_timings)?),
        ),
    })
}

/// The timed pieces: the provider's segments, else the whole text as one cue over the
/// whole audio; `None` when neither is known.
fn cues(t: &Transcript) -> Option<Vec<Segment>> {
    if !t.segments.is_empty() {
        return Some(t.segments.clone());
    }
    let duration = t.duration_s?;
    Some(if t.text.trim().is_empty() {
        vec![]
    } else {
        vec![Segment {
            start: 0.0,
            end: duration,
            text: t.text.trim().to_string(),
        }]
    })
}

fn srt(cues: &[Segment]) -> String {
    let mut out = String::new();
    for (n, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            n + 1,
            timestamp(c.start, ','),
            timestamp(c.end, ','),
            c.text
        ));
    }
    out
}

fn vtt(cues: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in cues {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(c.start, '.'),
            timestamp(c.end, '.'),
            c.text
        ));
    }
    out
}

/// `HH:MM:SS,mmm` (SubRip) or `HH:MM:SS.mmm` (WebVTT).
fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// One `data:` event, whole, as OpenAI's SDKs read it.
fn event(value: Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

pub fn delta_event(delta: &str) -> Bytes {
    event(json!({"type": "transcript.text.delta", "delta": delta, "logprobs": null}))
}

pub fn done_event(t: &Transcript) -> Bytes {
    let mut done = json!({"type": "transcript.text.done", "text": t.text, "logprobs": null});
    if let Some(seconds) = t.duration_s {
        done["usage"] = json!({"type": "duration", "seconds": seconds});
    }
    event(done)
}

/// A failure after the stream started: an `error` object, which the SDKs raise.
pub fn error_event(message: &str, kind: &str, code: u16) -> Bytes {
    event(json!({"type": "error", "error": {"message": message, "type": kind, "code": code}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(segments: Vec<Segment>, duration_s: Option<f64>) -> Transcript {
        Transcript {
            text: "one two three".into(),
            duration_s,
            language: None,
            segments,
        }
    }

    #[test]
    fn upstream_answers_are_read_with_their_timings() {
        let t = decode(br#"{"task": "transcribe", "language": "english", "duration": 2.5, "text": "one two",
            "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 1.1, "text": " one two", "tokens": []}]}"#)
        .unwrap();
        assert_eq!((t.text.as_str(), t.duration_s), ("one two", Some(2.5)));
        assert_eq!(t.language.as_deref(), Some("english"));
        assert_eq!(t.segments[0].text, "one two");
        let t = decode(br#"{"text": "hi", "usage": {"type": "duration", "seconds": 3}}"#).unwrap();
        assert_eq!(t.duration_s, Some(3.0));
        let t =
            decode(br#"{"text": "hi", "usage": {"type": "tokens", "input_tokens": 3}}"#).unwrap();
        assert_eq!(t.duration_s, None);
        assert!(decode(b"hi").is_err());
    }

    #[test]
    fn stream_events_are_read() {
        let delta = decode_event(r#"{"type": "transcript.text.delta", "delta": "one"}"#).unwrap();
        assert_eq!(delta, Some(TranscriptEvent::Delta("one".into())));
        let done = decode_event(r#"{"type": "transcript.text.done", "text": "one two"}"#).unwrap();
        assert!(matches!(done, Some(TranscriptEvent::Done(t)) if t.text == "one two"));
        assert_eq!(
            decode_event(r#"{"type": "transcript.text.segment"}"#).unwrap(),
            None
        );
        assert!(matches!(
            decode_event(r#"{"error": {"message": "boom"}}"#),
            Err(DecodeError::Upstream(m)) if m == "boom"
        ));
    }

    #[test]
    fn subtitles_come_from_segments_or_one_cue_over_the_audio() {
        let segments = vec![
            Segment {
                start: 0.0,
                end: 1.5,
                text: "one two".into(),
            },
            Segment {
                start: 61.25,
                end: 3723.5,
                text: "three".into(),
            },
        ];
        let (_, srt) = body(
            &transcript(segments.clone(), Some(4000.0)),
            ResponseFormat::Srt,
            None,
        )
        .unwrap();
        assert_eq!(srt, "1\n00:00:00,000 --> 00:00:01,500\none two\n\n2\n00:01:01,250 --> 01:02:03,500\nthree\n\n");
        let (kind, vtt) = body(&transcript(vec![], Some(2.0)), ResponseFormat::Vtt, None).unwrap();
        assert_eq!(kind, "text/vtt; charset=utf-8");
        assert_eq!(
            vtt,
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\none two three\n\n"
        );
        let e = body(&transcript(vec![], None), ResponseFormat::Srt, None).unwrap_err();
        assert!(e.contains("`srt` needs the audio's timings"), "{e}");
        let (_, json) = body(
            &transcript(segments, Some(2.0)),
            ResponseFormat::VerboseJson,
            Some("en"),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (v["language"].as_str(), v["duration"].as_f64()),
            (Some("en"), Some(2.0))
        );
        assert_eq!(v["segments"][1]["start"], 61.25);
        let (_, json) = body(&transcript(vec![], None), ResponseFormat::Json, None).unwrap();
        assert_eq!(json, r#"{"text":"one two three"}"#);
    }
}
