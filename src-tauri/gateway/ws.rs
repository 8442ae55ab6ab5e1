//! What both WebSocket routes share (`/ws/chat`, see `ws_chat.rs`; the Responses API's
//! WebSocket mode, see `ws_responses.rs`): the upgrade, the keep-alive, the size limit,
//! and a request-log record for each chat on a socket.
//!
//! The upgrade request goes through the same front as every request (`front.rs`): the
//! `Host` and `Origin` checks (a refused origin gets a 403 and never a socket: cross-site
//! WebSocket hijacking is the classic hole here), the access token (which a browser can
//! only send as `?token=` or as a subprotocol, see `guard.rs`) and the per-origin rate
//! limit. Each chat on the socket then counts against that limit and the stream cap as a
//! request would.

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::state::AppState;
use crate::error::{ErrorShape, GatewayError};
use crate::request_log::{open_record, RecordHandle, RequestLog};

/// The subprotocol the gateway answers with when a page offers protocols: a browser
/// that sends the access token as a subprotocol must get one it offered back, and the
/// token itself is never echoed. `new WebSocket(url, ["protogate", token])`.
pub(super) const PROTOCOL: &str = "protogate";

/// How often the gateway pings an idle socket. A socket that sends nothing back (no
/// pong, no frame) for a whole period after a ping is closed: a laptop lid shut on a
/// prototype must not hold its chats and their upstream calls for ever.
const PING_EVERY: Duration = Duration::from_secs(20);

/// Set when the gateway stops: an upgraded socket has left hyper's connection, so the
/// graceful shutdown no longer sees it (see `server.rs`). Handed to upgrade requests as
/// an extension.
#[derive(Clone, Debug, Default)]
pub struct Stopping(CancellationToken);

impl Stopping {
    pub(super) fn stop(&self) {
        self.0.cancel();
    }
}

/// A WebSocket handshake; one that fails its checks is a JSON error the log can show.
pub(super) struct Upgrade {
    upgrade: WebSocketUpgrade,
    /// The route's error shape, for a refusal after the handshake checks.
    shape: ErrorShape,
    /// The member whose token opened the socket: each chat's record names them too.
    pub member: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match WebSocketUpgrade::from_request_parts(parts, state).await {
            Ok(upgrade) => Ok(Upgrade {
                upgrade,
                shape: ErrorShape::for_path(parts.uri.path()),
                member: parts
                    .extensions
                    .get::<RecordHandle>()
                    .and_then(RecordHandle::member),
            }),
            Err(rejection) => {
                let path = parts.uri.path();
                let error = GatewayError::bad_request(format!(
                    "{path} is a WebSocket: open it with `new WebSocket(\"ws://{}{path}\")` \
                     ({rejection})",
                    parts
                        .headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("127.0.0.1:5711"),
                ));
                Err(error.response(ErrorShape::for_path(path)))
            }
        }
    }
}

/// Accepts the upgrade with the gateway's limits, and runs `serve` on the socket.
pub(super) fn accept<F, Fut>(
    Upgrade { upgrade, shape, .. }: Upgrade,
    state: &AppState,
    headers: &HeaderMap,
    stopping: Option<Stopping>,
    serve: F,
) -> Response
where
    F: FnOnce(Link) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !offered.is_empty() && !offered.contains(&PROTOCOL) {
        // Browsers fail a handshake whose answer names none of the protocols they
        // offered; this says why instead.
        return GatewayError::bad_request(format!(
            "offer the `{PROTOCOL}` subprotocol beside the access token: \
             new WebSocket(url, [\"{PROTOCOL}\", token])"
        ))
        .response(shape);
    }
    let limit = state.config.limits.max_body_bytes;
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            serve(Link {
                socket,
                ping: ping_interval(),
                heard: true,
                stopping: stopping.unwrap_or_default(),
                limit,
            })
        })
}

fn ping_interval() -> Interval {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping
}

/// What a client sent.
pub(super) enum Inbound {
    Text(String),
    /// Binary frames carry nothing either route understands.
    Binary,
}

/// An accepted socket, with its keep-alive and its size limit.
pub(super) struct Link {
    socket: WebSocket,
    ping: Interval,
    /// Something came from the client since the last ping.
    heard: bool,
    stopping: Stopping,
    limit: usize,
}

impl Link {
    /// The next message from the client, pinging on the way. `None` once the socket is
    /// over: the client closed it or went silent, sent a message over the size limit
    /// (closed with 1009 and the limit), or the gateway is stopping (closed with 1001).
    /// Cancel-safe, so it can be raced against the answers going out.
    pub(super) async fn recv(&mut self) -> Option<Inbound> {
        loop {
            tokio::select! {
                message = self.socket.recv() => {
                    self.heard = true;
                    match message? {
                        Ok(Message::Text(text)) => return Some(Inbound::Text(text.as_str().to_owned())),
                        Ok(Message::Binary(_)) => return Some(Inbound::Binary),
                        // Pings are answered by tungstenite itself; after a close, the
                        // next read sends the reply and ends the stream.
                        Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => {}
                        Err(error) => {
                            if is_too_long(&error) {
                                let reason = format!(
                                    "a message may be at most {} bytes (limits.max_body_bytes)",
                                    self.limit
                                );
                                self.close(close_code::SIZE, &reason).await;
                            }
                            return None;
                        }
                    }
                }
                _ = self.ping.tick() => {
                    if !std::mem::take(&mut self.heard) {
                        self.close(close_code::AWAY, "no answer to the keep-alive ping").await;
                        return None;
                    }
                    if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                        return None;
                    }
                }
                _ = self.stopping.0.cancelled() => {
                    self.close(close_code::AWAY, "Protogate is stopping").await;
                    return None;
                }
            }
        }
    }

    /// Sends one text frame; `false` when the socket is gone.
    pub(super) async fn send(&mut self, text: String) -> bool {
        self.socket.send(Message::text(text)).await.is_ok()
    }

    /// Closes with `code` and `reason` (at most 123 bytes, as RFC 6455 allows), then
    /// lets the client's close reply in, briefly.
    async fn close(&mut self, code: u16, reason: &str) {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let frame = CloseFrame {
            code,
            reason: reason[..end].into(),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_ok() {
            let drain = async { while let Some(Ok(_)) = self.socket.recv().await {} };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        }
    }
}

/// A message over `max_message_size` or a frame over `max_frame_size`: tungstenite's
/// `Error::Capacity`, named by its message since axum does not re-export the type.
fn is_too_long(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let inner = error.source().map(ToString::to_string).unwrap_or_default();
    inner.starts_with("Space limit exceeded")
}

/// One chat's record in the request log, pushed when it is dropped: a chat that ends,
/// fails, is cancelled or loses its socket is logged exactly once.
pub(super) struct ChatRecord {
    pub handle: RecordHandle,
    log: RequestLog,
}

impl ChatRecord {
    /// Opens the record of chat `id` on the socket at `path`, opened by `member`.
    pub(super) fn open(
        state: &AppState,
        path: &str,
        origin: Option<&str>,
        member: Option<&str>,
        id: &str,
    ) -> Self {
        let handle = open_record(&state.log, "WS", path, origin.map(String::from));
        handle.set_chat_id(id);
        if let Some(member) = member {
            handle.set_member(member);
        }
        ChatRecord {
            handle,
            log: state.log.clone(),
        }
    }

    /// Notes a failure: its status and, in plain words, what went wrong.
    pub(super) fn fail(&self, error: &GatewayError) {
        self.handle.set_status(error.status().as_u16());
        self.handle.set_error(error.to_string());
        self.handle.set_error_kind(error.kind());
    }
}

impl Drop for ChatRecord {
    fn drop(&mut self) {
        self.log.push(self.handle.finish());
    }
}
