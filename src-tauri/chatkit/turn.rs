//! One assistant turn as a ChatKit event stream: the whole thread goes to the provider
//! through the canonical chat model, and its text comes back as the assistant message's
//! content-part events, in the order the SDK's reference server emits them.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use super::store::{self, StoredThread};
use super::types::{
    AssistantMessageItem, Event, ImageAttachment, ItemUpdate, OutputText, StreamOptions,
    ThreadItem, UserMessageItem,
};
use crate::chat::{ChatEvent, ChatRequest, ImageSource, Message, Part, Role};
use crate::dispatch;
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::request_log::RecordHandle;
use crate::team::threads::{Threads, Which};

/// What an answer needs.
pub struct Turn {
    pub state: AppState,
    pub threads: Threads,
    pub origin: String,
    pub record: RecordHandle,
    /// The thread with the message to answer as its last user message.
    pub thread: StoredThread,
    /// Events that come before the answer (the new thread, the user's message).
    pub prelude: Vec<Event>,
    pub permit: OwnedSemaphorePermit,
}

/// Titles are the first message's opening words, cut at a word.
const TITLE_CHARS: usize = 48;

pub fn answer(turn: Turn) -> Response {
    let Turn {
        state,
        threads,
        origin,
        record,
        thread,
        prelude,
        permit,
    } = turn;
    let events = async_stream::stream! {
        let mut permit = Some(permit);
        for event in prelude {
            yield event;
        }
        yield Event::StreamOptions { stream_options: StreamOptions { allow_cancel: true } };
        let Some(last) = last_user_message(&thread) else {
            yield Event::error("this thread has no message to answer", false);
            return;
        };
        let (provider, chat) = match state
            .providers
            .route(None, last.inference_options.model.as_deref())
        {
            Ok((provider, model)) => {
                let chat = chat_request(&thread, model);
                record.set_request(provider.id(), &chat.model, chat.prompt());
                (provider, chat)
            }
            Err(why) => {
                record.set_error(why.clone());
                record.set_error_kind("bad_request");
                yield Event::error(why, false);
                return;
            }
        };
        let permit = permit.take().expect("taken once");
        let (mut frames, _permit) = match dispatch::stream_holding(&state, provider, chat, &record, permit).await {
            Ok(answer) => (answer.frames, answer.permit),
            Err(e) => {
                let message = e.to_string();
                record.set_error(message.clone());
                record.set_error_kind(e.kind());
                yield Event::error(message, true);
                return;
            }
        };
        let mut partial = Partial {
            threads: &threads,
            origin: &origin,
            item: AssistantMessageItem {
                id: store::new_id("msg"),
                thread_id: thread.meta.id.clone(),
                created_at: store::now(),
                content: vec![],
            },
            done: false,
        };
        yield Event::ItemAdded { item: ThreadItem::AssistantMessage(partial.item.clone()) };
        partial.item.content.push(OutputText::default());
        yield Event::ItemUpdated {
            item_id: partial.item.id.clone(),
            update: ItemUpdate::PartAdded { content_index: 0, content: OutputText::default() },
        };
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(frame) => {
                    let mut end = false;
                    for event in frame.events {
                        match event {
                            ChatEvent::Text(delta) if !delta.is_empty() => {
                                record.push_answer(&delta);
                                partial.item.content[0].text.push_str(&delta);
                                yield Event::ItemUpdated {
                                    item_id: partial.item.id.clone(),
                                    update: ItemUpdate::TextDelta { content_index: 0, delta },
                                };
                            }
                            ChatEvent::Usage(usage) => record.set_usage(usage),
                            ChatEvent::End => end = true,
                            _ => {}
                        }
                    }
                    if end {
                        break;
                    }
                }
                Err(e) => {
                    // As the SDK does on an error: the unfinished answer is not kept, so
                    // a retry starts clean.
                    partial.done = true;
                    let error = GatewayError::from(e);
                    record.set_error_kind(error.kind());
                    let message = error.to_string();
                    record.set_error(message.clone());
                    yield Event::error(message, true);
                    return;
                }
            }
        }
        partial.done = true;
        let item = partial.item.clone();
        yield Event::ItemUpdated {
            item_id: item.id.clone(),
            update: ItemUpdate::PartDone { content_index: 0, content: item.content[0].clone() },
        };
        let item = ThreadItem::AssistantMessage(item);
        let title = thread.meta.title.is_none().then(|| title_from(&last.text()));
        let id = &thread.meta.id;
        let saved = threads.run(&origin, Which::One(id), false, |store| {
            store.add_item(&origin, id, item.clone())?;
            Ok::<_, GatewayError>(title.and_then(|t| store.set_title(&origin, id, &t).ok()))
        });
        let titled = match saved.await.and_then(|saved| saved) {
            Ok(titled) => titled,
            Err(e) => {
                yield Event::error(e.to_string(), false);
                return;
            }
        };
        yield Event::ItemDone { item };
        if let Some(meta) = titled {
            yield Event::ThreadUpdated { thread: super::bare(meta) };
        }
    };
    sse(events)
}

/// A request the gateway cannot act on, answered in the stream as ChatKit.js expects.
pub fn refusal(prelude: Vec<Event>, reason: &'static str) -> Response {
    sse(futures_util::stream::iter(prelude.into_iter().chain([
        Event::StreamOptions {
            stream_options: StreamOptions { allow_cancel: true },
        },
        Event::error(reason, false),
    ])))
}

fn sse(events: impl futures_util::Stream<Item = Event> + Send + 'static) -> Response {
    let body = events.map(|event| {
        let mut line = b"data: ".to_vec();
        serde_json::to_writer(&mut line, &event).expect("events serialize");
        line.extend_from_slice(b"\n\n");
        Ok::<_, Infallible>(Bytes::from(line))
    });
    crate::gateway::event_stream(Body::from_stream(body))
}

/// An answer still streaming. If the page stops the stream (ChatKit's stop button, a
/// reload) the text so far is kept, as the SDK's server keeps it on cancellation.
struct Partial<'a> {
    threads: &'a Threads,
    origin: &'a str,
    item: AssistantMessageItem,
    done: bool,
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        let has_text = self.item.content.iter().any(|c| !c.text.trim().is_empty());
        if !self.done && has_text {
            let (origin, item) = (self.origin.to_string(), self.item.clone());
            let id = self.item.thread_id.clone();
            self.threads.run_later(self.origin, id, move |store| {
                let thread = item.thread_id.clone();
                let _ = store.add_item(&origin, &thread, ThreadItem::AssistantMessage(item));
            });
        }
    }
}

fn last_user_message(thread: &StoredThread) -> Option<UserMessageItem> {
    thread.items.iter().rev().find_map(|i| match i {
        ThreadItem::UserMessage(m) => Some(m.clone()),
        _ => None,
    })
}

/// The whole thread as history, images included.
pub fn chat_request(thread: &StoredThread, model: String) -> ChatRequest {
    let messages = thread
        .items
        .iter()
        .map(|item| match item {
            ThreadItem::UserMessage(m) => {
                let mut parts = vec![Part::Text(m.text())];
                parts.extend(m.attachments.iter().filter_map(image_part));
                Message {
                    role: Role::User,
                    parts,
                }
            }
            ThreadItem::AssistantMessage(m) => Message::text(
                Role::Assistant,
                m.content
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<String>(),
            ),
        })
        .collect();
    ChatRequest {
        model,
        messages,
        ..Default::default()
    }
}

/// An upload's `data:` URL as the model's image input.
pub fn image_part(upload: &ImageAttachment) -> Option<Part> {
    let (head, data) = upload.preview_url.strip_prefix("data:")?.split_once(',')?;
    Some(Part::Image(ImageSource::Base64 {
        media_type: head.strip_suffix(";base64")?.to_string(),
        data: data.to_string(),
    }))
}

/// The first words of `text`, at most [`TITLE_CHARS`] characters, cut at a word.
pub fn title_from(text: &str) -> String {
    let words = text.split_whitespace();
    let mut title = String::new();
    for word in words {
        let extra = usize::from(!title.is_empty()) + word.chars().count();
        if title.chars().count() + extra > TITLE_CHARS {
            if title.is_empty() {
                title = word.chars().take(TITLE_CHARS).collect();
            }
            title.push('…');
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if title.is_empty() {
        "New chat".into()
    } else {
        title
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_opening_words() {
        assert_eq!(
            title_from("  Plan a trip\nto Lisbon "),
            "Plan a trip to Lisbon"
        );
        let long = "Write a friendly onboarding message for a meditation app aimed at busy parents";
        let title = title_from(long);
        assert!(
            title.ends_with('…') && title.chars().count() <= TITLE_CHARS + 1,
            "{title}"
        );
        assert!(long.starts_with(title.trim_end_matches('…')), "{title}");
        assert_eq!(title_from(""), "New chat");
    }
}
