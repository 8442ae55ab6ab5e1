//! `GET /ws/chat`: the wiring spec's chat over one WebSocket, for prototypes that want
//! a socket, and where SSE is blocked. Frames are JSON text:
//!
//! - client: `{"type":"chat","id","message","conversation_id"?,"provider"?,"model"?,
//!   "system"?,"temperature"?,"max_tokens"?,"file_ids"?}` (the body of `POST /api/chat`
//!   plus an `id` of the client's choosing) and `{"type":"cancel","id"}`. A text frame
//!   that is not a JSON object is a chat message on its own, with an id made up here.
//! - server: `{"type":"start","id","conversation_id","provider","model"}`, then
//!   `{"type":"delta","id","text"}`…, then `{"type":"done","id","usage","finish_reason"}`;
//!   or `{"type":"error","id"?,"error"}`. A chat refused before it starts gets an error
//!   and no start; one that fails later gets an error after its deltas. Either way the
//!   `done` or the `error` is the chat's last frame, and a cancelled chat's last frame is
//!   a `done` with `finish_reason: "cancelled"`.
//!
//! Several chats run at once, their frames interleaved and told apart by `id`. Each is
//! a request of its own: the origin's rate limit, the stream cap and the provider's
//! queue apply to it, it is a record in the request log, and cancelling it (or closing
//! the socket) drops its upstream call.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use super::guard;
use super::state::AppState;
use super::ws::{accept, ChatRecord, Inbound, Link, Stopping, Upgrade};
use crate::chat::{ChatEvent, FinishReason, Usage};
use crate::chat_api::{self, ChatInput};
use crate::dispatch;
use crate::error::{GatewayError, ProviderError};
use crate::request_log::RecordHandle;

const PATH: &str = "/ws/chat";
/// Chats one socket may have in flight; the next one gets an `error` frame. A page that
/// wants more opens another socket, which the rate limit sees.
const MAX_IN_FLIGHT: usize = 4;
/// A client's chat id is echoed in every frame and kept in the log: a name, not a text.
const MAX_ID_CHARS: usize = 128;
/// Frames waiting for the socket; beyond this the chats wait (and so do their upstream
/// streams), rather than the gateway buffering for a client that does not read.
const QUEUED_FRAMES: usize = 32;

/// `GET /ws/chat`.
pub async fn chat_socket(
    State(state): State<AppState>,
    stopping: Option<Extension<Stopping>>,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    let socket = Arc::new(Socket {
        origin: headers
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned()),
        conversations: chat_api::origin_key(&headers),
        member: upgrade.member.clone(),
        state: state.clone(),
    });
    let stopping = stopping.map(|Extension(s)| s);
    accept(upgrade, &state, &headers, stopping, move |link| {
        Chats::new(socket).serve(link)
    })
}

/// What every chat on one socket shares.
struct Socket {
    state: AppState,
    /// The page's origin, as the rate limit and the log know it.
    origin: Option<String>,
    /// Whose conversations the chats read and write.
    conversations: String,
    /// The member whose token opened the socket.
    member: Option<String>,
}

/// A frame from a chat's task. `seq` tells this chat from an earlier one of the same id.
struct Out {
    seq: u64,
    frame: String,
    /// The chat's last frame: it is no longer in flight once this is sent.
    last: bool,
}

struct Running {
    id: String,
    seq: u64,
    task: AbortHandle,
    record: RecordHandle,
}

/// The chats in flight on one socket.
struct Chats {
    socket: Arc<Socket>,
    running: Vec<Running>,
    next_seq: u64,
    tasks: JoinSet<()>,
    out: mpsc::Sender<Out>,
    frames: mpsc::Receiver<Out>,
}

impl Chats {
    fn new(socket: Arc<Socket>) -> Self {
        let (out, frames) = mpsc::channel(QUEUED_FRAMES);
        Chats {
            socket,
            running: vec![],
            next_seq: 0,
            tasks: JoinSet::new(),
            out,
            frames,
        }
    }

    async fn serve(mut self, mut link: Link) {
        loop {
            tokio::select! {
                inbound = link.recv() => {
                    let reply = match inbound {
                        None => break,
                        Some(Inbound::Text(text)) => self.on_text(text),
                        Some(Inbound::Binary) => Some(error_frame(
                            None,
                            "binary frames are not read here: send JSON text, \
                             {\"type\":\"chat\",\"id\":\"1\",\"message\":\"Hello\"}",
                        )),
                    };
                    if let Some(reply) = reply {
                        if !link.send(reply).await {
                            break;
                        }
                    }
                }
                Some(out) = self.frames.recv() => {
                    // A cancelled chat's frames still queued are dropped: its `done`
                    // has been sent.
                    let Some(at) = self.running.iter().position(|r| r.seq == out.seq) else {
                        continue;
                    };
                    if out.last {
                        self.running.swap_remove(at);
                    }
                    if !link.send(out.frame).await {
                        break;
                    }
                }
                Some(joined) = self.tasks.join_next() => {
                    if let Err(e) = joined.as_ref().map_err(|e| (e.is_panic(), e.id())) {
                        let (true, task) = e else { continue };
                        if let Some(at) = self.running.iter().position(|r| r.task.id() == task) {
                            let chat = self.running.swap_remove(at);
                            chat.record.set_error("the chat failed inside Protogate");
                            chat.record.set_error_kind("internal");
                            if !link.send(error_frame(Some(&chat.id), "the chat failed inside Protogate")).await {
                                break;
                            }
                        }
                    }
                }
            }
        }
        for chat in self.running.drain(..) {
            chat.record.set_error(
                "the socket closed before the answer was complete; the upstream call was \
                 cancelled",
            );
            chat.record.set_error_kind("client_gone");
        }
        // Aborts the chats still running: their upstream streams are dropped, their
        // records pushed.
        self.tasks.shutdown().await;
    }

    /// Reads one text frame; what to answer at once, if anything.
    fn on_text(&mut self, text: String) -> Option<String> {
        let fields = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(fields)) => fields,
            // What the spec's echo server received: the message itself.
            _ => {
                let input = ChatInput {
                    message: text,
                    ..ChatInput::default()
                };
                return self.start(None, input);
            }
        };
        let id = match fields.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Some(error_frame(None, "`id` must be a string or a number")),
        };
        match fields.get("type").and_then(Value::as_str) {
            Some("chat") => self.chat(id, fields),
            None if fields.contains_key("message") => self.chat(id, fields),
            Some("cancel") => Some(self.cancel(id)),
            Some("ping") => Some(json!({"type": "pong", "id": id}).to_string()),
            other => Some(error_frame(
                id.as_deref(),
                &format!(
                    "unknown frame type `{}`: send {{\"type\":\"chat\",\"id\",\"message\"}} \
                     or {{\"type\":\"cancel\",\"id\"}}",
                    other.unwrap_or("(none)")
                ),
            )),
        }
    }

    fn chat(&mut self, id: Option<String>, fields: Map<String, Value>) -> Option<String> {
        match serde_json::from_value::<ChatInput>(Value::Object(fields)) {
            Ok(input) => self.start(id, input),
            Err(e) => Some(error_frame(
                id.as_deref(),
                &format!("a chat frame is {{\"type\":\"chat\",\"id\",\"message\"}}: {e}"),
            )),
        }
    }

    /// Starts a chat, or says why not.
    fn start(&mut self, id: Option<String>, input: ChatInput) -> Option<String> {
        let id = id.unwrap_or_else(new_id);
        if id.chars().count() > MAX_ID_CHARS {
            return Some(error_frame(
                None,
                &format!("an `id` is at most {MAX_ID_CHARS} characters"),
            ));
        }
        if self.running.iter().any(|r| r.id == id) {
            return Some(error_frame(
                Some(&id),
                &format!("chat `{id}` is already in flight; give each chat its own id"),
            ));
        }
        let socket = &self.socket;
        let record = ChatRecord::open(
            &socket.state,
            PATH,
            socket.origin.as_deref(),
            socket.member.as_deref(),
            &id,
        );
        if self.running.len() >= MAX_IN_FLIGHT {
            let error = format!(
                "too many chats in flight on this socket (limit {MAX_IN_FLIGHT}); wait for \
                 one to finish, or cancel one"
            );
            record.handle.set_status(429);
            record.handle.set_error(error.clone());
            record.handle.set_error_kind("rate_limited");
            return Some(error_frame(Some(&id), &error));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let handle = record.handle.clone();
        let chat = run(
            socket.clone(),
            id.clone(),
            input,
            record,
            self.out.clone(),
            seq,
        );
        let task = self.tasks.spawn(chat);
        self.running.push(Running {
            id,
            seq,
            task,
            record: handle,
        });
        None
    }

    /// Stops chat `id`: its task, and with it the upstream call, is dropped.
    fn cancel(&mut self, id: Option<String>) -> String {
        let Some(id) = id else {
            return error_frame(
                None,
                "a cancel frame names the chat: {\"type\":\"cancel\",\"id\"}",
            );
        };
        let Some(at) = self.running.iter().position(|r| r.id == id) else {
            return error_frame(Some(&id), &format!("no chat `{id}` is in flight"));
        };
        let chat = self.running.swap_remove(at);
        chat.record.set_error("cancelled by the client");
        chat.record.set_error_kind("cancelled");
        chat.task.abort();
        json!({"type": "done", "id": id, "usage": null, "finish_reason": "cancelled"}).to_string()
    }
}

/// One chat, start to end; its last frame is a `done` or an `error`.
async fn run(
    socket: Arc<Socket>,
    id: String,
    input: ChatInput,
    record: ChatRecord,
    out: mpsc::Sender<Out>,
    seq: u64,
) {
    if let Err(error) = answer(&socket, &id, input, &record.handle, &out, seq).await {
        record.fail(&error);
        let frame = error_frame(Some(&id), &error.to_string());
        let _ = out
            .send(Out {
                seq,
                frame,
                last: true,
            })
            .await;
    }
}

async fn answer(
    socket: &Socket,
    id: &str,
    input: ChatInput,
    record: &RecordHandle,
    out: &mpsc::Sender<Out>,
    seq: u64,
) -> Result<(), GatewayError> {
    let state = &socket.state;
    if let Some(limited) =
        guard::shared_origin_limit(state, socket.origin.clone().unwrap_or_default()).await
    {
        return Err(limited);
    }
    let turn = chat_api::prepare(state, &socket.conversations, input, record)
        .await
        .map_err(conversation_error)?;
    let answer = dispatch::stream(state, &turn.provider, turn.chat.clone(), record).await?;
    let (mut frames, _permit) = (answer.frames, answer.permit);
    record.set_status(200);
    let send = |frame: Value, last: bool| {
        let frame = frame.to_string();
        async move { out.send(Out { seq, frame, last }).await.is_ok() }
    };
    let start = json!({"type": "start", "id": id, "conversation_id": turn.conversation_id,
        "provider": turn.provider.id(), "model": turn.client_model});
    if !send(start, false).await {
        return Ok(());
    }
    let (mut answer, mut usage, mut finish) = (String::new(), None::<Usage>, None);
    while let Some(frame) = frames.next().await {
        let mut text = String::new();
        let mut end = false;
        for event in frame?.events {
            match event {
                ChatEvent::Text(t) => text.push_str(&t),
                ChatEvent::Usage(u) => usage = Some(u),
                ChatEvent::Finish(reason) => finish = Some(reason),
                ChatEvent::End => end = true,
                ChatEvent::ToolCallStart { .. } | ChatEvent::ToolCallDelta { .. } => {}
            }
        }
        if !text.is_empty() {
            record.push_answer(&text);
            answer.push_str(&text);
            if !send(json!({"type": "delta", "id": id, "text": text}), false).await {
                return Ok(());
            }
        }
        if end {
            if let Some(usage) = usage {
                record.set_usage(usage);
            }
            // Not saved (Redis unreachable): logged; the answer is given all the same.
            let _ = turn.finish(&answer).await;
            let finish = finish.unwrap_or(FinishReason::Stop).as_openai();
            record.set_finish_reason(finish);
            let done = json!({"type": "done", "id": id, "usage": usage, "finish_reason": finish});
            send(done, true).await;
            return Ok(());
        }
    }
    Err(ProviderError::Cut {
        provider: turn.provider.id().to_string(),
    }
    .into())
}

/// The chat API's conversations are ChatKit threads underneath; the client knows them as
/// conversations.
fn conversation_error(e: GatewayError) -> GatewayError {
    match e {
        GatewayError::Missing(m) => GatewayError::Missing(m.replace("thread `", "conversation `")),
        e => e,
    }
}

fn error_frame(id: Option<&str>, error: &str) -> String {
    match id {
        Some(id) => json!({"type": "error", "id": id, "error": error}),
        None => json!({"type": "error", "error": error}),
    }
    .to_string()
}

/// An id for a chat sent as plain text.
fn new_id() -> String {
    format!("chat-{:012x}", uuid::Uuid::new_v4().as_u128() >> 80)
}
