//! One turn of the wiring spec's chat API, whatever carries it (JSON, SSE, EventSource,
//! WebSocket): the provider picked, the conversation's history loaded, the new message
//! (with the images it names) added, and the finished turn stored.

use serde::Deserialize;

use crate::chat::{ChatRequest, Message, Part, Role};
use crate::chatkit::store::{self, Store, StoreError, StoredThread};
use crate::chatkit::types::{
    AssistantMessageItem, OutputText, ThreadItem, UserContent, UserMessageItem,
};
use crate::dispatch::{Destination, Via};
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::request_log::RecordHandle;
use crate::team::threads::{Threads, Which};

/// The spec's `ChatRequest`: only the new message; the history stays server-side under
/// `conversation_id`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChatInput {
    pub message: String,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub file_ids: Vec<String>,
}

/// A turn ready to send.
pub struct Turn {
    /// The provider, or the route whose targets answer in turn.
    pub provider: Destination,
    pub chat: ChatRequest,
    pub conversation_id: String,
    /// `provider-id/model`, or a route's name, as clients name models.
    pub client_model: String,
    threads: Threads,
    origin: String,
    user: UserMessageItem,
}

/// Resolves the provider (an unknown one is a 400 listing the configured ones), loads or
/// starts the conversation of `origin`, and builds the request with its whole history.
/// Only a new conversation is stored before [`Turn::finish`].
pub async fn prepare(
    state: &AppState,
    origin: &str,
    input: ChatInput,
    record: &RecordHandle,
) -> Result<Turn, GatewayError> {
    if input.message.trim().is_empty() {
        return Err(GatewayError::bad_request(
            "`message` must not be empty; send JSON like {\"message\": \"Hello\"}",
        ));
    }
    let (provider, model) = state
        .providers
        .route(input.provider.as_deref(), input.model.as_deref())
        .map_err(GatewayError::bad_request)?;
    let threads = Threads::of(state);
    let (conversation_id, system, file_ids) = (
        input.conversation_id.as_deref(),
        input.system.filter(|s| !s.is_empty()),
        &input.file_ids,
    );
    let which = conversation_id.map_or(Which::New, Which::One);
    let (thread, system, images) = threads
        .run(origin, which, true, |store| {
            let thread = store.conversation(origin, conversation_id)?;
            let id = &thread.meta.id;
            let system = match system {
                Some(system) => {
                    store.set_system(origin, id, &system)?;
                    Some(system)
                }
                None => Store::system_of(&thread),
            };
            let images = store.pending_uploads(origin, file_ids, id)?;
            Ok((thread, system, images))
        })
        .await?
        .map_err(refusal)?;
    let id = thread.meta.id.clone();
    record.set_thread(&id);
    let user = UserMessageItem {
        id: store::new_id("msg"),
        thread_id: id.clone(),
        created_at: store::now(),
        content: vec![UserContent::InputText {
            text: input.message,
        }],
        attachments: images,
        quoted_text: None,
        inference_options: Default::default(),
    };
    let chat = ChatRequest {
        system,
        temperature: input.temperature,
        max_tokens: input.max_tokens,
        messages: history(&thread, &user),
        model,
        ..ChatRequest::default()
    };
    let client_model = match provider {
        Via::Provider(p) => {
            record.set_request(p.id(), &chat.model, chat.prompt());
            format!("{}/{}", p.id(), chat.model)
        }
        // The target that answers is written on the record when it does.
        Via::Route(route) => route.name().to_string(),
    };
    Ok(Turn {
        client_model,
        provider: provider.owned(),
        chat,
        conversation_id: id,
        threads,
        origin: origin.to_string(),
        user,
    })
}

/// A store refusal in the chat API's words: its threads are conversations here. Another
/// page's conversation is "does not exist", as one that never did.
pub(super) fn refusal(e: StoreError) -> GatewayError {
    match e {
        StoreError::NoThread(id) => GatewayError::Missing(format!(
            "conversation `{id}` does not exist (deleted, expired, or started by another page)"
        )),
        e => GatewayError::Missing(e.to_string()),
    }
}

/// The conversation so far, then the new message with its images.
fn history(thread: &StoredThread, user: &UserMessageItem) -> Vec<Message> {
    let mut messages = crate::chatkit::chat_request(thread, String::new()).messages;
    let mut parts = vec![Part::Text(user.text())];
    parts.extend(
        user.attachments
            .iter()
            .filter_map(crate::chatkit::image_part),
    );
    messages.push(Message {
        role: Role::User,
        parts,
    });
    messages
}

impl Turn {
    /// Stores the message and `answer` in the conversation, and takes the images it
    /// sent off the pending list. An empty answer (a stream stopped before any text)
    /// stores nothing, so the question can simply be asked again. Fails (logged) only
    /// when the conversation's Redis is unreachable.
    pub async fn finish(&self, answer: &str) -> Result<(), GatewayError> {
        if answer.trim().is_empty() {
            return Ok(());
        }
        let reply = AssistantMessageItem {
            id: store::new_id("msg"),
            thread_id: self.conversation_id.clone(),
            created_at: store::now(),
            content: vec![OutputText {
                annotations: vec![],
                text: answer.to_string(),
            }],
        };
        let sent: Vec<String> = self.user.attachments.iter().map(|a| a.id.clone()).collect();
        let items = [
            ThreadItem::UserMessage(self.user.clone()),
            ThreadItem::AssistantMessage(reply),
        ];
        let (origin, id) = (&self.origin, &self.conversation_id);
        let commit = |store: &Store| {
            // A conversation deleted while it answered stays deleted.
            let _ = store.commit_turn(origin, id, items, &sent);
        };
        let committed = self
            .threads
            .run(origin, Which::One(id), !sent.is_empty(), commit);
        committed.await.inspect_err(|e| {
            tracing::warn!("a turn of conversation {id} was not saved: {e}");
        })
    }
}
