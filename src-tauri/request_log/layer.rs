//! The outermost middleware: opens a record for each request, lets the handler fill it,
//! and closes it when the response body ends, or when the client goes away mid-stream.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use time::format_description::well_known::Rfc3339;

use super::{Record, RecordHandle, RequestLog};
use crate::error::ErrorNote;

pub const REQUEST_ID_HEADER: &str = "x-protogate-request-id";

pub async fn record_requests(
    State(log): State<RequestLog>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let record = Record {
        id: id.clone(),
        time: time::OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        origin: req
            .headers()
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned()),
        ..Record::default()
    };
    let handle = RecordHandle::new(record, log.max_text_chars());
    req.extensions_mut().insert(handle.clone());

    let mut response = next.run(req).await;
    handle.set_status(response.status().as_u16());
    if let Some(ErrorNote(message)) = response.extensions().get::<ErrorNote>() {
        handle.set_error(message.clone());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }

    let body = std::mem::take(response.body_mut());
    let mut finisher = Finisher {
        handle,
        log,
        complete: false,
    };
    let mut data = body.into_data_stream();
    let counted = async_stream::stream! {
        while let Some(chunk) = data.next().await {
            if let Ok(bytes) = &chunk {
                finisher.handle.add_bytes(bytes.len());
            }
            yield chunk;
        }
        finisher.mark_complete();
    };
    *response.body_mut() = Body::from_stream(counted);
    response
}

/// Pushes the record exactly once: when the body ends, or when it is dropped unfinished
/// because the client disconnected.
struct Finisher {
    handle: RecordHandle,
    log: RequestLog,
    complete: bool,
}

impl Finisher {
    fn mark_complete(&mut self) {
        self.complete = true;
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if !self.complete {
            self.handle
                .set_error("the client disconnected before the answer was complete");
        }
        self.log.push(self.handle.finish());
    }
}
