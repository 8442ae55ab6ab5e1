//! The binary form of a stored answer, as team mode keeps it in Redis: a version byte,
//! then the answer as stored (a stream's frames, or the whole completion). Lengths are
//! u32 little-endian, options a 0/1 byte. Reading never trusts a length: a damaged or
//! foreign value is `None`, never a panic or a huge allocation.

use bytes::Bytes;

use super::store::Answer;
use crate::chat::{ChatEvent, Completion, FinishReason, Frame, RawEvent, ToolCall, Usage};

/// The form's version; bumped when it changes, so old values read as misses.
const VERSION: u8 = 1;

// Tags of the binary form.
const STREAM: u8 = b'S';
const WHOLE: u8 = b'W';

/// The answer as bytes.
pub fn encode(answer: &Answer) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(answer.size()));
    out.byte(VERSION);
    match answer {
        Answer::Stream(frames) => {
            out.byte(STREAM);
            out.len(frames.len());
            for frame in frames.iter() {
                out.flag(frame.raw.is_some());
                if let Some(raw) = &frame.raw {
                    out.opt_str(raw.name.as_deref());
                    out.bytes(&raw.data);
                }
                out.len(frame.events.len());
                frame.events.iter().for_each(|e| out.event(e));
            }
        }
        Answer::Whole(c) => {
            out.byte(WHOLE);
            out.bytes(c.text.as_bytes());
            out.len(c.tool_calls.len());
            for call in &c.tool_calls {
                out.bytes(call.id.as_bytes());
                out.bytes(call.name.as_bytes());
                out.bytes(call.arguments.as_bytes());
            }
            out.flag(c.finish.is_some());
            if let Some(finish) = c.finish {
                out.byte(finish_code(finish));
            }
            out.flag(c.usage.is_some());
            if let Some(usage) = c.usage {
                out.usage(usage);
            }
            out.flag(c.raw.is_some());
            if let Some(raw) = &c.raw {
                out.bytes(raw);
            }
        }
    }
    out.0
}

/// The answer `value` holds; `None` for another version or anything malformed.
pub fn decode(value: &[u8]) -> Option<Answer> {
    let mut r = Reader(value);
    if r.byte()? != VERSION {
        return None;
    }
    let answer = match r.byte()? {
        STREAM => {
            let n = r.count()?;
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                let raw = match r.flag()? {
                    true => Some(RawEvent {
                        name: r.opt_string()?,
                        data: Bytes::copy_from_slice(r.bytes()?),
                    }),
                    false => None,
                };
                let n = r.count()?;
                let events = (0..n).map(|_| r.event()).collect::<Option<_>>()?;
                frames.push(Frame { raw, events });
            }
            Answer::Stream(frames.into())
        }
        WHOLE => {
            let text = r.string()?;
            let n = r.count()?;
            let tool_calls = (0..n)
                .map(|_| {
                    Some(ToolCall {
                        id: r.string()?,
                        name: r.string()?,
                        arguments: r.string()?,
                    })
                })
                .collect::<Option<_>>()?;
            let finish = match r.flag()? {
                true => Some(finish_of(r.byte()?)?),
                false => None,
            };
            let usage = match r.flag()? {
                true => Some(r.usage()?),
                false => None,
            };
            let raw = match r.flag()? {
                true => Some(Bytes::copy_from_slice(r.bytes()?)),
                false => None,
            };
            Answer::Whole(Completion {
                text,
                tool_calls,
                finish,
                usage,
                raw,
            })
        }
        _ => return None,
    };
    r.0.is_empty().then_some(answer)
}

const FINISHES: [FinishReason; 5] = [
    FinishReason::Stop,
    FinishReason::Length,
    FinishReason::ContentFilter,
    FinishReason::ToolCalls,
    FinishReason::Other,
];

fn finish_code(finish: FinishReason) -> u8 {
    FINISHES.iter().position(|f| *f == finish).unwrap_or(4) as u8
}

fn finish_of(code: u8) -> Option<FinishReason> {
    FINISHES.get(usize::from(code)).copied()
}

struct Writer(Vec<u8>);

impl Writer {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn flag(&mut self, on: bool) {
        self.byte(u8::from(on));
    }

    fn len(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u32).to_le_bytes());
    }

    fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    fn opt_str(&mut self, s: Option<&str>) {
        self.flag(s.is_some());
        if let Some(s) = s {
            self.bytes(s.as_bytes());
        }
    }

    fn usage(&mut self, usage: Usage) {
        self.u64(usage.input_tokens);
        self.u64(usage.output_tokens);
    }

    fn event(&mut self, event: &ChatEvent) {
        match event {
            ChatEvent::Text(text) => {
                self.byte(b't');
                self.bytes(text.as_bytes());
            }
            ChatEvent::ToolCallStart { index, id, name } => {
                self.byte(b's');
                self.len(*index);
                self.bytes(id.as_bytes());
                self.bytes(name.as_bytes());
            }
            ChatEvent::ToolCallDelta { index, arguments } => {
                self.byte(b'd');
                self.len(*index);
                self.bytes(arguments.as_bytes());
            }
            ChatEvent::Finish(finish) => {
                self.byte(b'f');
                self.byte(finish_code(*finish));
            }
            ChatEvent::Usage(usage) => {
                self.byte(b'u');
                self.usage(*usage);
            }
            ChatEvent::End => self.byte(b'e'),
        }
    }
}

/// Reads what [`Writer`] wrote, never past the end (a bad length is `None`, not a panic
/// or a huge allocation).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn len(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A number of items, each at least a byte: more than the bytes left is malformed.
    fn count(&mut self) -> Option<usize> {
        self.len().filter(|n| *n <= self.0.len())
    }

    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.flag()? {
            true => Some(Some(self.string()?)),
            false => Some(None),
        }
    }

    fn usage(&mut self) -> Option<Usage> {
        Some(Usage {
            input_tokens: self.u64()?,
            output_tokens: self.u64()?,
        })
    }

    fn event(&mut self) -> Option<ChatEvent> {
        Some(match self.byte()? {
            b't' => ChatEvent::Text(self.string()?),
            b's' => ChatEvent::ToolCallStart {
                index: self.len()?,
                id: self.string()?,
                name: self.string()?,
            },
            b'd' => ChatEvent::ToolCallDelta {
                index: self.len()?,
                arguments: self.string()?,
            },
            b'f' => ChatEvent::Finish(finish_of(self.byte()?)?),
            b'u' => ChatEvent::Usage(self.usage()?),
            b'e' => ChatEvent::End,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Answer {
        Answer::Stream(
            vec![
                Frame {
                    raw: Some(RawEvent {
                        name: Some("content_block_delta".into()),
                        data: Bytes::from_static(b"{\"delta\":{\"text\":\"h\xc3\xa9\"}}"),
                    }),
                    events: vec![ChatEvent::Text("hé".into())],
                },
                Frame {
                    raw: None,
                    events: vec![
                        ChatEvent::ToolCallStart {
                            index: 0,
                            id: "call_1".into(),
                            name: "look".into(),
                        },
                        ChatEvent::ToolCallDelta {
                            index: 0,
                            arguments: "{}".into(),
                        },
                        ChatEvent::Finish(FinishReason::ToolCalls),
                        ChatEvent::Usage(Usage {
                            input_tokens: 3,
                            output_tokens: u64::MAX,
                        }),
                        ChatEvent::End,
                    ],
                },
            ]
            .into(),
        )
    }

    fn whole() -> Answer {
        Answer::Whole(Completion {
            text: "Hello".into(),
            tool_calls: vec![ToolCall {
                id: "a".into(),
                name: "b".into(),
                arguments: "{\"c\":1}".into(),
            }],
            finish: Some(FinishReason::Length),
            usage: Some(Usage {
                input_tokens: 1,
                output_tokens: 2,
            }),
            raw: Some(Bytes::from_static(b"{\"id\":\"x\"}")),
        })
    }

    #[test]
    fn an_answer_reads_back_as_it_was_stored() {
        for answer in [stream(), whole(), Answer::Whole(Completion::default())] {
            let again = decode(&encode(&answer)).expect("reads back");
            assert_eq!(format!("{again:?}"), format!("{answer:?}"));
        }
    }

    #[test]
    fn another_version_or_a_damaged_value_is_a_miss() {
        let good = encode(&stream());
        let mut other = good.clone();
        other[0] = VERSION + 1;
        assert!(decode(&other).is_none());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        let huge = [VERSION, STREAM, 0xff, 0xff, 0xff, 0xff];
        assert!(decode(&huge).is_none(), "a count past the end");
        assert!(decode(&[]).is_none());
    }
}
