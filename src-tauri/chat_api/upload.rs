//! `POST /api/upload`: the spec's `uploadFile(file, conversationId?)`. An image is kept
//! (per origin, bounded, with ChatKit's uploads) until a message names it in `file_ids`,
//! or, uploaded with a `conversation_id`, until that conversation's next message.

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::origin_key;
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::request_log::RecordHandle;
use crate::team::threads::{Threads, Which};

pub async fn upload(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    headers: HeaderMap,
    form: Multipart,
) -> Result<Json<Value>, GatewayError> {
    let origin = origin_key(&headers);
    let upload = crate::chatkit::read_upload(&state, form).await?;
    if let Some(id) = &upload.conversation_id {
        record.set_thread(id);
    }
    let attachment = upload.attachment(upload.conversation_id.clone());
    let kept = attachment.clone();
    let which = upload
        .conversation_id
        .as_deref()
        .map_or(Which::New, Which::One);
    Threads::of(&state)
        .run(&origin, which, true, |store| {
            if let Some(id) = &upload.conversation_id {
                // Uploads go with their conversation: it must be this page's.
                store.thread(&origin, id).map_err(super::turn::refusal)?;
            }
            store.add_upload(&origin, kept);
            Ok::<_, GatewayError>(())
        })
        .await??;
    Ok(Json(json!({
        "file_id": attachment.id,
        "filename": attachment.name,
        "content_type": attachment.mime_type,
        "size": upload.bytes.len(),
        "conversation_id": upload.conversation_id,
    })))
}
