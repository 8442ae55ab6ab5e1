//! ChatKit's custom-server protocol on `POST /api/chatkit`: OpenAI's embeddable chat UI
//! (`<openai-chatkit>`), answered by any configured provider.
//!
//! One JSON request per call (`{type, params, metadata}`, see [`types::Request`]); the
//! thread-changing ones answer an event stream in the order the SDK's reference server
//! emits it, the rest one JSON document in the SDK's shapes. Threads live in a
//! [`store::Store`] per origin. A failure once the stream has started is an `error`
//! event in plain words, never a cut stream.

pub mod store;
mod turn;
pub mod types;
mod upload;

pub use turn::{chat_request, image_part};
pub(crate) use upload::read_upload;
pub use upload::upload;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::error::GatewayError;
use crate::gateway::{AppState, JsonBody};
use crate::request_log::RecordHandle;
use crate::team::threads::{Threads, Which};
use store::{Store, StoreError, StoredThread};
use types::{
    Event, ImageAttachment, Page, Request, ThreadItem, ThreadMetadata, UserMessageInput,
    UserMessageItem,
};

/// Where a request without an `Origin` (a script, `curl`) keeps its threads.
const NO_ORIGIN: &str = "(no origin)";

/// The threads of the gateway's settings: opened on first use, shared by every state
/// built from the same settings directory.
pub fn store_of(state: &AppState) -> Arc<Store> {
    state
        .chatkit
        .get_or_init(|| {
            let settings = &state.config.chatkit;
            // In team mode Redis keeps the threads (team/threads.rs): no file of our own.
            let dir = settings.dir.as_deref().filter(|_| state.redis.is_none());
            Store::shared(dir, settings.bounds)
        })
        .clone()
}

/// Whose threads (and conversations) a request reads and writes: its page's origin;
/// scripts without one share theirs.
pub fn origin_key(headers: &HeaderMap) -> String {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or(NO_ORIGIN)
        .to_string()
}

/// `POST /api/chatkit`.
pub async fn handle(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<Request>,
) -> Result<Response, GatewayError> {
    let origin = origin_key(&headers);
    let threads = Threads::of(&state);
    if request.is_streaming() {
        return streaming(state, threads, origin, record, request).await;
    }
    let uploads = matches!(request, Request::AttachmentDelete { .. });
    let named = thread_of(&request);
    let which = match &request {
        Request::List { .. } => Which::All,
        _ => named.as_deref().map_or(Which::New, Which::One),
    };
    let run = |store: &Store| -> Result<serde_json::Value, GatewayError> {
        Ok(match request {
            Request::GetById { params } => {
                record.set_thread(&params.thread_id);
                let thread = store.thread(&origin, &params.thread_id)?;
                let items = store.list_items(
                    &origin,
                    &types::ItemsListParams {
                        thread_id: params.thread_id,
                        limit: None,
                        order: types::Order::Asc,
                        after: None,
                    },
                )?;
                json!(types::Thread {
                    meta: thread.meta,
                    items
                })
            }
            Request::List { params } => {
                let page = store.list_threads(&origin, &params);
                json!(Page {
                    data: page.data.into_iter().map(bare).collect(),
                    has_more: page.has_more,
                    after: page.after,
                })
            }
            Request::ItemsList { params } => {
                record.set_thread(&params.thread_id);
                json!(store.list_items(&origin, &params)?)
            }
            Request::Update { params } => {
                record.set_thread(&params.thread_id);
                let title = params.title.trim();
                json!(bare(store.set_title(&origin, &params.thread_id, title)?))
            }
            Request::Delete { params } => {
                record.set_thread(&params.thread_id);
                store.delete_thread(&origin, &params.thread_id);
                json!({})
            }
            Request::Feedback { params } => {
                record.set_thread(&params.thread_id);
                store.set_feedback(&origin, &params.thread_id, &params.item_ids, params.kind)?;
                json!({})
            }
            Request::AttachmentCreate { params } => {
                return Err(GatewayError::bad_request(format!(
                    "`{}` was not uploaded: Protogate takes attachments through the direct \
                 upload strategy; set api.uploadStrategy to {{type: \"direct\", uploadUrl: \
                 \"<endpoint>/api/chatkit/upload\"}}",
                    params.name
                )));
            }
            Request::AttachmentDelete { params } => {
                store.delete_upload(&origin, &params.attachment_id);
                json!({})
            }
            Request::Transcribe {} => {
                return Err(GatewayError::bad_request(
                    "dictation (input.transcribe) is not supported by Protogate; turn \
                 composer.dictation off",
                ));
            }
            Request::SyncCustomAction { .. } => {
                return Err(GatewayError::bad_request(
                    "custom actions (widgets) are not supported by Protogate",
                ));
            }
            _ => unreachable!("streaming requests are answered above"),
        })
    };
    let answer = threads.run(&origin, which, uploads, run).await??;
    Ok(Json(answer).into_response())
}

/// The thread-changing requests: the user's message is stored, then answered.
async fn streaming(
    state: AppState,
    threads: Threads,
    origin: String,
    record: RecordHandle,
    request: Request,
) -> Result<Response, GatewayError> {
    // Taken before anything is stored: a busy gateway leaves no unanswered message behind.
    let permit = state.stream_permit()?;
    let attaches = match &request {
        Request::ThreadsCreate { params } => !params.input.attachments.is_empty(),
        Request::AddUserMessage { params } => !params.input.attachments.is_empty(),
        _ => false,
    };
    let named = thread_of(&request);
    let which = named.as_deref().map_or(Which::New, Which::One);
    let prepare = |store: &Store| prelude(store, &origin, &record, request);
    let (thread, prelude, refusal) = threads.run(&origin, which, attaches, prepare).await??;
    if let Some(reason) = refusal {
        record.set_error(reason);
        record.set_error_kind("bad_request");
        return Ok(turn::refusal(prelude, reason));
    }
    Ok(turn::answer(turn::Turn {
        state,
        threads,
        origin,
        record,
        thread,
        prelude,
        permit,
    }))
}

/// What a thread-changing request stores before its answer: the thread to answer, the
/// events that come first, and the reason it cannot be answered, if any.
fn prelude(
    store: &Store,
    origin: &str,
    record: &RecordHandle,
    request: Request,
) -> Result<(StoredThread, Vec<Event>, Option<&'static str>), GatewayError> {
    let mut prelude = Vec::new();
    let (thread_id, refusal) = match request {
        Request::ThreadsCreate { params } => {
            let meta = store.create_thread(origin);
            prelude.push(Event::ThreadCreated {
                thread: bare(meta.clone()),
            });
            let item = user_message(store, origin, &meta.id, params.input)?;
            store.add_item(origin, &meta.id, item.clone())?;
            prelude.push(Event::ItemDone { item });
            (meta.id, None)
        }
        Request::AddUserMessage { params } => {
            store.thread(origin, &params.thread_id)?;
            let item = user_message(store, origin, &params.thread_id, params.input)?;
            store.add_item(origin, &params.thread_id, item.clone())?;
            prelude.push(Event::ItemDone { item });
            (params.thread_id, None)
        }
        Request::RetryAfterItem { params } => {
            store.truncate_after(origin, &params.thread_id, &params.item_id)?;
            (params.thread_id, None)
        }
        Request::AddClientToolOutput { params } => (
            params.thread_id,
            Some("no client tool call is waiting: Protogate's answers call no client tools"),
        ),
        Request::AddStructuredInput { params } => (
            params.thread_id,
            Some("structured input is not supported by Protogate"),
        ),
        Request::CustomAction { params } => (
            params.thread_id,
            Some("custom actions (widgets) are not supported by Protogate"),
        ),
        _ => unreachable!("only streaming requests come here"),
    };
    record.set_thread(&thread_id);
    let thread = store.thread(origin, &thread_id)?;
    Ok((thread, prelude, refusal))
}

fn user_message(
    store: &Store,
    origin: &str,
    thread_id: &str,
    input: UserMessageInput,
) -> Result<ThreadItem, GatewayError> {
    let attachments = input
        .attachments
        .iter()
        .map(|id| store.take_upload(origin, id, thread_id))
        .collect::<Result<Vec<ImageAttachment>, _>>()?;
    Ok(ThreadItem::UserMessage(UserMessageItem {
        id: store::new_id("msg"),
        thread_id: thread_id.to_string(),
        created_at: store::now(),
        content: input.content,
        attachments,
        quoted_text: input.quoted_text,
        inference_options: input.inference_options,
    }))
}

/// The thread a request is about, if it names one.
fn thread_of(request: &Request) -> Option<String> {
    let id = match request {
        Request::AddUserMessage { params } => &params.thread_id,
        Request::RetryAfterItem { params } => &params.thread_id,
        Request::ItemsList { params } => &params.thread_id,
        Request::Update { params } => &params.thread_id,
        Request::Feedback { params } => &params.thread_id,
        Request::AddClientToolOutput { params }
        | Request::AddStructuredInput { params }
        | Request::CustomAction { params }
        | Request::SyncCustomAction { params }
        | Request::GetById { params }
        | Request::Delete { params } => &params.thread_id,
        _ => return None,
    };
    Some(id.clone())
}

/// A thread as the SDK's server answers it: the integration's metadata left out.
fn bare(meta: ThreadMetadata) -> types::Thread {
    types::Thread {
        meta: ThreadMetadata {
            metadata: Default::default(),
            ..meta
        },
        items: Page::empty(),
    }
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        GatewayError::Missing(e.to_string())
    }
}
