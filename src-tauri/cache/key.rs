//! What makes two requests the same request: their SHA-256 over who asks (the origin),
//! whom (the provider id, or the route's name), the model, streamed or not, and the body
//! the upstream would get.
//!
//! The body is read in its normal form, so spelling that changes nothing upstream does
//! not make a different key: a client body that passes through (OpenAI to OpenAI,
//! Anthropic to Anthropic) is its JSON with object keys sorted, without `model` and
//! `stream` (both are in the key on their own); any other is the canonical request's
//! parts: system, messages with their texts, images, tool calls and results, the
//! sampling parameters, stop sequences, tools and tool choice, and whether usage is
//! asked for. Every field is length-prefixed, so no two requests feed the same bytes.
//!
//! SHA-256 rather than a keyed hash of this process: the same request has the same key in
//! every process, as a cache that replicas share will need.

use ring::digest::{Context, SHA256};
use serde_json::{Map, Value};

use crate::chat::{ChatRequest, ImageSource, Message, NativeBody, Part, Role, Tool, ToolChoice};

pub type Key = [u8; 32];

/// How the maps of keys (moka's, the calls in flight) hash a key: foldhash, seeded per
/// process. A key is already a digest, so SipHash's extra rounds bought nothing but cost
/// 1.5 k instructions per cache miss; a fixed function of the digest's bytes would let
/// a client that can try many prompts fill one bucket, which the seed prevents.
pub type KeyHasher = foldhash::quality::RandomState;

/// Bumped when the normal form changes, so no old key means something new.
const FORM: &[u8] = b"pg1";

/// The key of `chat` from `origin` to `scope`.
pub fn key(scope: &str, origin: Option<&str>, streamed: bool, chat: &ChatRequest) -> Key {
    let mut feed = Feed {
        hash: Context::new(&SHA256),
        pending: [0; PENDING],
        filled: 0,
    };
    feed.bytes(FORM);
    feed.bytes(scope.as_bytes());
    feed.opt_str(origin);
    feed.flag(streamed);
    feed.bytes(chat.model.as_bytes());
    match &chat.native {
        Some(NativeBody::OpenAi(native)) => {
            feed.tag(b'o');
            feed.fields(&native.fields);
        }
        Some(NativeBody::Anthropic(native)) => {
            feed.tag(b'a');
            feed.fields(&native.fields);
        }
        None => {
            feed.tag(b'c');
            feed.canonical(chat);
        }
    }
    let mut key = [0; 32];
    key.copy_from_slice(feed.finish().as_ref());
    key
}

/// Bytes gathered before they go to the hash: most pieces are a few bytes, and each
/// call into the hash costs more than copying them.
const PENDING: usize = 256;

/// The hash, fed one unambiguous piece at a time.
struct Feed {
    hash: Context,
    pending: [u8; PENDING],
    filled: usize,
}

impl Feed {
    fn put(&mut self, bytes: &[u8]) {
        if self.filled + bytes.len() > PENDING {
            self.hash.update(&self.pending[..self.filled]);
            self.filled = 0;
            if bytes.len() > PENDING {
                return self.hash.update(bytes);
            }
        }
        self.pending[self.filled..self.filled + bytes.len()].copy_from_slice(bytes);
        self.filled += bytes.len();
    }

    fn finish(mut self) -> ring::digest::Digest {
        self.hash.update(&self.pending[..self.filled]);
        self.hash.finish()
    }

    fn tag(&mut self, tag: u8) {
        self.put(&[tag]);
    }

    /// A length, as a LEB128 varint: one byte for most, so fewer blocks to hash.
    fn len(&mut self, n: usize) {
        let (mut n, mut out, mut at) = (n as u64, [0u8; 10], 0);
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out[at] = low;
                break;
            }
            out[at] = low | 0x80;
            at += 1;
        }
        self.put(&out[..=at]);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.put(bytes);
    }

    fn flag(&mut self, on: bool) {
        self.tag(on as u8);
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.tag(0),
            Some(s) => {
                self.tag(1);
                self.bytes(s.as_bytes());
            }
        }
    }

    fn opt_num(&mut self, n: Option<f64>) {
        match n {
            None => self.tag(0),
            Some(n) => {
                self.tag(1);
                self.put(&n.to_bits().to_le_bytes());
            }
        }
    }

    fn strs(&mut self, list: &[String]) {
        self.len(list.len());
        for s in list {
            self.bytes(s.as_bytes());
        }
    }

    /// A passthrough body's fields, less those the key holds on its own.
    fn fields(&mut self, fields: &Map<String, Value>) {
        let mut keys: Vec<&String> = fields
            .keys()
            .filter(|k| *k != "model" && *k != "stream")
            .collect();
        keys.sort_unstable();
        self.len(keys.len());
        for k in keys {
            self.bytes(k.as_bytes());
            self.json(&fields[k]);
        }
    }

    fn json(&mut self, value: &Value) {
        match value {
            Value::Null => self.tag(b'n'),
            Value::Bool(b) => {
                self.tag(b'b');
                self.flag(*b);
            }
            Value::Number(n) => {
                self.tag(b'#');
                let mut text = [0u8; 40];
                let mut rest = &mut text[..];
                match std::io::Write::write_fmt(&mut rest, format_args!("{n}")) {
                    Ok(()) => {
                        let written = 40 - rest.len();
                        self.bytes(&text[..written]);
                    }
                    Err(_) => self.bytes(n.to_string().as_bytes()),
                }
            }
            Value::String(s) => {
                self.tag(b's');
                self.bytes(s.as_bytes());
            }
            Value::Array(items) => {
                self.tag(b'[');
                self.len(items.len());
                items.iter().for_each(|v| self.json(v));
            }
            Value::Object(map) => {
                self.tag(b'{');
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                self.len(entries.len());
                for (k, v) in entries {
                    self.bytes(k.as_bytes());
                    self.json(v);
                }
            }
        }
    }

    fn canonical(&mut self, chat: &ChatRequest) {
        // Named one by one, so a new field does not compile until it is fed (or said
        // to change nothing upstream).
        let ChatRequest {
            model: _,
            system,
            messages,
            max_tokens,
            temperature,
            top_p,
            stop,
            include_usage,
            tools,
            tool_choice,
            untranslatable,
            native: _,
        } = chat;
        self.opt_str(system.as_deref());
        self.len(messages.len());
        messages.iter().for_each(|m| self.message(m));
        self.opt_num(max_tokens.map(f64::from));
        self.opt_num(*temperature);
        self.opt_num(*top_p);
        self.strs(stop);
        self.flag(*include_usage);
        self.len(tools.len());
        tools.iter().for_each(|t| self.tool(t));
        match tool_choice {
            None => self.tag(0),
            Some(ToolChoice::Auto) => self.tag(1),
            Some(ToolChoice::None) => self.tag(2),
            Some(ToolChoice::Required) => self.tag(3),
            Some(ToolChoice::Named(name)) => {
                self.tag(4);
                self.bytes(name.as_bytes());
            }
        }
        self.strs(untranslatable);
    }

    fn message(&mut self, m: &Message) {
        self.tag(match m.role {
            Role::User => b'u',
            Role::Assistant => b'a',
        });
        self.len(m.parts.len());
        for part in &m.parts {
            match part {
                Part::Text(text) => {
                    self.tag(b't');
                    self.bytes(text.as_bytes());
                }
                Part::Image(ImageSource::Base64 { media_type, data }) => {
                    self.tag(b'i');
                    self.bytes(media_type.as_bytes());
                    self.bytes(data.as_bytes());
                }
                Part::Image(ImageSource::Url(url)) => {
                    self.tag(b'l');
                    self.bytes(url.as_bytes());
                }
                Part::ToolCall(call) => {
                    self.tag(b'c');
                    self.bytes(call.id.as_bytes());
                    self.bytes(call.name.as_bytes());
                    self.bytes(call.arguments.as_bytes());
                }
                Part::ToolResult(result) => {
                    self.tag(b'r');
                    self.bytes(result.call_id.as_bytes());
                    self.bytes(result.content.as_bytes());
                    self.flag(result.is_error);
                }
            }
        }
    }

    fn tool(&mut self, tool: &Tool) {
        self.bytes(tool.name.as_bytes());
        self.opt_str(tool.description.as_deref());
        self.json(&tool.parameters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Native;

    fn chat(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, text)],
            ..ChatRequest::default()
        }
    }

    fn native(raw: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            native: Some(NativeBody::OpenAi(Native {
                fields: serde_json::from_str(raw).unwrap(),
                raw: bytes::Bytes::copy_from_slice(raw.as_bytes()),
            })),
            ..ChatRequest::default()
        }
    }

    const O: Option<&str> = Some("https://framer.com");

    #[test]
    fn the_same_request_has_the_same_key_and_any_difference_another() {
        let base = key("p", O, true, &chat("hi"));
        assert_eq!(base, key("p", O, true, &chat("hi")));
        assert_ne!(base, key("q", O, true, &chat("hi")), "provider");
        assert_ne!(base, key("p", None, true, &chat("hi")), "origin");
        assert_ne!(
            base,
            key("p", Some("https://a.framer.app"), true, &chat("hi"))
        );
        assert_ne!(base, key("p", O, false, &chat("hi")), "streamed");
        assert_ne!(base, key("p", O, true, &chat("hi ")), "text");
        let mut other = chat("hi");
        other.model = "n".into();
        assert_ne!(base, key("p", O, true, &other), "model");
        other = chat("hi");
        other.temperature = Some(0.0);
        assert_ne!(base, key("p", O, true, &other), "temperature");
        other = chat("hi");
        other.system = Some(String::new());
        assert_ne!(
            base,
            key("p", O, true, &other),
            "an empty system prompt is one"
        );
    }

    #[test]
    fn pieces_do_not_run_into_each_other() {
        let mut two = chat("a");
        two.messages.push(Message::text(Role::User, "b"));
        let mut joined = chat("ab");
        joined.messages[0].parts.clear();
        joined.messages[0].parts.push(Part::Text("a".into()));
        joined.messages[0].parts.push(Part::Text("b".into()));
        assert_ne!(key("p", O, true, &two), key("p", O, true, &joined));
        assert_ne!(
            key("ab", Some("c"), true, &chat("x")),
            key("a", Some("bc"), true, &chat("x"))
        );
    }

    #[test]
    fn a_long_piece_counts_to_its_last_byte() {
        let long = "x".repeat(1000);
        let base = key("p", O, true, &chat(&long));
        assert_eq!(base, key("p", O, true, &chat(&long)));
        let mut last = long.clone();
        last.replace_range(999.., "y");
        assert_ne!(base, key("p", O, true, &chat(&last)));
        assert_ne!(base, key("p", O, true, &chat(&format!("{long}x"))));
    }

    #[test]
    fn a_passthrough_body_is_read_in_its_normal_form() {
        let a = native(
            r#"{"model":"x","stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
        );
        let b = native(r#"{"temperature":0, "messages":[{"content":"hi","role":"user"}]}"#);
        assert_eq!(key("p", O, true, &a), key("p", O, true, &b));
        let c = native(r#"{"temperature":0.5,"messages":[{"role":"user","content":"hi"}]}"#);
        assert_ne!(key("p", O, true, &a), key("p", O, true, &c));
        let d = native(
            r#"{"temperature":0,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}"#,
        );
        assert_ne!(
            key("p", O, true, &a),
            key("p", O, true, &d),
            "usage asked for"
        );
    }
}
