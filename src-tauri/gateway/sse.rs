//! Turns a provider's frames into a client's SSE body. Each frame is written as one
//! piece as soon as it arrives (never held back), and the request log follows along.
//! Dropping the body (the client left) drops the provider stream, and with it the
//! upstream connection, which cancels the upstream request.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::chat::{ChatEvent, Frame};
use crate::error::GatewayError;
use crate::providers::FrameStream;
use crate::request_log::RecordHandle;

/// Writes frames in one client format.
pub trait Encoder: Send + 'static {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>);
    /// The end of a stream that failed after it started, in a way the client's SDKs
    /// surface as an error.
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>);
}

/// An SSE response streaming `frames` through `encoder`. A failure mid-stream becomes
/// an error event, never a silent clean end.
///
/// Returns once the first frame is in (within the upstream's idle timeout), so the
/// response head and the first event leave in one write: the head alone tells the
/// client nothing, and a second write costs it a wakeup before the first token.
pub async fn response(
    mut frames: FrameStream,
    mut encoder: impl Encoder,
    record: RecordHandle,
    permit: OwnedSemaphorePermit,
) -> Response {
    let first = frames.next().await;
    let mut frames = futures_util::stream::iter(first).chain(frames);
    let body = async_stream::stream! {
        let _permit = permit;
        while let Some(item) = frames.next().await {
            let mut out = Vec::with_capacity(256);
            match item {
                Ok(frame) => {
                    let mut end = false;
                    for event in &frame.events {
                        match event {
                            ChatEvent::Text(text) => record.push_answer(text),
                            ChatEvent::Usage(usage) => record.set_usage(*usage),
                            ChatEvent::End => end = true,
                            ChatEvent::ToolCallStart { name, .. } => {
                                record.push_answer(&format!("[calls {name}] "))
                            }
                            ChatEvent::Finish(reason) => {
                                record.set_finish_reason(reason.as_openai())
                            }
                            ChatEvent::ToolCallDelta { .. } => {}
                        }
                    }
                    encoder.encode(&frame, &mut out);
                    if !out.is_empty() {
                        yield Ok::<_, std::convert::Infallible>(Bytes::from(out));
                    }
                    if end {
                        break;
                    }
                }
                Err(e) => {
                    let error = GatewayError::from(e);
                    record.set_error(error.to_string());
                    record.set_error_kind(error.kind());
                    encoder.error(&error, &mut out);
                    yield Ok(Bytes::from(out));
                    break;
                }
            }
        }
    };
    event_stream(Body::from_stream(body))
}

/// A `text/event-stream` response that nothing between here and the client buffers.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells reverse proxies (nginx) in front of a headless gateway not to buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
