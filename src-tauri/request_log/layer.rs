//! A record for each request, opened as it arrives (by the gateway's front service, see
//! `gateway/front.rs`), filled by the handler, and closed when the response body ends or
//! when the client goes away mid-stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use http_body::Body as _;
use time::format_description::well_known::Rfc3339;

use super::{LogEventKind, Record, RecordHandle, RequestLog};
use crate::cache::{CacheControl, CACHE_HEADER};
use crate::error::ErrorNote;
use crate::gateway::ClientStall;

pub const REQUEST_ID_HEADER: &str = "x-protogate-request-id";

/// A request's record from the moment it arrives: opened by [`RequestRecord::open`],
/// completed with the response by [`RequestRecord::respond`].
pub(crate) struct RequestRecord {
    handle: RecordHandle,
    log: RequestLog,
    /// The record's id, as the response header that names it.
    id: HeaderValue,
    /// The connection's flag for a client that stopped reading.
    stall: Option<ClientStall>,
}

impl RequestRecord {
    /// Opens the record and hands it to the handlers (as an extension).
    pub(crate) fn open(log: &RequestLog, req: &mut Request, stall: Option<ClientStall>) -> Self {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
        // The path alone, never the query: a WebSocket may carry the token as `?token=`.
        let id = new_id();
        let header = HeaderValue::from_str(&id).expect("hex digits are a header value");
        let handle = open_with_id(log, id, req.method().as_str(), req.uri().path(), origin)
            .with_cache_control(CacheControl::of(req.headers()));
        req.extensions_mut().insert(handle.clone());
        RequestRecord {
            handle,
            log: log.clone(),
            id: header,
            stall,
        }
    }

    /// Notes the response head, and counts its body: the record is pushed when the body
    /// ends or is dropped.
    pub(crate) fn respond(self, mut response: Response) -> Response {
        let RequestRecord {
            handle,
            log,
            id,
            stall,
        } = self;
        if let Some(cache) = handle.set_response_status(response.status().as_u16()) {
            let value = HeaderValue::from_static(cache);
            response.headers_mut().insert(CACHE_HEADER, value);
        }
        if let Some(ErrorNote(message, kind)) = response.extensions().get::<ErrorNote>() {
            handle.set_error(message.clone());
            handle.set_error_kind(kind);
        }
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
        handle.publish(LogEventKind::Updated);
        let inner = std::mem::take(response.body_mut());
        *response.body_mut() = Body::new(CountedBody {
            inner,
            handle,
            log,
            stall,
            complete: false,
        });
        response
    }
}

/// Opens a record that no HTTP response closes: each chat on a WebSocket is one. The
/// caller pushes it when done (`log.push(handle.finish())`).
pub(crate) fn open_record(
    log: &RequestLog,
    method: &str,
    path: &str,
    origin: Option<String>,
) -> RecordHandle {
    open_with_id(log, new_id(), method, path, origin)
}

/// 48 random bits, as 12 hex digits: unique enough for one designer's log.
fn new_id() -> String {
    format!("{:012x}", uuid::Uuid::new_v4().as_u128() >> 80)
}

fn open_with_id(
    log: &RequestLog,
    id: String,
    method: &str,
    path: &str,
    origin: Option<String>,
) -> RecordHandle {
    let record = Record {
        id,
        time: time::OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        method: method.to_string(),
        path: path.to_string(),
        origin,
        ..Record::default()
    };
    let handle = log.open(record);
    handle.publish(LogEventKind::Started);
    handle
}

/// The response body, counted as it goes out. Pushes the record exactly once: when the
/// body ends, or when it is dropped unfinished because the client went away. Keeps the
/// inner body's size, so a JSON answer keeps its `Content-Length`.
struct CountedBody {
    inner: Body,
    handle: RecordHandle,
    log: RequestLog,
    /// The connection's flag for a client that stopped reading.
    stall: Option<ClientStall>,
    complete: bool,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.handle.add_bytes(data.len());
                }
            }
            Poll::Ready(None) => this.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        // An empty body may never be polled: it was complete all along.
        if self.stall.as_ref().is_some_and(ClientStall::stalled) {
            self.handle.set_error(
                "the client stopped reading the answer for the idle timeout; the connection \
                 was closed and the upstream call cancelled",
            );
            self.handle.set_error_kind("slow_client");
        } else if !self.complete && !self.inner.is_end_stream() {
            self.handle
                .set_error("the client disconnected before the answer was complete");
            self.handle.set_error_kind("client_gone");
        }
        self.log.push(self.handle.finish());
    }
}
