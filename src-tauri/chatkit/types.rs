//! ChatKit's wire types, as the `openai-chatkit` Python SDK (1.6) defines them in
//! `chatkit/types.py`: the requests ChatKit.js sends, the thread items it shows and the
//! stream events it reads. Only what Protogate produces or accepts is modelled; every
//! other request type is parsed so it can be refused by name.
//!
//! Serialization follows the SDK's server (`exclude_none`): an absent optional field is
//! left out, never written as `null`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One call to `POST /api/chatkit`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum Request {
    #[serde(rename = "threads.create")]
    ThreadsCreate { params: CreateParams },
    #[serde(rename = "threads.add_user_message")]
    AddUserMessage { params: AddUserMessageParams },
    #[serde(rename = "threads.retry_after_item")]
    RetryAfterItem { params: ItemRef },
    #[serde(rename = "threads.add_client_tool_output")]
    AddClientToolOutput { params: ThreadRef },
    #[serde(rename = "threads.add_structured_input")]
    AddStructuredInput { params: ThreadRef },
    #[serde(rename = "threads.custom_action")]
    CustomAction { params: ThreadRef },
    #[serde(rename = "threads.sync_custom_action")]
    SyncCustomAction { params: ThreadRef },
    #[serde(rename = "threads.get_by_id")]
    GetById { params: ThreadRef },
    #[serde(rename = "threads.list")]
    List {
        #[serde(default)]
        params: ListParams,
    },
    #[serde(rename = "items.list")]
    ItemsList { params: ItemsListParams },
    #[serde(rename = "threads.update")]
    Update { params: UpdateParams },
    #[serde(rename = "threads.delete")]
    Delete { params: ThreadRef },
    #[serde(rename = "items.feedback")]
    Feedback { params: FeedbackParams },
    #[serde(rename = "attachments.create")]
    AttachmentCreate { params: AttachmentCreateParams },
    #[serde(rename = "attachments.delete")]
    AttachmentDelete { params: AttachmentRef },
    #[serde(rename = "input.transcribe")]
    Transcribe {},
}

impl Request {
    /// The requests answered with an event stream rather than one JSON document.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Request::ThreadsCreate { .. }
                | Request::AddUserMessage { .. }
                | Request::RetryAfterItem { .. }
                | Request::AddClientToolOutput { .. }
                | Request::AddStructuredInput { .. }
                | Request::CustomAction { .. }
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateParams {
    pub input: UserMessageInput,
}

#[derive(Debug, Deserialize)]
pub struct AddUserMessageParams {
    pub thread_id: String,
    pub input: UserMessageInput,
}

#[derive(Debug, Deserialize)]
pub struct ThreadRef {
    pub thread_id: String,
}

#[derive(Debug, Deserialize)]
pub struct ItemRef {
    pub thread_id: String,
    pub item_id: String,
}

#[derive(Debug, Deserialize)]
pub struct AttachmentRef {
    pub attachment_id: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub limit: Option<usize>,
    #[serde(default)]
    pub order: Order,
    pub after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ItemsListParams {
    pub thread_id: String,
    pub limit: Option<usize>,
    #[serde(default)]
    pub order: Order,
    pub after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateParams {
    pub thread_id: String,
    pub title: String,
}

#[derive(Debug, Deserialize)]
pub struct FeedbackParams {
    pub thread_id: String,
    pub item_ids: Vec<String>,
    pub kind: FeedbackKind,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    Positive,
    Negative,
}

#[derive(Debug, Deserialize)]
pub struct AttachmentCreateParams {
    pub name: String,
    pub size: u64,
    pub mime_type: String,
}

/// What the composer sends.
#[derive(Debug, Deserialize)]
pub struct UserMessageInput {
    pub content: Vec<UserContent>,
    #[serde(default)]
    pub attachments: Vec<String>,
    #[serde(default)]
    pub quoted_text: Option<String>,
    #[serde(default)]
    pub inference_options: InferenceOptions,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserContent {
    InputText {
        text: String,
    },
    /// An @-mention chip: its text is what the model reads.
    InputTag {
        id: String,
        text: String,
        #[serde(default)]
        data: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default)]
        interactive: bool,
    },
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct InferenceOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ToolChoice {
    pub id: String,
}

/// An uploaded image; `preview_url` is a `data:` URL, so the page shows it without
/// another request to the gateway (and another local-network permission).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename = "image")]
pub struct ImageAttachment {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub preview_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThreadItem {
    UserMessage(UserMessageItem),
    AssistantMessage(AssistantMessageItem),
}

impl ThreadItem {
    pub fn id(&self) -> &str {
        match self {
            ThreadItem::UserMessage(m) => &m.id,
            ThreadItem::AssistantMessage(m) => &m.id,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct UserMessageItem {
    pub id: String,
    pub thread_id: String,
    pub created_at: String,
    pub content: Vec<UserContent>,
    #[serde(default)]
    pub attachments: Vec<ImageAttachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_text: Option<String>,
    #[serde(default)]
    pub inference_options: InferenceOptions,
}

impl UserMessageItem {
    /// What the model reads: the quoted text first, then the message with its tags.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(quote) = &self.quoted_text {
            for line in quote.lines() {
                text.push_str("> ");
                text.push_str(line);
                text.push('\n');
            }
            text.push('\n');
        }
        for part in &self.content {
            match part {
                UserContent::InputText { text: t } | UserContent::InputTag { text: t, .. } => {
                    text.push_str(t)
                }
            }
        }
        text
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct AssistantMessageItem {
    pub id: String,
    pub thread_id: String,
    pub created_at: String,
    pub content: Vec<OutputText>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename = "output_text")]
pub struct OutputText {
    #[serde(default)]
    pub annotations: Vec<Value>,
    pub text: String,
}

/// A thread without its items, as stored and listed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ThreadMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub id: String,
    pub created_at: String,
    #[serde(default)]
    pub status: ThreadStatus,
    /// The SDK's server always answers an empty object here.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThreadStatus {
    #[default]
    Active,
}

/// A thread with (a page of) its items: what `threads.get_by_id` and the thread events carry.
#[derive(Clone, Debug, Serialize)]
pub struct Thread {
    #[serde(flatten)]
    pub meta: ThreadMetadata,
    pub items: Page<ThreadItem>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Page {
            data: Vec::new(),
            has_more: false,
            after: None,
        }
    }
}

/// One `data:` line of a streamed answer.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "thread.created")]
    ThreadCreated { thread: Thread },
    #[serde(rename = "thread.updated")]
    ThreadUpdated { thread: Thread },
    #[serde(rename = "thread.item.added")]
    ItemAdded { item: ThreadItem },
    #[serde(rename = "thread.item.updated")]
    ItemUpdated { item_id: String, update: ItemUpdate },
    #[serde(rename = "thread.item.done")]
    ItemDone { item: ThreadItem },
    #[serde(rename = "stream_options")]
    StreamOptions { stream_options: StreamOptions },
    /// A failure in plain words; ChatKit.js shows `message` and offers a retry.
    #[serde(rename = "error")]
    Error {
        code: &'static str,
        message: String,
        allow_retry: bool,
    },
}

impl Event {
    pub fn error(message: impl Into<String>, allow_retry: bool) -> Self {
        Event::Error {
            code: "custom",
            message: message.into(),
            allow_retry,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct StreamOptions {
    pub allow_cancel: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum ItemUpdate {
    #[serde(rename = "assistant_message.content_part.added")]
    PartAdded {
        content_index: usize,
        content: OutputText,
    },
    #[serde(rename = "assistant_message.content_part.text_delta")]
    TextDelta { content_index: usize, delta: String },
    #[serde(rename = "assistant_message.content_part.done")]
    PartDone {
        content_index: usize,
        content: OutputText,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_parse_as_chatkit_js_sends_them() {
        let request: Request = serde_json::from_value(json!({
            "type": "threads.create",
            "params": {"input": {
                "content": [{"type": "input_text", "text": "Hi"}],
                "attachments": [],
                "inference_options": {"model": "demo/protogate-demo"}
            }},
            "metadata": {}
        }))
        .unwrap();
        assert!(request.is_streaming());
        let Request::ThreadsCreate { params } = request else {
            panic!("wrong request")
        };
        assert_eq!(
            params.input.inference_options.model.as_deref(),
            Some("demo/protogate-demo")
        );
        let list: Request =
            serde_json::from_value(json!({"type": "threads.list", "params": {}})).unwrap();
        assert!(matches!(list, Request::List { params } if params.order == Order::Desc));
        let unknown = serde_json::from_value::<Request>(json!({"type": "threads.fly"}))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("threads.fly"), "{unknown}");
    }

    #[test]
    fn absent_fields_are_left_out_and_tags_are_written() {
        let item = ThreadItem::AssistantMessage(AssistantMessageItem {
            id: "msg_1".into(),
            thread_id: "thr_1".into(),
            created_at: "2026-11-24T10:00:00Z".into(),
            content: vec![OutputText {
                annotations: vec![],
                text: "Hello".into(),
            }],
        });
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"type": "assistant_message", "id": "msg_1", "thread_id": "thr_1",
                   "created_at": "2026-11-24T10:00:00Z",
                   "content": [{"type": "output_text", "annotations": [], "text": "Hello"}]})
        );
        let thread = Thread {
            meta: ThreadMetadata {
                title: None,
                id: "thr_1".into(),
                created_at: "2026-11-24T10:00:00Z".into(),
                status: ThreadStatus::Active,
                metadata: Map::new(),
            },
            items: Page::empty(),
        };
        let value = serde_json::to_value(&thread).unwrap();
        assert!(value.get("title").is_none(), "{value}");
        assert_eq!(value["status"], json!({"type": "active"}));
        assert_eq!(value["items"], json!({"data": [], "has_more": false}));
    }
}
