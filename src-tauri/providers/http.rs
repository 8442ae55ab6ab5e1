//! What every HTTP provider does the same way: send with a first-byte deadline, turn a
//! refusal into a readable error, and read an SSE body with an idle deadline.

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::{header, RequestBuilder, Response};
use serde_json::Value;

use crate::error::ProviderError;
use crate::secrets::SecretStore;

/// Upstream error bodies are read up to this size for their message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
const ERROR_MESSAGE_CHARS: usize = 500;

/// Sends `request`, waiting at most `first_byte` for the response head. A non-2xx answer
/// becomes an error carrying the upstream's own message; a rejected key is forgotten so
/// a replacement is read on the next request.
pub async fn send(
    request: RequestBuilder,
    provider: &str,
    first_byte: Duration,
    secrets: &SecretStore,
    error_message: fn(&Value) -> Option<String>,
) -> Result<Response, ProviderError> {
    let response = match tokio::time::timeout(first_byte, request.send()).await {
        Err(_) => {
            return Err(ProviderError::FirstByteTimeout {
                provider: provider.into(),
                after: first_byte,
            })
        }
        Ok(Err(e)) => return Err(connect_error(provider, &e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if matches!(status.as_u16(), 401 | 403) {
        secrets.forget(provider);
        return Err(ProviderError::KeyRejected {
            provider: provider.into(),
            status: status.as_u16(),
        });
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let body = read_limited(response, first_byte).await;
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| error_message(&v))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message.chars().take(ERROR_MESSAGE_CHARS).collect()
    };
    Err(ProviderError::Status {
        provider: provider.into(),
        status: status.as_u16(),
        message,
        retry_after,
    })
}

async fn read_limited(response: Response, deadline: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    let read = async {
        while let Some(Ok(chunk)) = chunks.next().await {
            body.extend_from_slice(&chunk);
            if body.len() >= ERROR_BODY_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(deadline, read).await;
    body.truncate(ERROR_BODY_LIMIT);
    body
}

/// Names the deepest cause ("Connection refused"), which is what a person can act on.
fn connect_error(provider: &str, e: &reqwest::Error) -> ProviderError {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let host = e
        .url()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default();
    ProviderError::Connect {
        provider: provider.into(),
        message: format!("{cause} ({host})"),
    }
}

/// The SSE events of a streamed body; an event not completed within `idle` ends the
/// stream with [`ProviderError::IdleTimeout`].
pub fn events(
    response: Response,
    provider: String,
    idle: Duration,
) -> impl Stream<Item = Result<Event, ProviderError>> + Send {
    let mut inner = response.bytes_stream().eventsource();
    async_stream::stream! {
        loop {
            match tokio::time::timeout(idle, inner.next()).await {
                Err(_) => {
                    yield Err(ProviderError::IdleTimeout { provider: provider.clone(), after: idle });
                    break;
                }
                Ok(None) => break,
                Ok(Some(Ok(event))) => yield Ok(event),
                Ok(Some(Err(e))) => {
                    yield Err(ProviderError::Cut { provider: provider.clone() });
                    tracing::debug!(provider = %provider, error = %e, "upstream stream broke");
                    break;
                }
            }
        }
    }
}
