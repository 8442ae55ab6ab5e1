//! What every HTTP provider does the same way: read its credential, send with a
//! first-byte deadline, turn a refusal into a readable error, and read an SSE body into
//! frames with an idle deadline and end-marker check.

use std::time::Duration;

use axum::http::{Method, Request};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::client::{SendError, Target, UpstreamResponse as Response};
use super::{FrameStream, Upstream};
use crate::chat::{ChatEvent, Frame};
use crate::config::{KeyUse, ProviderConfig};
use crate::error::ProviderError;
use crate::secrets::env_var_name;
use crate::wire::sse::{self, Event};
use crate::wire::DecodeError;

/// Upstream error bodies are read up to this size for their message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
const ERROR_MESSAGE_CHARS: usize = 500;

/// How one kind of upstream names itself and its errors.
#[derive(Clone, Copy, Debug)]
pub struct Flavor {
    /// As a person would name it: "Anthropic", "The AI gateway".
    pub upstream: &'static str,
    /// What the stored secret is: "API key", "ASAP private key".
    pub credential: &'static str,
    /// The human message inside an error body.
    pub error_message: fn(&Value) -> Option<String>,
}

/// The provider's secret; `None` when it takes no key, or when a server on this machine
/// has none stored.
pub async fn credential(
    upstream: &Upstream,
    config: &ProviderConfig,
    flavor: &Flavor,
) -> Result<Option<SecretString>, ProviderError> {
    let provider = config.id.as_str();
    if config.key == KeyUse::Never {
        return Ok(None);
    }
    let optional = config.key == KeyUse::IfStored;
    match upstream.secrets.get(provider).await {
        Ok(Some((secret, _))) => Ok(Some(secret)),
        Ok(None) | Err(_) if optional => Ok(None),
        Ok(None) => Err(ProviderError::MissingKey {
            provider: provider.into(),
            credential: flavor.credential,
            env_var: env_var_name(provider),
        }),
        Err(source) => Err(ProviderError::Secret {
            provider: provider.into(),
            env_var: env_var_name(provider),
            source,
        }),
    }
}

/// A credential as a header value marked sensitive, so the HTTP stack never prints it.
pub fn sensitive(provider: &str, secret: &SecretString) -> Result<HeaderValue, ProviderError> {
    let mut value =
        HeaderValue::from_str(secret.expose_secret()).map_err(|_| ProviderError::BadKey {
            provider: provider.into(),
            credential: "key",
            message: "it holds characters an HTTP header cannot carry (a line break?)".into(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A JSON `POST` with the provider's configured headers; the caller adds its credential.
/// (For a body built here rather than passed through, see [`json_bytes`].)
pub fn json_post(headers: &HeaderMap, body: Bytes) -> Request<Bytes> {
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    let mut all = headers.clone();
    all.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *request.headers_mut() = all;
    request
}

/// A JSON value as a request body.
pub fn json_bytes(body: &Value) -> Bytes {
    serde_json::to_vec(body)
        .expect("a JSON value serializes")
        .into()
}

/// Sends `request` to `target`, waiting at most the first-byte timeout for the response
/// head. A non-2xx answer becomes an error carrying the upstream's own message; a
/// refused credential is forgotten so a replacement is read on the next request.
pub async fn send(
    upstream: &Upstream,
    target: &Target,
    request: Request<Bytes>,
    provider: &str,
    flavor: &Flavor,
) -> Result<Response, ProviderError> {
    let first_byte = upstream.limits.first_byte_timeout;
    let sent = upstream.clients.send(target, request);
    let response = match crate::deadline::timeout(first_byte, sent).await {
        Err(_) => {
            return Err(ProviderError::FirstByteTimeout {
                provider: provider.into(),
                after: first_byte,
            })
        }
        Ok(Err(SendError::ConnectTimeout)) => {
            return Err(ProviderError::FirstByteTimeout {
                provider: provider.into(),
                after: upstream.limits.connect_timeout,
            })
        }
        Ok(Err(SendError::Connect(message))) => {
            return Err(ProviderError::Connect {
                provider: provider.into(),
                message,
            })
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status.is_redirection() {
        // Not followed: a redirect would carry the key and the prompt to a host the
        // settings never named.
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| {
                String::from_utf8_lossy(l.as_bytes())
                    .chars()
                    .take(200)
                    .collect()
            })
            .unwrap_or_else(|| "(no Location)".into());
        return Err(ProviderError::Redirected {
            provider: provider.into(),
            status: status.as_u16(),
            location,
        });
    }
    if matches!(status.as_u16(), 401 | 403) {
        // The upstream's message is not passed on: some quote part of the key back.
        upstream.secrets.forget(provider);
        return Err(ProviderError::KeyRejected {
            provider: provider.into(),
            upstream: flavor.upstream,
            credential: flavor.credential,
            status: status.as_u16(),
        });
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let body = read_limited(response, first_byte).await;
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| (flavor.error_message)(&v))
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
    let mut chunks = response.into_body().into_data_stream();
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

/// Reads a whole body within the idle timeout and decodes it with `decode`.
pub async fn read_body<T>(
    upstream: &Upstream,
    response: Response,
    provider: &str,
    decode: impl FnOnce(bytes::Bytes) -> Result<T, DecodeError>,
) -> Result<T, ProviderError> {
    let deadline = upstream.limits.idle_timeout;
    let body = response.into_body();
    let body =
        match crate::deadline::timeout(deadline, axum::body::to_bytes(body, usize::MAX)).await {
            Err(_) => {
                return Err(ProviderError::IdleTimeout {
                    provider: provider.into(),
                    after: deadline,
                })
            }
            Ok(Err(_)) => {
                return Err(ProviderError::Cut {
                    provider: provider.into(),
                })
            }
            Ok(Ok(body)) => body,
        };
    decode(body).map_err(|e| match e {
        DecodeError::Malformed(message) | DecodeError::Upstream(message) => ProviderError::Decode {
            provider: provider.into(),
            message,
        },
    })
}

/// The frames of a streamed body, decoded event by event with `decode`. An event not
/// completed within the idle timeout, a broken connection, or an end without the
/// upstream's end marker is an error, never a silent clean end. With `finish_ends`, a
/// finish reason counts as the end marker (OpenAI-compatible servers that omit `[DONE]`).
pub fn frames(
    upstream: &Upstream,
    response: Response,
    provider: &str,
    finish_ends: bool,
    mut decode: impl FnMut(Event) -> Result<Frame, DecodeError> + Send + 'static,
) -> FrameStream {
    let idle = upstream.limits.idle_timeout;
    let provider = provider.to_string();
    let mut events = sse::events(response.into_body().into_data_stream());
    Box::pin(async_stream::stream! {
        let mut finished = false;
        // One timer for the whole stream, moved on at each event: pushing a registered
        // timer later is an atomic store, where a new timer per event is a trip through
        // the runtime's timer wheel and, with no other timer pending, a write to wake
        // the runtime (twenty syscalls for a twenty-chunk answer).
        let deadline = tokio::time::sleep(idle);
        tokio::pin!(deadline);
        loop {
            deadline.as_mut().reset(tokio::time::Instant::now() + idle);
            let next = tokio::select! {
                biased;
                next = events.next() => Some(next),
                () = &mut deadline => None,
            };
            let event = match next {
                None => {
                    yield Err(ProviderError::IdleTimeout { provider, after: idle });
                    return;
                }
                Some(None) => break,
                Some(Some(Err(e))) => {
                    tracing::debug!(provider = %provider, error = %e, "upstream stream broke");
                    yield Err(ProviderError::Cut { provider });
                    return;
                }
                Some(Some(Ok(event))) => event,
            };
            match decode(event) {
                Ok(frame) => {
                    let end = frame.events.contains(&ChatEvent::End);
                    finished |= frame.events.iter().any(|e| matches!(e, ChatEvent::Finish(_)));
                    yield Ok(frame);
                    if end {
                        return;
                    }
                }
                Err(DecodeError::Upstream(message)) => {
                    yield Err(ProviderError::InStream { provider, message });
                    return;
                }
                Err(DecodeError::Malformed(message)) => {
                    yield Err(ProviderError::Decode { provider, message });
                    return;
                }
            }
        }
        if finished && finish_ends {
            yield Ok(Frame::event(ChatEvent::End));
        } else {
            yield Err(ProviderError::Cut { provider });
        }
    })
}
