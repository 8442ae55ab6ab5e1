//! `POST /v1/audio/transcriptions`, as OpenAI serves it, so the OpenAI SDKs'
//! `audio.transcriptions.create` (and anything "OpenAI-compatible") transcribe through
//! Protogate with every voice provider, Deepgram's answers translated. Multipart `file`,
//! `model` (`provider/model`, or a bare model for the default voice provider),
//! `language`, `prompt`, `response_format`, `stream`. Errors in OpenAI's shape.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use super::{form, Call};
use crate::error::{ErrorShape, GatewayError};
use crate::gateway::{event_stream, AppState};
use crate::providers::voice::{TranscriptEvent, TranscriptStream};
use crate::request_log::RecordHandle;
use crate::wire::transcription::{self as wire, ResponseFormat};

pub async fn transcriptions(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    request: Request,
) -> Response {
    answer(&state, record, request)
        .await
        .unwrap_or_else(|e| e.response(ErrorShape::OpenAi))
}

async fn answer(
    state: &AppState,
    record: RecordHandle,
    request: Request,
) -> Result<Response, GatewayError> {
    let form = form::read(state, request, &["file"]).await?;
    let asked = form.field("response_format").unwrap_or_default();
    let format = ResponseFormat::parse(&asked).ok_or_else(|| {
        GatewayError::bad_request(format!(
            "`response_format` `{asked}` is not one Protogate answers: use {}",
            ResponseFormat::NAMES
        ))
    })?;
    let stream = match form.field("stream").as_deref() {
        None | Some("false" | "False" | "0") => false,
        Some("true" | "True" | "1") => true,
        Some(other) => {
            return Err(GatewayError::bad_request(format!(
                "`stream` must be true or false, not `{other}`"
            )))
        }
    };
    if stream && !matches!(format, ResponseFormat::Json | ResponseFormat::Text) {
        return Err(GatewayError::bad_request(format!(
            "`response_format` `{}` cannot be streamed: a stream is transcript.text events; \
             ask for json, or leave out `stream`",
            format.name()
        )));
    }
    let call = Call::prepare(state, &record, form, "file")?;
    call.provider.wait_turn(&record).await?;
    if stream {
        let permit = state.stream_permit()?;
        let events = call.provider.transcribe_stream(call.audio.clone()).await?;
        return Ok(sse(events, record, permit));
    }
    let mut transcript = call.provider.transcribe(call.audio.clone()).await?;
    transcript.duration_s = call.log(&record, &transcript);
    let (content_type, body) = wire::body(&transcript, format, call.audio.language.as_deref())
        .map_err(|reason| {
            GatewayError::bad_request(format!("{reason} (provider `{}`)", call.client_model))
        })?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The transcript's events as OpenAI streams them, each written whole as it arrives. A
/// failure after the head is an `error` event, which the SDKs raise; dropping the body
/// (the client left) drops the upstream call.
fn sse(
    mut events: TranscriptStream,
    record: RecordHandle,
    permit: OwnedSemaphorePermit,
) -> Response {
    let body = async_stream::stream! {
        let _permit = permit;
        let mut heard = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(TranscriptEvent::Delta(delta)) => {
                    heard |= !delta.is_empty();
                    record.push_answer(&delta);
                    yield Ok::<_, std::convert::Infallible>(wire::delta_event(&delta));
                }
                Ok(TranscriptEvent::Done(whole)) => {
                    if !heard && !whole.text.is_empty() {
                        record.push_answer(&whole.text);
                    }
                    yield Ok(wire::done_event(&whole));
                    return;
                }
                Err(e) => {
                    let e = GatewayError::from(e);
                    let message = e.to_string();
                    record.set_error(message.clone());
                    record.set_error_kind(e.kind());
                    yield Ok(wire::error_event(&message, e.error_type(), e.status().as_u16()));
                    return;
                }
            }
        }
    };
    event_stream(Body::from_stream(body))
}
