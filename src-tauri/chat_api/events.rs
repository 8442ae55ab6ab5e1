//! The chat API's server-sent events: the seed contract (`data: {"text"}` … `data:
//! [DONE]`, a failure as one `data: {"error"}`) with an `id:` on every event, so an
//! `EventSource` that lost its connection can say where it was. Each event is written
//! whole, for readers that split every network read on newlines.

use bytes::Bytes;
use serde_json::json;

/// How long an `EventSource` waits before it reconnects: the browsers' default is 3 s,
/// and a resumed answer should not stall that long.
const RETRY_MS: u32 = 1000;

/// The id of the last event of every stream, `[DONE]`: a reconnect that says it saw it
/// is answered `204 No Content`, which stops an `EventSource` for good.
pub const DONE_ID: &str = "done";

/// Numbers the events of one stream: `<stream>-<n>`, and `<stream>-done` for the end.
pub struct EventWriter {
    stream: String,
    next: u64,
}

/// Where a reconnecting `EventSource` was, read from its `Last-Event-ID`.
#[derive(Debug, PartialEq, Eq)]
pub enum LastEvent<'a> {
    /// It saw event `n` of `stream`.
    Seen { stream: &'a str, n: u64 },
    /// It saw the end.
    Done,
}

impl EventWriter {
    pub fn new(stream: String) -> Self {
        EventWriter { stream, next: 0 }
    }

    /// The first event: which conversation, provider and model answer. It has no `text`,
    /// so readers written for the seed contract pass over it.
    pub fn start(&mut self, conversation_id: &str, provider: &str, model: &str) -> Bytes {
        let data =
            json!({"conversation_id": conversation_id, "provider": provider, "model": model});
        self.event(Some(RETRY_MS), &data.to_string())
    }

    pub fn text(&mut self, text: &str) -> Bytes {
        self.event(None, &json!({ "text": text }).to_string())
    }

    /// A failure after the stream started; [`EventWriter::done`] follows it.
    pub fn error(&mut self, message: &str) -> Bytes {
        self.event(None, &json!({ "error": message }).to_string())
    }

    pub fn done(&mut self) -> Bytes {
        Bytes::from(format!("id: {}-{DONE_ID}\ndata: [DONE]\n\n", self.stream))
    }

    fn event(&mut self, retry: Option<u32>, data: &str) -> Bytes {
        let mut out = String::with_capacity(data.len() + 48);
        if let Some(ms) = retry {
            out.push_str(&format!("retry: {ms}\n"));
        }
        out.push_str(&format!(
            "id: {}-{}\ndata: {data}\n\n",
            self.stream, self.next
        ));
        self.next += 1;
        Bytes::from(out)
    }
}

/// Reads a `Last-Event-ID` this gateway wrote; `None` for anything else.
pub fn last_event(id: &str) -> Option<LastEvent<'_>> {
    let (stream, n) = id.trim().rsplit_once('-')?;
    if stream.is_empty() {
        return None;
    }
    if n == DONE_ID {
        return Some(LastEvent::Done);
    }
    Some(LastEvent::Seen {
        stream,
        n: n.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_an_id_and_the_end_is_named() {
        let mut w = EventWriter::new("cs_1".into());
        let start = w.start("thr_1", "demo", "demo/protogate-demo");
        assert!(
            start.starts_with(b"retry: 1000\nid: cs_1-0\ndata: {"),
            "{start:?}"
        );
        assert_eq!(
            &w.text("hi \"you\"")[..],
            b"id: cs_1-1\ndata: {\"text\":\"hi \\\"you\\\"\"}\n\n"
        );
        assert_eq!(
            &w.error("cut")[..],
            b"id: cs_1-2\ndata: {\"error\":\"cut\"}\n\n"
        );
        assert_eq!(&w.done()[..], b"id: cs_1-done\ndata: [DONE]\n\n");
    }

    #[test]
    fn last_event_ids_are_read_back() {
        assert_eq!(
            last_event("cs_ab-12"),
            Some(LastEvent::Seen {
                stream: "cs_ab",
                n: 12
            })
        );
        assert_eq!(last_event("cs_ab-done"), Some(LastEvent::Done));
        assert_eq!(last_event("cs_ab"), None);
        assert_eq!(last_event("-3"), None);
        assert_eq!(last_event("cs_ab-x"), None);
    }
}
