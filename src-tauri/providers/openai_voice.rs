//! Speech to text on an OpenAI-compatible server (OpenAI, Groq, speaches, LocalAI, vLLM):
//! `POST {base_url}/audio/transcriptions`, a multipart form with `file`, `model` and the
//! optional `language`, `prompt`, `response_format`, `stream`.
//!
//! `verbose_json` is asked for where the model gives it, for the duration, language and
//! segments the routes need; OpenAI's `gpt-4o*-transcribe` models give only `json`, and a
//! server that refuses `verbose_json` or `stream` with a 400 is asked once more plainly
//! (`json`). A streamed answer (`transcript.text.delta` … `transcript.text.done`) is read
//! event by event; a server that ignores `stream` (whisper-1) answers JSON, which is read
//! whole.

use axum::http::{Method, Request};
use futures_util::StreamExt;
use reqwest::header::{self, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::client::{Target, UpstreamResponse};
use super::form::Form;
use super::http::{self, Flavor};
use super::voice::{upstream_filename, Audio, Transcript, TranscriptEvent, TranscriptStream};
use super::{OpenAiProvider, Upstream};
use crate::error::ProviderError;
use crate::wire::sse;
use crate::wire::transcription::{decode, decode_event};
use crate::wire::DecodeError;

const FLAVOR: Flavor = Flavor {
    upstream: "The OpenAI-compatible server",
    credential: "API key",
    error_message: |v| v.get("error").map(crate::wire::openai::error_message),
};

/// What one attempt asks the server for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// `response_format=json`: what every server gives.
    Plain,
    /// `response_format=verbose_json`: with duration, language and segments.
    Verbose,
    /// `stream=true` with `json`.
    Stream,
}

impl OpenAiProvider {
    /// The whole transcript, with timings when the server gives them.
    pub async fn transcribe(&self, audio: Audio) -> Result<Transcript, ProviderError> {
        let ask = if gives_verbose(&audio.model) {
            Ask::Verbose
        } else {
            Ask::Plain
        };
        let response = self.send_asking(&audio, ask).await?;
        http::read_body(&self.upstream, response, &self.config.id, |body| {
            decode(&body)
        })
        .await
    }

    /// The transcript as the server streams it; one piece and the end when it does not.
    pub async fn transcribe_stream(&self, audio: Audio) -> Result<TranscriptStream, ProviderError> {
        let response = self.send_asking(&audio, Ask::Stream).await?;
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if streamed {
            return Ok(events(&self.upstream, response, &self.config.id));
        }
        let whole = http::read_body(&self.upstream, response, &self.config.id, |body| {
            decode(&body)
        })
        .await?;
        Ok(Box::pin(futures_util::stream::iter([
            Ok(TranscriptEvent::Delta(whole.text.clone())),
            Ok(TranscriptEvent::Done(whole)),
        ])))
    }

    /// Sends with `ask`, and once more plainly if the server refuses what it adds.
    async fn send_asking(
        &self,
        audio: &Audio,
        ask: Ask,
    ) -> Result<UpstreamResponse, ProviderError> {
        match self.send(audio, ask).await {
            Err(ProviderError::Status {
                status: 400 | 422, ..
            }) if ask != Ask::Plain => {
                tracing::debug!(provider = %&self.config.id, ?ask, "refused; asking for plain json");
                self.send(audio, Ask::Plain).await
            }
            sent => sent,
        }
    }

    async fn send(&self, audio: &Audio, ask: Ask) -> Result<UpstreamResponse, ProviderError> {
        let key = http::credential(&self.upstream, &self.config, &FLAVOR).await?;
        let mut form = Form::new(audio.bytes.len());
        let filename = upstream_filename(&audio.filename, &audio.content_type);
        form.file("file", &filename, &audio.content_type, &audio.bytes);
        form.text("model", &audio.model);
        let format = match ask {
            Ask::Verbose => "verbose_json",
            Ask::Plain | Ask::Stream => "json",
        };
        form.text("response_format", format);
        if ask == Ask::Stream {
            form.text("stream", "true");
        }
        if let Some(language) = audio.language.as_deref().filter(|l| !l.is_empty()) {
            form.text("language", language);
        }
        if let Some(prompt) = audio.prompt.as_deref().filter(|p| !p.is_empty()) {
            form.text("prompt", prompt);
        }
        let (content_type, body) = form.finish();
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        let mut headers = self.config.headers.clone();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type).expect("a boundary is header-safe"),
        );
        if let Some(key) = key {
            let bearer = SecretString::from(format!("Bearer {}", key.expose_secret()));
            headers.insert(
                header::AUTHORIZATION,
                http::sensitive(&self.config.id, &bearer)?,
            );
        }
        *request.headers_mut() = headers;
        let target = Target::new(self.transcriptions_url());
        http::send(&self.upstream, &target, request, &self.config.id, &FLAVOR).await
    }

    fn transcriptions_url(&self) -> reqwest::Url {
        let base = self
            .config
            .base_url
            .as_ref()
            .expect("validated: openai providers have a base_url");
        reqwest::Url::parse(&format!(
            "{}/audio/transcriptions",
            base.as_str().trim_end_matches('/')
        ))
        .expect("a valid base URL plus a path is valid")
    }
}

/// OpenAI's `gpt-4o-transcribe` family answers only `json` (and `text`); Whisper models
/// and the open servers give `verbose_json`.
fn gives_verbose(model: &str) -> bool {
    !(model.contains("gpt-4o") && model.contains("transcribe"))
}

/// The events of a streamed answer. An event not completed within the idle timeout, a
/// broken connection or an end before `transcript.text.done` is an error, never a
/// silent end; `done` without its text gets the deltas'.
fn events(upstream: &Upstream, response: UpstreamResponse, provider: &str) -> TranscriptStream {
    let idle = upstream.limits.idle_timeout;
    let provider = provider.to_string();
    let mut events = sse::events(response.into_body().into_data_stream());
    Box::pin(async_stream::stream! {
        let mut text = String::new();
        loop {
            let event = match tokio::time::timeout(idle, events.next()).await {
                Err(_) => {
                    yield Err(ProviderError::IdleTimeout { provider, after: idle });
                    return;
                }
                Ok(None) | Ok(Some(Err(_))) => {
                    yield Err(ProviderError::Cut { provider });
                    return;
                }
                Ok(Some(Ok(event))) => event,
            };
            if event.data.is_empty() || event.data == "[DONE]" {
                continue;
            }
            match decode_event(&event.data) {
                Ok(None) => {}
                Ok(Some(TranscriptEvent::Delta(delta))) => {
                    text.push_str(&delta);
                    yield Ok(TranscriptEvent::Delta(delta));
                }
                Ok(Some(TranscriptEvent::Done(mut whole))) => {
                    if whole.text.is_empty() {
                        whole.text = text;
                    }
                    yield Ok(TranscriptEvent::Done(whole));
                    return;
                }
                Err(DecodeError::Upstream(message)) => {
                    yield Err(ProviderError::InStream { provider, message });
                    return;
                }
                Err(DecodeError::Malformed(message)) => {
                    yield Err(ProviderError::Decode { provider, message });
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn gpt_4o_transcribers_are_asked_for_json_and_the_rest_for_verbose_json() {
        assert!(!super::gives_verbose("gpt-4o-mini-transcribe"));
        assert!(!super::gives_verbose("gpt-4o-transcribe-diarize"));
        assert!(super::gives_verbose("whisper-1"));
        assert!(super::gives_verbose("whisper-large-v3-turbo"));
    }
}
