//! Reading a voice request's multipart form: one audio file within
//! `limits.max_audio_bytes` (413 past it, whether or not the request said its length)
//! and a few short text fields. Each read waits at most the idle timeout, so a body that
//! trickles in (a slowloris client) does not hold the connection.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use bytes::{Bytes, BytesMut};

use crate::error::GatewayError;
use crate::gateway::AppState;

/// Longest text field (a `prompt` with names and jargon fits).
const MAX_FIELD_BYTES: usize = 16 * 1024;

/// The file as the page sent it, before its type is checked.
pub struct Upload {
    pub filename: String,
    /// Its declared type, if any.
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

pub struct VoiceForm {
    /// `None` when the form had no file under any of the names asked for.
    pub file: Option<Upload>,
    fields: Vec<(String, String)>,
}

impl VoiceForm {
    /// A text field, trimmed; `None` when absent or empty.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

/// Reads the form of `request`; the file is the first field named one of `file_names`.
pub async fn read(
    state: &AppState,
    request: Request,
    file_names: &[&str],
) -> Result<VoiceForm, GatewayError> {
    let mut form = Multipart::from_request(request, state).await.map_err(|e| {
        GatewayError::bad_request(format!(
            "send the audio as multipart form data (a FormData with the file under `{}`): {}",
            file_names[0],
            e.body_text()
        ))
    })?;
    let limit = state.config.limits.max_audio_bytes;
    let idle = state.config.limits.idle_timeout;
    let mut out = VoiceForm {
        file: None,
        fields: vec![],
    };
    loop {
        let next = tokio::time::timeout(idle, form.next_field())
            .await
            .map_err(|_| GatewayError::SlowBody { after: idle })?;
        let Some(mut field) = next.map_err(|e| unreadable(e, limit))? else {
            break;
        };
        let name = field.name().unwrap_or_default().to_string();
        if out.file.is_none() && file_names.contains(&name.as_str()) {
            let filename = field.file_name().unwrap_or("audio").to_string();
            let content_type = field.content_type().map(String::from);
            let too_large = || GatewayError::TooLarge { limit };
            let bytes = read_field(&mut field, limit, (limit, idle), too_large).await?;
            out.file = Some(Upload {
                filename,
                content_type,
                bytes,
            });
        } else {
            let too_long =
                || GatewayError::bad_request(format!("the form field `{name}` is too long"));
            let bytes = read_field(&mut field, MAX_FIELD_BYTES, (limit, idle), too_long).await?;
            if field.file_name().is_none() {
                out.fields
                    .push((name.clone(), String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    Ok(out)
}

/// A field's bytes, refused with `too_large` as soon as they pass `limit`; a body past
/// the route's own limit is a 413 naming the audio limit.
async fn read_field(
    field: &mut Field<'_>,
    limit: usize,
    (audio_limit, idle): (usize, std::time::Duration),
    too_large: impl Fn() -> GatewayError,
) -> Result<Bytes, GatewayError> {
    let mut bytes = BytesMut::new();
    loop {
        let chunk = tokio::time::timeout(idle, field.chunk())
            .await
            .map_err(|_| GatewayError::SlowBody { after: idle })?;
        match chunk {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes.freeze()),
            Err(e) => return Err(unreadable(e, audio_limit)),
        }
    }
}

fn unreadable(e: MultipartError, limit: usize) -> GatewayError {
    match e.status().as_u16() {
        413 => GatewayError::TooLarge { limit },
        _ => GatewayError::bad_request(format!("the form could not be read: {}", e.body_text())),
    }
}
