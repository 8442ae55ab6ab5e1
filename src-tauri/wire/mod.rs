//! Client and provider wire formats, each translated to and from [`crate::chat`].

pub mod anthropic;
pub mod openai;
pub mod responses;
pub mod search;
pub mod seed;
pub mod sse;
pub mod transcription;

/// Why an upstream event could not be used.
#[derive(Debug)]
pub enum DecodeError {
    /// Not the documented format.
    Malformed(String),
    /// A well-formed error the upstream sent inside the stream; holds its message.
    Upstream(String),
}

/// JSON from bytes, read as text once they are checked as UTF-8 as a whole: serde_json
/// reading bytes checks each string on its own, a couple of dozen small checks per
/// forwarded request (about 2 % of its instructions). Bytes that are not UTF-8 are read
/// as bytes, for serde_json's own error with its position.
pub(crate) fn json_from_bytes<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// A client's body (OpenAI's or Anthropic's), parsed.
#[derive(Debug)]
pub struct ClientRequest {
    pub model: Option<String>,
    pub stream: bool,
    pub chat: crate::chat::ChatRequest,
}

impl ClientRequest {
    /// The `model` and `stream` fields, which both formats share.
    fn read(
        body: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, crate::GatewayError> {
        use serde_json::Value;
        let model = match body.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(m.clone()),
            Some(_) => return Err(field_err("model", "a string")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(field_err("stream", "true or false")),
        };
        Ok(ClientRequest {
            model,
            stream,
            chat: Default::default(),
        })
    }
}

/// Where a value sits in a request body (`messages[2].content`), for an error message:
/// written out only when there is an error to report, not for every message of every
/// request (a conversation's whole history comes with each turn).
pub(crate) type At<'a> = &'a dyn Fn() -> String;

/// A 400 naming the field and what it must be.
fn field_err(field: &str, want: &str) -> crate::GatewayError {
    crate::GatewayError::bad_request(format!("invalid request body: `{field}` must be {want}"))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn json_from_bytes_reads_as_serde_json_reads_bytes() {
        for body in [
            &b"{\"a\": [\"caf\xc3\xa9\", 1.5, null, {\"b\": \"\\u00e9\\n\"}]}"[..],
            b"{\"a\": \"caf\xe9\"}",
            b"{\"a\": 1} \xff",
            b"{\"a\": ",
            b"",
        ] {
            let ours = super::json_from_bytes::<Value>(body).map_err(|e| e.to_string());
            let theirs = serde_json::from_slice::<Value>(body).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(body));
        }
    }
}
