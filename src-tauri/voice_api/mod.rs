//! Speech to text for prototypes: the wiring spec's `POST /api/voice/process` (its
//! `processVoice(audio)`) and OpenAI's `POST /v1/audio/transcriptions`, served by any
//! voice provider (Deepgram, an OpenAI-compatible server with a `transcription_model`,
//! the demo) with the key kept in the keychain.
//!
//! The request log gets the audio's type, size and duration, never the audio; the
//! transcript is the record's answer (truncated like any answer).

mod form;
mod transcriptions;

pub use transcriptions::transcriptions;

use axum::extract::{Request, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::config::Capability;
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::providers::voice::{self, Audio, Transcript};
use crate::providers::Provider;
use crate::request_log::RecordHandle;
use form::{Upload, VoiceForm};

/// `POST /api/voice/process`: multipart `audio` (or `file`), optional `provider`,
/// `model`, `language`, `prompt` → `{text, provider, model, duration_s, language?}`.
pub async fn process(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    request: Request,
) -> Result<Json<Value>, GatewayError> {
    let form = form::read(&state, request, &["audio", "file"]).await?;
    let call = Call::prepare(&state, &record, form, "audio")?;
    call.provider.wait_turn(&record).await?;
    let transcript = call.provider.transcribe(call.audio.clone()).await?;
    let duration_s = call.log(&record, &transcript);
    let mut body = json!({
        "text": transcript.text,
        "provider": call.provider.id(),
        "model": call.client_model,
        "duration_s": duration_s,
    });
    if let Some(language) = transcript.language.or(call.audio.language) {
        body["language"] = json!(language);
    }
    Ok(Json(body))
}

/// A voice request checked and routed: the provider, the audio as it goes upstream, and
/// the model as the client names it (`provider/model`).
struct Call<'a> {
    provider: &'a Provider,
    audio: Audio,
    client_model: String,
}

impl<'a> Call<'a> {
    /// Checks the file (present, audio, not empty) and picks the voice provider: 400,
    /// 415 or 400 naming the providers that can, before anything goes upstream.
    fn prepare(
        state: &'a AppState,
        record: &RecordHandle,
        mut form: VoiceForm,
        file_field: &str,
    ) -> Result<Self, GatewayError> {
        let Some(Upload {
            filename,
            content_type,
            bytes,
        }) = form.file.take()
        else {
            return Err(GatewayError::bad_request(format!(
                "the form has no `{file_field}` file; send the recording as multipart form data \
                 (FormData with the audio under `{file_field}`)"
            )));
        };
        let Some(content_type) = voice::audio_type(content_type.as_deref(), &filename, &bytes)
        else {
            let declared = content_type.unwrap_or_else(|| "of no known type".into());
            return Err(GatewayError::UnsupportedMedia(format!(
                "`{filename}` is {declared}: send audio as {} ({})",
                voice::AUDIO_FORMATS,
                voice::AUDIO_TYPES.join(", ")
            )));
        };
        if bytes.is_empty() {
            return Err(GatewayError::bad_request(format!(
                "`{filename}` is empty: the recording has no audio (did the recorder stop \
                 before it started?)"
            )));
        }
        let (provider, model) = state
            .providers
            .pick(
                Capability::Voice,
                form.field("provider").as_deref(),
                form.field("model").as_deref(),
            )
            .map_err(GatewayError::bad_request)?;
        let audio = Audio {
            bytes,
            content_type,
            filename,
            model,
            language: form.field("language"),
            prompt: form.field("prompt"),
        };
        let client_model = format!("{}/{}", provider.id(), audio.model);
        record.set_request(provider.id(), &client_model, describe(&audio, None));
        Ok(Call {
            provider,
            audio,
            client_model,
        })
    }

    /// Writes the transcript and the audio's length on the record; the length, from the
    /// provider or else the WAV header.
    fn log(&self, record: &RecordHandle, transcript: &Transcript) -> Option<f64> {
        let duration_s = transcript
            .duration_s
            .or_else(|| voice::wav_duration_s(&self.audio.bytes));
        record.set_request(
            self.provider.id(),
            &self.client_model,
            describe(&self.audio, duration_s),
        );
        if !transcript.text.is_empty() {
            record.push_answer(&transcript.text);
        }
        duration_s
    }
}

/// What the log shows of the audio: "audio: audio/wav, 104.4 KB, 2.4 s".
fn describe(audio: &Audio, duration_s: Option<f64>) -> String {
    let duration_s = duration_s.or_else(|| voice::wav_duration_s(&audio.bytes));
    let mut text = format!(
        "audio: {}, {:.1} KB",
        audio.content_type,
        audio.bytes.len() as f64 / 1024.0
    );
    if let Some(s) = duration_s {
        text.push_str(&format!(", {s:.1} s"));
    }
    if let Some(language) = &audio.language {
        text.push_str(&format!(", language {language}"));
    }
    text
}
