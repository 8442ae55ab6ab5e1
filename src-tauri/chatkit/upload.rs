//! `POST /api/chatkit/upload`: ChatKit's direct upload strategy. The page sends one
//! file as multipart form data (field `file`); an image is kept for the next message
//! and answered as ChatKit's attachment, anything else is refused with the reason.

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine as _;

use super::store;
use super::types::ImageAttachment;
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::team::threads::{Threads, Which};

/// The image types every provider kind reads.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Multipart,
) -> Result<Json<ImageAttachment>, GatewayError> {
    let upload = read_upload(&state, form).await?;
    let attachment = upload.attachment(None);
    let origin = super::origin_key(&headers);
    let kept = attachment.clone();
    Threads::of(&state)
        .run(&origin, Which::New, true, |store| {
            store.add_upload(&origin, kept)
        })
        .await?;
    Ok(Json(attachment))
}

/// An image read from a form, with the form's other small fields.
pub(crate) struct Upload {
    pub name: String,
    pub mime_type: String,
    pub bytes: bytes::Bytes,
    /// The wiring spec's `conversation_id` field, when the form has one.
    pub conversation_id: Option<String>,
}

impl Upload {
    /// The upload as ChatKit's attachment, kept for a thread's next message if given.
    pub fn attachment(&self, thread_id: Option<String>) -> ImageAttachment {
        ImageAttachment {
            id: store::new_id("atc"),
            name: self.name.clone(),
            preview_url: format!(
                "data:{};base64,{}",
                self.mime_type,
                base64::engine::general_purpose::STANDARD.encode(&self.bytes)
            ),
            mime_type: self.mime_type.clone(),
            thread_id,
        }
    }
}

/// Reads the form's `file` (an image within `chatkit.max_upload_bytes`, else 415 or
/// 413) and its `conversation_id`, in either order. Like every body, one that trickles
/// in gets the idle timeout.
pub(crate) async fn read_upload(state: &AppState, form: Multipart) -> Result<Upload, GatewayError> {
    let limit = state.config.chatkit.max_upload_bytes;
    let after = state.config.limits.idle_timeout;
    tokio::time::timeout(after, read_form(form, limit))
        .await
        .map_err(|_| GatewayError::SlowBody { after })?
}

/// Longest `conversation_id` a form may carry.
const MAX_FIELD_BYTES: usize = 256;

async fn read_form(mut form: Multipart, limit: usize) -> Result<Upload, GatewayError> {
    let too_large = || GatewayError::TooLarge { limit };
    let unreadable = |e: axum::extract::multipart::MultipartError| match e.status().as_u16() {
        413 => too_large(),
        _ => GatewayError::bad_request(format!("the upload could not be read: {e}")),
    };
    let mut file = None;
    let mut conversation_id = None;
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("file") if file.is_none() => {
                let name = field.file_name().unwrap_or("image").to_string();
                let mime_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_ascii_lowercase();
                if !IMAGE_TYPES.contains(&mime_type.as_str()) {
                    return Err(GatewayError::UnsupportedMedia(format!(
                        "`{name}` is {mime_type}: Protogate passes images to the model (PNG, \
                         JPEG, GIF or WebP), not other files"
                    )));
                }
                let bytes = field.bytes().await.map_err(unreadable)?;
                if bytes.len() > limit {
                    return Err(too_large());
                }
                file = Some((name, mime_type, bytes));
            }
            Some("conversation_id") => {
                let text = field.text().await.map_err(unreadable)?;
                if text.len() > MAX_FIELD_BYTES {
                    return Err(GatewayError::bad_request("`conversation_id` is too long"));
                }
                conversation_id = Some(text.trim().to_string()).filter(|t| !t.is_empty());
            }
            _ => {}
        }
    }
    let Some((name, mime_type, bytes)) = file else {
        return Err(GatewayError::bad_request(
            "the upload has no `file` field; send the image as multipart form data",
        ));
    };
    Ok(Upload {
        name,
        mime_type,
        bytes,
        conversation_id,
    })
}
