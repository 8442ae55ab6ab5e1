//! One request's record, filled in as the request moves through the gateway.
//!
//! Only what a designer needs to see is kept: never a header, so never a credential.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::cache::CacheControl;
use crate::chat::Usage;

/// A record's progress, as the live log publishes it.
#[derive(Clone, Debug, Serialize)]
pub struct LogEvent {
    pub kind: LogEventKind,
    pub record: Record,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEventKind {
    /// The request arrived: method, path, origin.
    Started,
    /// The response head (status, provider, model) or the first token.
    Updated,
    /// The response ended; the record is final and in the ring and the files.
    Finished,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Record {
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub method: String,
    pub path: String,
    pub origin: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub bytes_out: u64,
    pub usage: Option<Usage>,
    /// What went wrong, in plain words; for a refusal, why it was refused.
    pub error: Option<String>,
    pub prompt: Option<String>,
    pub answer: Option<String>,
    /// The ChatKit thread a `/api/chatkit` request belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// Time spent waiting in the provider's queue (`providers[].limits`), when it waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_ms: Option<f64>,
    /// What happened on the way, in plain words: "waited 2.4 s for openai's limit".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The id a chat on a WebSocket goes by in its frames (`/ws/chat`'s `id`, a
    /// response's id on `/v1/responses`), so the log and the client's frames match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Why the answer ended, in OpenAI's words (`stop`, `length`, `tool_calls`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    /// What kind of failure `error` is, for counting (`connect`, `timeout`,
    /// `upstream_status`, ...: see `GatewayError::kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    /// `hit` when the cache answered, `coalesced` when another client's call did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// The route (`routes[].name`) the request's model named, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Each target a route tried before the one that answered, and why it moved on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// The member whose token the request carried (`protogate members`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Characters in `answer`, so each chunk need not count them again.
    #[serde(skip)]
    pub(crate) answer_chars: usize,
    /// The cache was asked and had nothing: the `X-Protogate-Cache: miss` header.
    #[serde(skip)]
    pub(crate) cache_missed: bool,
}

impl Record {
    /// The origin of a request refused for its origin (the guard's message starts
    /// "origin `<origin>` is not allowed"), so the app can offer to approve it.
    pub fn refused_origin(&self) -> Option<&str> {
        let rest = self.error.as_deref()?.strip_prefix("origin `")?;
        let (origin, tail) = rest.split_once('`')?;
        tail.starts_with(" is not allowed").then_some(origin)
    }

    /// The record's JSON, as `serde_json::to_writer` writes it, with the keys written as
    /// they are: serde_json escapes each key anew, sixteen per record, a third of what
    /// the log line costs (callgrind). Every field is named below, so a new one does not
    /// compile until it is written too; a test checks both agree.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        fn field<T: Serialize + ?Sized>(
            out: &mut Vec<u8>,
            key: &[u8],
            value: &T,
        ) -> serde_json::Result<()> {
            out.extend_from_slice(key);
            serde_json::to_writer(out, value)
        }
        let Record {
            id,
            time,
            method,
            path,
            origin,
            provider,
            model,
            status,
            latency_ms,
            ttft_ms,
            bytes_out,
            usage,
            error,
            prompt,
            answer,
            thread,
            queued_ms,
            note,
            chat_id,
            finish_reason,
            error_kind,
            cache,
            route,
            attempts,
            member,
            answer_chars: _,
            cache_missed: _,
        } = self;
        field(out, b"{\"id\":", id)?;
        field(out, b",\"time\":", time)?;
        field(out, b",\"method\":", method)?;
        field(out, b",\"path\":", path)?;
        field(out, b",\"origin\":", origin)?;
        field(out, b",\"provider\":", provider)?;
        field(out, b",\"model\":", model)?;
        field(out, b",\"status\":", status)?;
        field(out, b",\"latency_ms\":", latency_ms)?;
        field(out, b",\"ttft_ms\":", ttft_ms)?;
        field(out, b",\"bytes_out\":", bytes_out)?;
        field(out, b",\"usage\":", usage)?;
        field(out, b",\"error\":", error)?;
        field(out, b",\"prompt\":", prompt)?;
        field(out, b",\"answer\":", answer)?;
        if let Some(thread) = thread {
            field(out, b",\"thread\":", thread)?;
        }
        if let Some(queued_ms) = queued_ms {
            field(out, b",\"queued_ms\":", queued_ms)?;
        }
        if let Some(note) = note {
            field(out, b",\"note\":", note)?;
        }
        if let Some(chat_id) = chat_id {
            field(out, b",\"chat_id\":", chat_id)?;
        }
        if let Some(finish_reason) = finish_reason {
            field(out, b",\"finish_reason\":", finish_reason)?;
        }
        if let Some(error_kind) = error_kind {
            field(out, b",\"error_kind\":", error_kind)?;
        }
        if let Some(cache) = cache {
            field(out, b",\"cache\":", cache)?;
        }
        if let Some(route) = route {
            field(out, b",\"route\":", route)?;
        }
        if !attempts.is_empty() {
            field(out, b",\"attempts\":", attempts)?;
        }
        if let Some(member) = member {
            field(out, b",\"member\":", member)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// One try of a route's target that did not answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Attempt {
    /// `provider/model`.
    pub target: String,
    /// Why it was left, in plain words ("answered 429", "could not connect").
    pub reason: String,
    pub ms: f64,
}

/// A record under construction, shared by the log layer and the handler.
#[derive(Clone, Debug)]
pub struct RecordHandle {
    inner: Arc<Mutex<Record>>,
    start: Instant,
    max_text_chars: usize,
    live: Option<broadcast::Sender<LogEvent>>,
    /// What the request's `Cache-Control` asks of the cache.
    cache_control: CacheControl,
}

impl RecordHandle {
    pub fn new(record: Record, max_text_chars: usize) -> Self {
        RecordHandle {
            inner: Arc::new(Mutex::new(record)),
            start: Instant::now(),
            max_text_chars,
            live: None,
            cache_control: CacheControl::Normal,
        }
    }

    /// The same handle, publishing its progress on `live`.
    pub(crate) fn publishing(mut self, live: broadcast::Sender<LogEvent>) -> Self {
        self.live = Some(live);
        self
    }

    /// Sends the record as it stands, if anyone listens.
    pub(crate) fn publish(&self, kind: LogEventKind) {
        let Some(live) = &self.live else { return };
        if live.receiver_count() == 0 {
            return;
        }
        let mut record = self.with(|r| r.clone());
        record.latency_ms = ms(self.start);
        let _ = live.send(LogEvent { kind, record });
    }

    fn with<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.inner.lock().expect("record lock"))
    }

    /// Notes who answers, and what was asked (truncated).
    pub fn set_request(&self, provider: &str, model: &str, prompt: String) {
        let prompt = truncate(prompt, self.max_text_chars);
        self.with(|r| {
            r.provider = Some(provider.to_string());
            r.model = Some(model.to_string());
            r.prompt = Some(prompt);
        });
    }

    /// Adds answer text, up to the limit; marks the first token's time.
    pub fn push_answer(&self, text: &str) {
        let start = self.start;
        let max = self.max_text_chars;
        let first = self.with(|r| {
            let first = r.ttft_ms.is_none();
            r.ttft_ms.get_or_insert_with(|| ms(start));
            let room = max.saturating_sub(r.answer_chars);
            if room > 0 {
                // The part that fits, as one slice: at most `room` characters.
                let (end, chars) = match text.char_indices().nth(room) {
                    Some((end, _)) => (end, room),
                    None => (text.len(), text.chars().count()),
                };
                r.answer
                    .get_or_insert_with(String::new)
                    .push_str(&text[..end]);
                r.answer_chars += chars;
            }
            first
        });
        if first {
            self.publish(LogEventKind::Updated);
        }
    }

    pub fn set_chat_id(&self, id: &str) {
        self.with(|r| r.chat_id = Some(id.to_string()));
    }

    /// Adds a plain-words note of what happened on the way (a resumed stream).
    pub fn set_note(&self, note: &str) {
        self.with(|r| match &mut r.note {
            Some(notes) => {
                notes.push_str("; ");
                notes.push_str(note);
            }
            None => r.note = Some(note.to_string()),
        });
    }

    pub fn set_thread(&self, thread: &str) {
        self.with(|r| r.thread = Some(thread.to_string()));
    }

    /// Notes a wait in a provider's queue: its length, and the note saying why.
    pub fn set_queued(&self, waited: std::time::Duration, note: String) {
        let queued_ms = (waited.as_secs_f64() * 1e6).round() / 1e3;
        self.with(|r| {
            r.queued_ms = Some(queued_ms);
            r.note = Some(note);
        });
    }

    pub fn set_finish_reason(&self, reason: &'static str) {
        self.with(|r| r.finish_reason = Some(reason));
    }

    pub fn set_error_kind(&self, kind: &'static str) {
        self.with(|r| {
            r.error_kind.get_or_insert(kind);
        });
    }

    pub fn set_cache(&self, cache: &'static str) {
        self.with(|r| r.cache = Some(cache));
    }

    pub(crate) fn set_cache_missed(&self) {
        self.with(|r| r.cache_missed = true);
    }

    /// The same handle, carrying the request's `Cache-Control`.
    pub(crate) fn with_cache_control(mut self, control: CacheControl) -> Self {
        self.cache_control = control;
        self
    }

    pub fn cache_control(&self) -> CacheControl {
        self.cache_control
    }

    /// The request's `Origin`, if it had one.
    pub fn origin(&self) -> Option<String> {
        self.with(|r| r.origin.clone())
    }

    pub fn set_route(&self, route: &str) {
        self.with(|r| r.route = Some(route.to_string()));
    }

    pub fn set_member(&self, member: &str) {
        self.with(|r| r.member = Some(member.to_string()));
    }

    /// The member whose token the request carried, once the token was checked.
    pub fn member(&self) -> Option<String> {
        self.with(|r| r.member.clone())
    }

    pub fn push_attempt(&self, attempt: Attempt) {
        self.with(|r| r.attempts.push(attempt));
    }

    /// Ignored once the cache answered: a replayed or shared answer's usage was billed
    /// to the request that paid for it.
    pub fn set_usage(&self, usage: Usage) {
        self.with(|r| {
            if r.cache.is_none() {
                r.usage = Some(usage);
            }
        });
    }

    /// Keeps the first error: later ones are usually its consequences.
    pub fn set_error(&self, error: impl Into<String>) {
        let error = error.into();
        self.with(|r| {
            r.error.get_or_insert(error);
        });
    }

    pub fn set_status(&self, status: u16) {
        self.with(|r| r.status = status);
    }

    /// [`Self::set_status`] for the response head, and what its `X-Protogate-Cache`
    /// header says, if the cache took part (under the one lock).
    pub(crate) fn set_response_status(&self, status: u16) -> Option<&'static str> {
        self.with(|r| {
            r.status = status;
            r.cache.or(r.cache_missed.then_some("miss"))
        })
    }

    pub fn add_bytes(&self, n: usize) {
        self.with(|r| r.bytes_out += n as u64);
    }

    /// The finished record, latency measured now, taken out of the handle: nothing is
    /// recorded after the response body is gone.
    pub fn finish(&self) -> Record {
        let latency = ms(self.start);
        self.with(|r| {
            r.latency_ms = latency;
            std::mem::take(r)
        })
    }
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

fn truncate(mut text: String, max: usize) -> String {
    if let Some((i, _)) = text.char_indices().nth(max) {
        text.truncate(i);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_and_answer_are_truncated() {
        let handle = RecordHandle::new(Record::default(), 5);
        handle.set_request("demo", "m", "abcdefgh".into());
        handle.push_answer("123");
        handle.push_answer("456789");
        let r = handle.finish();
        assert_eq!(r.prompt.as_deref(), Some("abcde…"));
        assert_eq!(r.answer.as_deref(), Some("12345"));
        assert!(r.ttft_ms.is_some());
    }

    #[test]
    fn a_refused_origin_is_read_back_from_the_refusal() {
        let refused = Record {
            error: Some("origin `https://a.framer.app` is not allowed. If this is…".into()),
            ..Record::default()
        };
        assert_eq!(refused.refused_origin(), Some("https://a.framer.app"));
        let other = Record {
            error: Some("access token missing".into()),
            ..Record::default()
        };
        assert_eq!(other.refused_origin(), None);
    }

    #[test]
    fn the_log_line_is_the_records_json() {
        let full = Record {
            id: "0123456789ab".into(),
            time: "2026-12-06T03:00:00.123456Z".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            origin: Some("https://framer.com".into()),
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            status: 200,
            latency_ms: 12.345,
            ttft_ms: Some(0.5),
            bytes_out: 1234,
            usage: Some(Usage {
                input_tokens: 5,
                output_tokens: 7,
            }),
            error: Some("quote \" backslash \\ newline \n tab \t control \u{1}".into()),
            prompt: Some("héllo ✓ \u{2028}".into()),
            answer: Some("world".into()),
            thread: Some("thr_1".into()),
            queued_ms: Some(2400.5),
            note: Some("waited 2.4 s for openai's limit".into()),
            chat_id: Some("chat-1".into()),
            finish_reason: Some("stop"),
            error_kind: Some("status"),
            cache: Some("hit"),
            route: Some("fast".into()),
            attempts: vec![Attempt {
                target: "groq/llama".into(),
                reason: "answered 429".into(),
                ms: 3.5,
            }],
            member: Some("ana".into()),
            answer_chars: 5,
            cache_missed: true,
        };
        for record in [full, Record::default()] {
            let mut line = Vec::new();
            record.write_json(&mut line).unwrap();
            assert_eq!(
                String::from_utf8(line).unwrap(),
                serde_json::to_string(&record).unwrap()
            );
        }
    }

    #[test]
    fn first_error_wins() {
        let handle = RecordHandle::new(Record::default(), 5);
        handle.set_error("origin not allowed");
        handle.set_error("later");
        assert_eq!(handle.finish().error.as_deref(), Some("origin not allowed"));
    }
}
