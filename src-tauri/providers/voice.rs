//! Speech to text: what a voice provider is given and what it answers, whatever its
//! kind (Deepgram, an OpenAI-compatible server, the demo). Routes turn client formats
//! (`/api/voice/process`, `/v1/audio/transcriptions`) into an [`Audio`] and a
//! [`Transcript`] back into theirs.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use crate::error::ProviderError;

/// Audio to transcribe, as the page sent it. Never logged: only its size and duration.
#[derive(Clone, Debug)]
pub struct Audio {
    pub bytes: Bytes,
    /// Its media type, e.g. `audio/webm;codecs=opus` (what `MediaRecorder` makes).
    pub content_type: String,
    pub filename: String,
    /// The upstream's model name (provider prefix removed).
    pub model: String,
    /// BCP-47 language, when the page knows it.
    pub language: Option<String>,
    /// Words to expect (names, jargon), for the providers that take a prompt.
    pub prompt: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// Seconds of audio, when the provider (or the file's header) says.
    pub duration_s: Option<f64>,
    pub language: Option<String>,
    /// Timed pieces, for `verbose_json`, `srt` and `vtt`, when the provider gives them.
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A transcript as it arrives: pieces of text, then the whole of it. Providers that
/// cannot stream send one piece and the end.
#[derive(Clone, Debug, PartialEq)]
pub enum TranscriptEvent {
    Delta(String),
    Done(Transcript),
}

/// A streamed transcript; ends after [`TranscriptEvent::Done`] or an error, never
/// silently half-way.
pub type TranscriptStream =
    Pin<Box<dyn Stream<Item = Result<TranscriptEvent, ProviderError>> + Send>>;

/// The audio types the routes take: what `MediaRecorder` makes in Chrome, Firefox and
/// Safari, and the usual files. Parameters (`;codecs=opus`) are allowed.
pub const AUDIO_TYPES: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/mpeg",
    "audio/mp3",
    "audio/mp4",
    "audio/x-m4a",
    "audio/m4a",
    "audio/aac",
    "audio/ogg",
    "audio/opus",
    "audio/webm",
    "audio/flac",
    "audio/x-flac",
    "video/webm",
    "video/mp4",
];

/// Whether `content_type` is one of [`AUDIO_TYPES`], parameters aside.
pub fn is_audio_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    AUDIO_TYPES.contains(&essence.as_str())
}

/// The formats in plain words, for a 415.
pub const AUDIO_FORMATS: &str = "WAV, MP3, M4A/MP4, OGG/Opus, WebM or FLAC";

/// The media type of an upload: the declared one when it is audio; for a file sent as
/// `application/octet-stream` (or with no type), the one its name or its first bytes
/// say. `None` when it is not audio.
pub fn audio_type(declared: Option<&str>, filename: &str, bytes: &[u8]) -> Option<String> {
    let declared = declared.map(|t| t.trim().to_ascii_lowercase());
    match declared.as_deref() {
        Some(t) if is_audio_type(t) => return declared,
        None | Some("") | Some("application/octet-stream") => {}
        Some(_) => return None,
    }
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_name = match ext.as_deref() {
        Some("wav") => Some("audio/wav"),
        Some("mp3" | "mpga" | "mpeg") => Some("audio/mpeg"),
        Some("m4a" | "mp4" | "aac") => Some("audio/mp4"),
        Some("ogg" | "oga" | "opus") => Some("audio/ogg"),
        Some("webm") => Some("audio/webm"),
        Some("flac") => Some("audio/flac"),
        _ => None,
    };
    by_name.or_else(|| sniff(bytes)).map(String::from)
}

/// The format a file's first bytes announce.
fn sniff(b: &[u8]) -> Option<&'static str> {
    let at = |i: usize, sig: &[u8]| b.len() >= i + sig.len() && &b[i..i + sig.len()] == sig;
    if at(0, b"RIFF") && at(8, b"WAVE") {
        Some("audio/wav")
    } else if at(0, b"OggS") {
        Some("audio/ogg")
    } else if at(0, b"\x1a\x45\xdf\xa3") {
        Some("audio/webm")
    } else if at(4, b"ftyp") {
        Some("audio/mp4")
    } else if at(0, b"fLaC") {
        Some("audio/flac")
    } else if at(0, b"ID3") || (b.len() > 1 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0) {
        Some("audio/mpeg")
    } else {
        None
    }
}

/// The file extension of an audio type: OpenAI's API tells formats apart by the file's
/// name, and a `MediaRecorder` blob arrives named `blob`.
pub fn extension_for(content_type: &str) -> &'static str {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence.to_ascii_lowercase().as_str() {
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" | "audio/aac" => "m4a",
        "video/mp4" => "mp4",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/webm" | "video/webm" => "webm",
        "audio/flac" | "audio/x-flac" => "flac",
        _ => "wav",
    }
}

/// `filename` when it ends in an audio extension, else `audio.<ext>` for its type.
pub fn upstream_filename(filename: &str, content_type: &str) -> String {
    const KNOWN: &[&str] = &[
        "wav", "mp3", "mpga", "mpeg", "m4a", "mp4", "aac", "ogg", "oga", "opus", "webm", "flac",
    ];
    let clean: String = filename
        .chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    match clean.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && KNOWN.contains(&ext.to_ascii_lowercase().as_str()) =>
        {
            clean
        }
        _ => format!("audio.{}", extension_for(content_type)),
    }
}

/// The length of a PCM WAV file from its header, without decoding it.
pub fn wav_duration_s(bytes: &[u8]) -> Option<f64> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut byte_rate = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 12 <= bytes.len() {
            byte_rate = Some(u32::from_le_bytes(
                bytes[body + 8..body + 12].try_into().ok()?,
            ));
        }
        if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            // A recorder that streams writes 0 or 0xFFFFFFFF: the rest of the file is data.
            let size = if size == 0 || size == u32::MAX as usize {
                bytes.len() - body
            } else {
                size.min(bytes.len() - body)
            };
            return Some(size as f64 / f64::from(rate));
        }
        at = body + size + (size & 1);
    }
    None
}

/// "Hello from Protogate", spoken by espeak-ng (1.8 s, 16 kHz mono WAV): what a provider
/// check sends a voice provider, so the window's Test shows a real transcript.
pub const SPOKEN_SAMPLE: &[u8] = include_bytes!("../assets/hello-from-protogate.wav");

#[cfg(test)]
mod tests {
    use super::*;

    /// A mono 16-bit WAV of `samples` silent samples at `rate` Hz.
    fn wav(rate: u32, samples: u32) -> Vec<u8> {
        let data = samples * 2;
        let mut out = b"RIFF".to_vec();
        out.extend((36 + data).to_le_bytes());
        out.extend(b"WAVEfmt ");
        out.extend(16u32.to_le_bytes());
        out.extend(1u16.to_le_bytes());
        out.extend(1u16.to_le_bytes());
        out.extend(rate.to_le_bytes());
        out.extend((rate * 2).to_le_bytes());
        out.extend(2u16.to_le_bytes());
        out.extend(16u16.to_le_bytes());
        out.extend(b"data");
        out.extend(data.to_le_bytes());
        out.extend(std::iter::repeat_n(0u8, data as usize));
        out
    }

    #[test]
    fn a_wav_header_gives_its_length() {
        assert!((wav_duration_s(SPOKEN_SAMPLE).unwrap() - 1.77).abs() < 0.01);
        assert_eq!(wav_duration_s(&wav(16_000, 32_000)), Some(2.0));
        assert_eq!(wav_duration_s(b"OggS not a wav"), None);
        assert_eq!(wav_duration_s(&wav(16_000, 8_000)[..30]), None);
    }

    #[test]
    fn recorder_types_are_audio_and_others_are_not() {
        assert!(is_audio_type("audio/webm;codecs=opus"));
        assert!(is_audio_type("Audio/MP4"));
        assert!(is_audio_type("audio/wav"));
        assert!(!is_audio_type("application/pdf"));
        assert!(!is_audio_type("image/png"));
    }

    #[test]
    fn an_untyped_upload_is_known_by_its_name_or_its_bytes() {
        let wav = wav(16_000, 10);
        assert_eq!(
            audio_type(Some("audio/webm;codecs=opus"), "blob", b"").as_deref(),
            Some("audio/webm;codecs=opus")
        );
        assert_eq!(
            audio_type(Some("application/octet-stream"), "a.MP3", b"").as_deref(),
            Some("audio/mpeg")
        );
        assert_eq!(audio_type(None, "blob", &wav).as_deref(), Some("audio/wav"));
        assert_eq!(
            audio_type(None, "blob", b"OggS\0\x02").as_deref(),
            Some("audio/ogg")
        );
        assert_eq!(audio_type(Some("image/png"), "a.wav", &wav), None);
        assert_eq!(audio_type(None, "notes.txt", b"hello"), None);
        assert_eq!(
            upstream_filename("blob", "audio/webm;codecs=opus"),
            "audio.webm"
        );
        assert_eq!(
            upstream_filename("take \"1\".wav", "audio/wav"),
            "take _1_.wav"
        );
        assert_eq!(upstream_filename("x.m4a", "audio/mp4"), "x.m4a");
    }
}
