//! The wiring spec's chat API (`../shared/seeds/001_*`): `POST /api/chat`, the stream as
//! `POST` and as `GET` for `EventSource` (resumed after a cut, never asked twice),
//! conversations kept server-side, image uploads, and the providers as "agents".
//! Conversations are ChatKit's threads: one store, per origin, bounded, persisted.

mod events;
mod replay;
mod stream;
mod turn;
mod upload;

pub use crate::chatkit::origin_key;
pub use replay::Replays;
pub use turn::{prepare, ChatInput, Turn};
pub use upload::upload;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::chatkit::store::{Store, StoredThread};
use crate::chatkit::types::ThreadItem;
use crate::config::KeyUse;
use crate::dispatch;
use crate::error::GatewayError;
use crate::gateway::{event_stream, AppState, JsonBody};
use crate::request_log::RecordHandle;
use crate::team::threads::{Threads, Which};
use events::{EventWriter, LastEvent};
use replay::Resume;

/// `POST /api/chat`: the whole answer as one JSON document.
pub async fn chat(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ChatInput>,
) -> Result<Json<Value>, GatewayError> {
    let turn = prepare(&state, &origin_key(&headers), input, &record).await?;
    let completion = dispatch::complete(&state, &turn.provider, turn.chat.clone(), &record).await?;
    record.push_answer(&completion.text);
    if let Some(usage) = completion.usage {
        record.set_usage(usage);
    }
    turn.finish(&completion.text).await?;
    Ok(Json(json!({
        "response": completion.text,
        "conversation_id": turn.conversation_id,
        "provider": turn.provider.id(),
        "model": turn.client_model,
        "usage": completion.usage,
        "finish_reason": completion.finish.map(|f| f.as_openai()),
    })))
}

/// `POST /api/chat/stream`: the seed contract's events, with ids and a first event
/// naming the conversation.
pub async fn chat_stream_post(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ChatInput>,
) -> Result<Response, GatewayError> {
    let (turn, frames, permit) = start(&state, &origin_key(&headers), input, &record).await?;
    let writer = EventWriter::new(new_stream_id());
    let events = stream::answer_events(turn, frames, writer, record, permit);
    Ok(sse(events))
}

/// The spec's `streamChat` puts the request in the query string (`URLSearchParams` of
/// its fields), since `EventSource` can only GET.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    message: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    conversation_id: Option<String>,
    system: Option<String>,
    temperature: Option<String>,
    max_tokens: Option<String>,
    /// Comma-separated, as `String(array)` writes it.
    file_ids: Option<String>,
    /// The last event id a page saw, for a page that opens a new `EventSource` after the
    /// browser gave up on the old one (Chromium closes it for good when a connection
    /// breaks mid-body, instead of reconnecting). The header, when sent, wins.
    last_event_id: Option<String>,
}

impl StreamQuery {
    fn into_input(self) -> Result<ChatInput, GatewayError> {
        fn number<T: std::str::FromStr>(
            name: &str,
            v: Option<String>,
        ) -> Result<Option<T>, GatewayError> {
            v.filter(|v| !v.is_empty() && v != "undefined")
                .map(|v| {
                    v.parse().map_err(|_| {
                        GatewayError::bad_request(format!("`{name}` must be a number, not `{v}`"))
                    })
                })
                .transpose()
        }
        let Some(message) = self.message else {
            return Err(GatewayError::bad_request(
                "`message` is missing: open the stream as /api/chat/stream?message=Hello",
            ));
        };
        Ok(ChatInput {
            message,
            provider: self.provider,
            model: self.model,
            conversation_id: self.conversation_id.filter(|c| !c.is_empty()),
            system: self.system,
            temperature: number("temperature", self.temperature)?,
            max_tokens: number("max_tokens", self.max_tokens)?,
            file_ids: self
                .file_ids
                .map(|ids| {
                    ids.split(',')
                        .map(str::trim)
                        .filter(|i| !i.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// `GET /api/chat/stream`, for `new EventSource(url)`. The browser reconnects on its own
/// whenever a connection ends, sending the last id it saw: after `[DONE]` it is told
/// `204 No Content` (which stops it for good), after a cut it gets the rest of the same
/// answer. Neither asks the model again.
pub async fn chat_stream_get(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Response, GatewayError> {
    let origin = origin_key(&headers);
    let last = headers
        .get("last-event-id")
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| query.last_event_id.clone().filter(|id| !id.is_empty()));
    if let Some(last) = last {
        return Ok(reconnect(&state, &record, &origin, &last));
    }
    let input = query.into_input()?;
    let (turn, frames, permit) = start(&state, &origin, input, &record).await?;
    let id = new_stream_id();
    let replay = state.replays.start(&id, &origin);
    let events = stream::answer_events(turn, frames, EventWriter::new(id), record, permit);
    stream::spawn_into(replay.clone(), events);
    Ok(sse(replay.follow(0)))
}

/// An `EventSource` coming back with `Last-Event-ID`.
fn reconnect(state: &AppState, record: &RecordHandle, origin: &str, last: &str) -> Response {
    match events::last_event(last) {
        Some(LastEvent::Done) => {
            record.set_note("the page's EventSource came back after [DONE]: told 204 to stop");
            StatusCode::NO_CONTENT.into_response()
        }
        Some(LastEvent::Seen { stream, n }) => match state.replays.resume(stream, origin, n) {
            Resume::From(replay) => {
                record.set_note(&format!("resumed stream {stream} after event {n}"));
                sse(replay.follow(n + 1))
            }
            Resume::Lost => {
                record.set_error(format!(
                    "stream {stream} is no longer kept; told the page so"
                ));
                record.set_error_kind("not_found");
                sse(futures_util::stream::iter(stream::lost(stream)))
            }
        },
        None => {
            record.set_error(format!(
                "unknown Last-Event-ID `{last}`; told the page to stop"
            ));
            record.set_error_kind("bad_request");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

/// Prepares a turn and opens its upstream stream: errors up to here are a status code.
async fn start(
    state: &AppState,
    origin: &str,
    input: ChatInput,
    record: &RecordHandle,
) -> Result<
    (
        Turn,
        crate::providers::FrameStream,
        tokio::sync::OwnedSemaphorePermit,
    ),
    GatewayError,
> {
    let turn = prepare(state, origin, input, record).await?;
    let answer = dispatch::stream(state, &turn.provider, turn.chat.clone(), record).await?;
    Ok((turn, answer.frames, answer.permit))
}

fn sse(events: impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static) -> Response {
    event_stream(Body::from_stream(
        events.map(Ok::<_, std::convert::Infallible>),
    ))
}

fn new_stream_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("cs_{}", &hex[..16])
}

/// This page's conversation `id`; deleted first if `delete`.
async fn find(
    state: &AppState,
    origin: &str,
    id: &str,
    delete: bool,
) -> Result<StoredThread, GatewayError> {
    let threads = Threads::of(state);
    let found = threads.run(origin, Which::One(id), false, |store| {
        let thread = store.thread(origin, id)?;
        if delete {
            store.delete_thread(origin, id);
        }
        Ok(thread)
    });
    found.await?.map_err(turn::refusal)
}

/// `GET /api/conversations/{id}`: its messages, oldest first.
pub async fn conversation_get(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    record.set_thread(&id);
    let thread = find(&state, &origin_key(&headers), &id, false).await?;
    let messages: Vec<Value> = thread
        .items
        .iter()
        .map(|item| match item {
            ThreadItem::UserMessage(m) => json!({
                "id": m.id, "role": "user", "content": m.text(), "created_at": m.created_at,
                "file_ids": m.attachments.iter().map(|a| &a.id).collect::<Vec<_>>(),
            }),
            ThreadItem::AssistantMessage(m) => json!({
                "id": m.id, "role": "assistant", "created_at": m.created_at,
                "content": m.content.iter().map(|c| c.text.as_str()).collect::<String>(),
            }),
        })
        .collect();
    Ok(Json(json!({
        "conversation_id": thread.meta.id,
        "created_at": thread.meta.created_at,
        "title": thread.meta.title,
        "system": Store::system_of(&thread),
        "messages": messages,
    })))
}

/// `DELETE /api/conversations/{id}`: 404 when this page has no such conversation.
pub async fn conversation_delete(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    record.set_thread(&id);
    find(&state, &origin_key(&headers), &id, true).await?;
    Ok(Json(json!({"deleted": true, "conversation_id": id})))
}

/// `GET /api/agents`: the configured providers, then the routes, for a prototype's
/// picker. No secret and no URL: a page learns what it can ask, not where the keys go.
pub async fn agents(State(state): State<AppState>) -> Json<Value> {
    let mut agents = vec![];
    let mut key_states = std::collections::HashMap::new();
    for p in state.providers.all() {
        let c = p.config();
        let mut models = vec![format!("{}/{}", c.id, c.default_model)];
        models.extend(
            c.models
                .iter()
                .filter(|m| **m != c.default_model)
                .map(|m| format!("{}/{m}", c.id)),
        );
        let key_state = match p.key_use() {
            KeyUse::Never => "not needed",
            _ if p.key_state(&state.secrets).await.starts_with("set") => "set",
            KeyUse::IfStored => "not needed",
            KeyUse::Required => "missing",
        };
        key_states.insert(c.id.as_str(), key_state);
        agents.push(json!({
            "id": c.id,
            "name": agent_name(c),
            "kind": c.kind.to_string(),
            "capabilities": c.capabilities(),
            "models": models,
            "default": c.id == state.config.default_provider,
            "default_for": state.config.defaults_of(&c.id),
            "key_state": key_state,
        }));
    }
    for route in state.providers.routes() {
        // Usable when one target is: the best of its targets' key states.
        let states: Vec<&str> = route
            .targets()
            .iter()
            .filter_map(|t| key_states.get(t.provider_id.as_str()).copied())
            .collect();
        let key_state = ["set", "not needed"]
            .into_iter()
            .find(|s| states.contains(s))
            .unwrap_or("missing");
        let mut agent = json!({
            "id": route.name(),
            "name": route.name(),
            "kind": "route",
            "capabilities": ["chat"],
            "models": [route.name()],
            "default": false,
            "default_for": [],
            "key_state": key_state,
        });
        if let (Some(agent), Value::Object(about)) = (agent.as_object_mut(), route.describe()) {
            agent.extend(about);
        }
        agents.push(agent);
    }
    let total = agents.len();
    Json(json!({"agents": agents, "total": total}))
}

/// A readable name: the demo says what it is; the rest go by their id.
fn agent_name(c: &crate::config::ProviderConfig) -> String {
    match c.kind {
        crate::config::ProviderKind::Demo => "Protogate demo (offline, canned answers)".into(),
        _ => c.id.clone(),
    }
}
