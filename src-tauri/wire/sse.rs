//! Server-sent events, framed from an upstream's body as the WHATWG event-stream rules
//! say: lines ended by CRLF, LF or CR; `data:` lines joined with a line feed; an event
//! dispatched at a blank line, and only if it carried data.
//!
//! Written here rather than taken from `eventsource-stream` (which the tests still
//! check it against, input for input): that crate parses character by character through
//! `nom` and re-copies its buffer at every line, a third of what a streamed answer
//! costs the gateway, and it panics on a stream that starts with a byte-order mark.
//! This reads whole lines with `memchr` and copies each read once.

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::{Stream, StreamExt};

/// One dispatched event. `id:` and `retry:` are not kept: they matter to a browser that
/// reconnects, and an upstream's answer is never resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The `event:` name, `message` when the event had none.
    pub event: Cow<'static, str>,
    pub data: String,
}

/// Why a stream of events ended early.
#[derive(Debug)]
pub enum Error<E> {
    /// A line was not UTF-8, which the event-stream format requires.
    Utf8,
    /// The body itself failed (a reset connection, a cut chunk).
    Transport(E),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Utf8 => f.write_str("the event stream is not UTF-8"),
            Error::Transport(e) => write!(f, "the body broke: {e}"),
        }
    }
}

/// A line was not UTF-8.
#[derive(Debug, PartialEq, Eq)]
pub struct NotUtf8;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The line-by-line state of one stream: bytes read and not yet framed, and the event
/// being built.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    /// Where the first line not yet read starts in `buffer`.
    read: usize,
    /// How far past `read` is known to hold no line end, so that a long line arriving in
    /// small reads is searched once, not again from its start at every read.
    searched: usize,
    /// Whether the stream's start has been looked at for a byte-order mark.
    started: bool,
    event: String,
    data: String,
}

impl Parser {
    /// Appends a read from the body.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.read > 0 {
            // Only a partial line is left: it moves to the front, once per read.
            self.buffer.drain(..self.read);
            self.searched = self.searched.saturating_sub(self.read);
            self.read = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event in what was fed, if there is one yet.
    pub fn next_event(&mut self) -> Result<Option<Event>, NotUtf8> {
        let Parser {
            buffer,
            read,
            searched,
            started,
            event,
            data,
        } = self;
        if !*started {
            let seen = buffer.len().min(BOM.len());
            if buffer[..seen] != BOM[..seen] {
                *started = true;
            } else if seen == BOM.len() {
                *read = BOM.len();
                *started = true;
            } else {
                return Ok(None);
            }
        }
        loop {
            let rest = &buffer[*read..];
            let from = searched.saturating_sub(*read);
            let Some(end) = memchr::memchr2(b'\n', b'\r', &rest[from..]).map(|at| from + at) else {
                *searched = buffer.len();
                return Ok(None);
            };
            let next = match (rest[end], rest.get(end + 1)) {
                (b'\n', _) => end + 1,
                (_, Some(b'\n')) => end + 2,
                (_, Some(_)) => end + 1,
                // A CR last in what was read may be the first half of a CRLF.
                (_, None) => {
                    *searched = *read + end;
                    return Ok(None);
                }
            };
            let line = std::str::from_utf8(&rest[..end]).map_err(|_| NotUtf8)?;
            *read += next;
            if line.is_empty() {
                if let Some(dispatched) = dispatch(event, data) {
                    return Ok(Some(dispatched));
                }
                continue;
            }
            let (name, value) = match memchr::memchr(b':', line.as_bytes()) {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
                }
                None => (line, ""),
            };
            match name {
                "data" => {
                    data.reserve(value.len() + 1);
                    data.push_str(value);
                    data.push('\n');
                }
                "event" => {
                    event.clear();
                    event.push_str(value);
                }
                _ => {}
            }
        }
    }

    /// The body ended: what is left is an event never completed, dropped as the format
    /// says, unless it is not even UTF-8.
    pub fn finish(&mut self) -> Result<(), NotUtf8> {
        let whole = std::str::from_utf8(&self.buffer[self.read..]).is_ok();
        self.buffer.clear();
        self.read = 0;
        self.searched = 0;
        if whole {
            Ok(())
        } else {
            Err(NotUtf8)
        }
    }
}

fn dispatch(event: &mut String, data: &mut String) -> Option<Event> {
    let name = match event.as_str() {
        "" | "message" => Cow::Borrowed("message"),
        _ => Cow::Owned(std::mem::take(event)),
    };
    event.clear();
    if data.is_empty() {
        return None;
    }
    data.pop();
    Some(Event {
        event: name,
        data: std::mem::take(data),
    })
}

/// A body's events, ending at the first error.
pub struct Events<S> {
    body: S,
    parser: Parser,
    ended: bool,
}

/// Frames `body` (a stream of reads) into events.
pub fn events<S>(body: S) -> Events<S> {
    Events {
        body,
        parser: Parser::default(),
        ended: false,
    }
}

impl<S, B, E> Stream for Events<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    type Item = Result<Event, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match this.parser.next_event() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(_) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(Error::Utf8)));
                }
            }
            match ready!(this.body.poll_next_unpin(cx)) {
                Some(Ok(bytes)) => this.parser.feed(bytes.as_ref()),
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(Error::Transport(e))));
                }
                None => {
                    this.ended = true;
                    if this.parser.finish().is_err() {
                        return Poll::Ready(Some(Err(Error::Utf8)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventsource_stream::Eventsource;

    /// (name, data) of each event, and whether the stream ended in an error.
    type Outcome = (Vec<(String, String)>, bool);

    fn ours(reads: &[&[u8]]) -> Outcome {
        let reads: Vec<Result<&[u8], ()>> = reads.iter().map(|r| Ok(*r)).collect();
        let mut stream = events(futures_util::stream::iter(reads));
        collect(futures_executor::block_on(async {
            let mut all = vec![];
            while let Some(e) = stream.next().await {
                all.push(e.map(|e| (e.event.into_owned(), e.data)).map_err(drop));
            }
            all
        }))
    }

    fn reference(reads: &[&[u8]]) -> Outcome {
        let reads: Vec<Result<Vec<u8>, ()>> = reads.iter().map(|r| Ok(r.to_vec())).collect();
        let mut stream = futures_util::stream::iter(reads).eventsource();
        collect(futures_executor::block_on(async {
            let mut all = vec![];
            while let Some(e) = stream.next().await {
                all.push(e.map(|e| (e.event, e.data)).map_err(drop));
            }
            all
        }))
    }

    fn collect(all: Vec<Result<(String, String), ()>>) -> Outcome {
        let mut events = vec![];
        for item in all {
            match item {
                Ok(event) => events.push(event),
                Err(()) => return (events, true),
            }
        }
        (events, false)
    }

    fn event(name: &str, data: &str) -> (String, String) {
        (name.into(), data.into())
    }

    #[test]
    fn frames_what_providers_send() {
        let openai: &[&[u8]] = &[
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            b"data: [DONE]\n\n",
        ];
        assert_eq!(
            ours(openai),
            (
                vec![
                    event(
                        "message",
                        "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"
                    ),
                    event("message", "[DONE]"),
                ],
                false
            )
        );
        let anthropic: &[&[u8]] = &[
            b"event: content_block_delta\r\ndata: {\"delta\":{\"text\":\"a\"}}\r\n\r\n",
            b": ping\r\n\r\nevent: message_stop\r\ndata: {}\r\n\r\n",
        ];
        assert_eq!(
            ours(anthropic),
            (
                vec![
                    event("content_block_delta", "{\"delta\":{\"text\":\"a\"}}"),
                    event("message_stop", "{}"),
                ],
                false
            )
        );
    }

    #[test]
    fn follows_the_event_stream_rules() {
        // Several data lines join with a line feed; one leading space is stripped.
        assert_eq!(
            ours(&[b"data:a\ndata:  b\ndata\n\n"]).0,
            [event("message", "a\n b\n")]
        );
        // No data: nothing dispatched, and the name does not carry over.
        assert_eq!(
            ours(&[b"event: x\nid: 1\n\ndata: y\n\n"]).0,
            [event("message", "y")]
        );
        // Lines ended by CR alone; comments and unknown fields ignored.
        assert_eq!(
            ours(&[b":hi\rretry: 5\rfoo: bar\rdata: z\r\r\n"]).0,
            [event("message", "z")]
        );
        // An event the body never finished is dropped, not dispatched.
        assert_eq!(
            ours(&[b"data: a\n\ndata: b\n"]),
            (vec![event("message", "a")], false)
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped_even_split() {
        let expected = (vec![event("message", "a")], false);
        assert_eq!(ours(&[b"\xEF\xBB\xBFdata: a\n\n"]), expected);
        assert_eq!(ours(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]), expected);
        // Only one: a second is part of the next line's field name.
        assert_eq!(
            ours(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"]),
            (vec![], false)
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_an_error_after_the_events_before_it() {
        assert_eq!(
            ours(&[b"data: a\n\ndata: \xFF\n\ndata: b\n\n"]),
            (vec![event("message", "a")], true)
        );
        // Half a character left at the end.
        assert_eq!(
            ours(&[b"data: a\n\n\xE2\x82"]),
            (vec![event("message", "a")], true)
        );
        // A character split across reads is whole again.
        assert_eq!(
            ours(&[b"data: \xE2", b"\x82\xAC\n\n"]),
            (vec![event("message", "\u{20AC}")], false)
        );
    }

    #[test]
    fn a_broken_body_is_an_error() {
        let reads: Vec<Result<&[u8], &str>> = vec![Ok(b"data: a\n\ndata: b"), Err("reset")];
        let mut stream = events(futures_util::stream::iter(reads));
        futures_executor::block_on(async {
            assert_eq!(stream.next().await.unwrap().unwrap().data, "a");
            let Some(Err(Error::Transport("reset"))) = stream.next().await else {
                panic!("expected the transport error");
            };
            assert!(stream.next().await.is_none());
        });
    }

    /// Every way of cutting each sample into reads frames as `eventsource-stream` frames
    /// it whole (the fuzz target `upstream_events` tries far more inputs).
    #[test]
    fn agrees_with_eventsource_stream() {
        let samples: &[&[u8]] = &[
            b"data: one\n\nevent: two\ndata: 2\n\n",
            b"data: a\r\n\r\ndata: b\r\rdata: c\n\r\n",
            b"event:\ndata\n\n:comment\n\ndata: x\ndata: y\n\n",
            b"data: a\n\r",
            b"data: a\n\r\n",
            b"data: \xE2\x82\xAC\nevent: \xC3\xA9\n\n",
            b"id: 7\nretry: 10\ndata: a\n\n\n\ndata:b\n\n",
            b"data: a",
            b"",
        ];
        for sample in samples {
            let whole = reference(&[sample]);
            for cut in 0..=sample.len() {
                let (head, tail) = sample.split_at(cut);
                assert_eq!(ours(&[head, tail]), whole, "{:?} cut at {cut}", sample);
            }
            for size in 1..4 {
                let reads: Vec<&[u8]> = sample.chunks(size).collect();
                assert_eq!(ours(&reads), whole, "{:?} in reads of {size}", sample);
            }
        }
    }
}
