//! `JsonBody<T>`: reads a request body within the size limit and parses it, answering
//! every failure in the gateway's own error shape (axum's `Json` answers in plain text).
//! [`JsonBytes<T>`] keeps the bytes too, for a body that may go upstream as it came.
//!
//! The `Content-Type` is not checked: prototypes often send `text/plain` on purpose,
//! because that keeps a cross-origin POST "simple" and skips the preflight.

use axum::extract::{FromRequest, Request};
use axum::response::Response;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::state::AppState;
use crate::error::{ErrorShape, GatewayError};

pub struct JsonBody<T>(pub T);

/// A parsed body and the bytes it was parsed from.
pub struct JsonBytes<T>(pub T, pub Bytes);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let JsonBytes(value, _) = JsonBytes::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBytes<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let shape = ErrorShape::for_path(req.uri().path());
        let limit = state.config.limits.max_body_bytes;
        // A body that trickles in holds a connection and a task: it gets the idle timeout.
        let after = state.config.limits.idle_timeout;
        let bytes = crate::deadline::timeout(after, axum::body::to_bytes(req.into_body(), limit))
            .await
            .map_err(|_| GatewayError::SlowBody { after }.response(shape))?
            .map_err(|_| GatewayError::TooLarge { limit }.response(shape))?;
        match parse(&bytes) {
            Ok(value) => Ok(JsonBytes(value, bytes)),
            Err(e) => Err(e.response(shape)),
        }
    }
}

/// serde_json's own recursion limit, which refuses deeper bodies before they can
/// exhaust the stack.
const MAX_DEPTH: usize = 128;

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::bad_request(
            "the request body is empty; send JSON like {\"message\": \"Hello\"}",
        ));
    }
    // Parsed without tracking the path first: tracking costs on every request, and only
    // a refusal needs it. Read as text once checked as UTF-8 (see `json_from_bytes`);
    // bytes that are not UTF-8 are left to the second reading for serde's own error, so
    // each body type has two readers compiled, not three.
    if let Ok(Ok(value)) = std::str::from_utf8(bytes).map(serde_json::from_str) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json names this error only in its message.
        let message = if inner.to_string().starts_with("recursion limit exceeded") {
            format!(
                "the request body is nested too deeply (more than {MAX_DEPTH} levels of \
                 arrays and objects, at column {})",
                inner.column()
            )
        } else if inner.is_syntax() || inner.is_eof() {
            format!("the request body is not valid JSON: {inner}")
        } else if path == "." {
            format!("invalid request body: {inner}")
        } else {
            format!("invalid request body: `{path}`: {inner}")
        };
        GatewayError::bad_request(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::seed::SeedRequest;

    #[test]
    fn messages_say_what_is_wrong() {
        let e = parse::<SeedRequest>(b"{\"message\": 42}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`message`") && e.contains("expected a string"),
            "{e}"
        );
        let e = parse::<SeedRequest>(b"{\"mesage\": \"x\"}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `message`"), "{e}");
        let e = parse::<SeedRequest>(b"{not json").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = parse::<SeedRequest>(b"").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let deep = format!("{{\"x\": {}{}}}", "[".repeat(129), "]".repeat(129));
        let e = parse::<serde_json::Value>(deep.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested too deeply"), "{e}");
        let shallow = format!(
            "{{\"message\": \"hi\", \"x\": {}{}}}",
            "[".repeat(120),
            "]".repeat(120)
        );
        assert!(parse::<serde_json::Value>(shallow.as_bytes()).is_ok());
    }
}
