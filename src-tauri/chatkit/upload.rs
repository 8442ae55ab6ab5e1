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

/// The image types every provider kind reads.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Multipart,
) -> Result<Json<ImageAttachment>, GatewayError> {
    let limit = state.config.chatkit.max_upload_bytes;
    // Like every body: one that trickles in gets the idle timeout.
    let after = state.config.limits.idle_timeout;
    let (name, mime_type, bytes) = tokio::time::timeout(after, read_image(form, limit))
        .await
        .map_err(|_| GatewayError::SlowBody { after })??;
    let attachment = ImageAttachment {
        id: store::new_id("atc"),
        name,
        preview_url: format!(
            "data:{mime_type};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        ),
        mime_type,
        thread_id: None,
    };
    super::store_of(&state).add_upload(&super::origin_of(&headers), attachment.clone());
    Ok(Json(attachment))
}

/// The form's `file` field: its name, type and bytes, if it is an image within `limit`.
async fn read_image(
    mut form: Multipart,
    limit: usize,
) -> Result<(String, String, bytes::Bytes), GatewayError> {
    let too_large = || GatewayError::TooLarge { limit };
    let unreadable = |e: axum::extract::multipart::MultipartError| match e.status().as_u16() {
        413 => too_large(),
        _ => GatewayError::bad_request(format!("the upload could not be read: {e}")),
    };
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("image").to_string();
        let mime_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_ascii_lowercase();
        if !IMAGE_TYPES.contains(&mime_type.as_str()) {
            return Err(GatewayError::bad_request(format!(
                "`{name}` is {mime_type}: Protogate passes images to the model (PNG, JPEG, \
                 GIF or WebP), not other files"
            )));
        }
        let bytes = field.bytes().await.map_err(unreadable)?;
        if bytes.len() > limit {
            return Err(too_large());
        }
        return Ok((name, mime_type, bytes));
    }
    Err(GatewayError::bad_request(
        "the upload has no `file` field; send the image as multipart form data",
    ))
}
