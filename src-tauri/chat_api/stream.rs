//! A turn's answer as the chat API's events: a first event naming the conversation,
//! provider and model, the text as it comes, then `[DONE]`; a failure after the start is
//! one `error` event before `[DONE]`. The turn is stored when the answer is complete.
//!
//! `POST /api/chat/stream` serves these events directly (a page that leaves cancels the
//! upstream call); `GET /api/chat/stream` has a task drive them into a [`Replay`] that
//! the page's `EventSource` reads, and comes back to after a cut.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::events::EventWriter;
use super::replay::Replay;
use super::turn::Turn;
use crate::chat::ChatEvent;
use crate::error::GatewayError;
use crate::providers::FrameStream;
use crate::request_log::RecordHandle;

/// The events of one answer. Dropping the stream drops the upstream call.
pub fn answer_events(
    turn: Turn,
    mut frames: FrameStream,
    mut writer: EventWriter,
    record: RecordHandle,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Bytes> + Send + 'static {
    async_stream::stream! {
        let _permit = permit;
        yield writer.start(&turn.conversation_id, turn.provider.id(), &turn.client_model);
        let mut answer = String::new();
        while let Some(item) = frames.next().await {
            match item {
                Ok(frame) => {
                    let mut end = false;
                    for event in frame.events {
                        match event {
                            ChatEvent::Text(text) if !text.is_empty() => {
                                record.push_answer(&text);
                                answer.push_str(&text);
                                yield writer.text(&text);
                            }
                            ChatEvent::Usage(usage) => record.set_usage(usage),
                            ChatEvent::End => end = true,
                            _ => {}
                        }
                    }
                    if end {
                        if let Err(e) = turn.finish(&answer).await {
                            yield writer.error(&e.to_string());
                        }
                        yield writer.done();
                        return;
                    }
                }
                Err(e) => {
                    let error = GatewayError::from(e);
                    record.set_error_kind(error.kind());
                    let error = error.to_string();
                    record.set_error(error.clone());
                    yield writer.error(&error);
                    yield writer.done();
                    return;
                }
            }
        }
    }
}

/// Drives `events` into `replay` on a task of its own, so a cut connection does not cut
/// the answer; stops the upstream call when no page has read it for the grace period.
pub fn spawn_into(replay: Arc<Replay>, events: impl Stream<Item = Bytes> + Send + 'static) {
    tokio::spawn(async move {
        let events = std::pin::pin!(events);
        let mut events = events;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(event) => replay.push(event),
                    None => break,
                },
                _ = check.tick() => if replay.abandoned() {
                    break;
                },
            }
        }
        replay.end();
    });
}

/// The whole answer of a stream whose missed part is gone: one error that says so, then
/// the end, numbered so that the page's next reconnect is told to stop.
pub fn lost(stream: &str) -> Vec<Bytes> {
    let mut writer = EventWriter::new(stream.to_string());
    vec![
        writer.error(
            "the connection was cut and the rest of this answer is no longer kept \
             (an answer is kept a minute after it ends); ask again",
        ),
        writer.done(),
    ]
}
