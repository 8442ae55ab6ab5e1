//! Answers an `EventSource` can come back to. The upstream call of `GET /api/chat/stream`
//! is driven by a task of its own into a short, bounded buffer of the events it made;
//! each connection of the page reads that buffer from where it was. A connection cut
//! mid-answer is resumed from the event after its `Last-Event-ID`, without a second
//! upstream call and without a lost or doubled word.
//!
//! Bounds: a stream keeps at most [`MAX_BYTES`] of events (older ones go first), is kept
//! [`KEPT_AFTER_END`] after its end, and its upstream call is stopped when no connection
//! has read it for [`GRACE`] (the page left for good). A reconnect to a stream that is
//! gone, or whose part it missed is gone, is told the answer was lost.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;

/// How long an answer with no connection reading it goes on upstream.
pub const GRACE: Duration = Duration::from_secs(15);
/// How long a finished answer can still be resumed.
pub const KEPT_AFTER_END: Duration = Duration::from_secs(60);
/// Events kept per stream, in bytes.
pub const MAX_BYTES: usize = 512 * 1024;
/// Streams kept at once; finished ones make room first.
const MAX_STREAMS: usize = 1024;

/// The resumable streams of a gateway, by stream id.
#[derive(Default)]
pub struct Replays {
    streams: Mutex<HashMap<String, Arc<Replay>>>,
}

/// One answer's events, as far as they go.
pub struct Replay {
    /// Whose stream it is: another page's reconnect learns nothing of it.
    pub origin: String,
    buffer: Mutex<Buffer>,
    changed: Notify,
}

struct Buffer {
    /// The number of the oldest event kept.
    first: u64,
    events: VecDeque<Bytes>,
    bytes: usize,
    ended: Option<Instant>,
    readers: usize,
    last_read: Instant,
}

/// What a reconnect at event `after` gets.
pub enum Resume {
    /// The events after it, then the live rest.
    From(Arc<Replay>),
    /// Gone: expired, never ours, or its missed part dropped.
    Lost,
}

impl Replays {
    /// A new stream of `origin`, tracked under `id`.
    pub fn start(&self, id: &str, origin: &str) -> Arc<Replay> {
        let replay = Arc::new(Replay {
            origin: origin.to_string(),
            buffer: Mutex::new(Buffer {
                first: 0,
                events: VecDeque::new(),
                bytes: 0,
                ended: None,
                readers: 0,
                last_read: Instant::now(),
            }),
            changed: Notify::new(),
        });
        let mut streams = self.streams.lock().expect("replays lock");
        streams.retain(|_, r| !r.expired());
        if streams.len() >= MAX_STREAMS {
            let oldest_ended = streams
                .iter()
                .filter_map(|(id, r)| r.ended_at().map(|at| (at, id.clone())))
                .min();
            if let Some((_, id)) = oldest_ended {
                streams.remove(&id);
            }
        }
        streams.insert(id.to_string(), replay.clone());
        replay
    }

    /// Where a page that saw event `after` of stream `id` goes on.
    pub fn resume(&self, id: &str, origin: &str, after: u64) -> Resume {
        let streams = self.streams.lock().expect("replays lock");
        match streams.get(id) {
            Some(r) if r.origin == origin && !r.expired() && r.has_after(after) => {
                Resume::From(r.clone())
            }
            _ => Resume::Lost,
        }
    }

    pub fn len(&self) -> usize {
        self.streams.lock().expect("replays lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Replay {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().expect("replay lock")
    }

    /// Adds the next event and wakes the readers.
    pub fn push(&self, event: Bytes) {
        {
            let mut b = self.lock();
            b.bytes += event.len();
            b.events.push_back(event);
            while b.bytes > MAX_BYTES && b.events.len() > 1 {
                let old = b.events.pop_front().expect("more than one event");
                b.bytes -= old.len();
                b.first += 1;
            }
        }
        self.changed.notify_waiters();
    }

    /// The answer is complete (its last event pushed) or stopped.
    pub fn end(&self) {
        self.lock().ended.get_or_insert_with(Instant::now);
        self.changed.notify_waiters();
    }

    fn ended_at(&self) -> Option<Instant> {
        self.lock().ended
    }

    fn expired(&self) -> bool {
        self.ended_at()
            .is_some_and(|at| at.elapsed() > KEPT_AFTER_END)
    }

    /// Whether the events after `after` are all still here.
    fn has_after(&self, after: u64) -> bool {
        after + 1 >= self.lock().first
    }

    /// No connection has read the stream for [`GRACE`]: the page is gone.
    pub fn abandoned(&self) -> bool {
        let b = self.lock();
        b.readers == 0 && b.last_read.elapsed() > GRACE
    }

    /// The events numbered from `from`, then each new one as it comes, until the end.
    pub fn follow(self: Arc<Self>, from: u64) -> impl Stream<Item = Bytes> + Send + 'static {
        async_stream::stream! {
            let _reader = Reader::attach(self.clone());
            let mut next = from;
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let (batch, ended) = {
                    let b = self.lock();
                    if next < b.first {
                        // This reader fell behind the bound: it ends without `[DONE]`, and
                        // its reconnect is told the answer was lost.
                        break;
                    }
                    let skip = next.saturating_sub(b.first) as usize;
                    let batch: Vec<Bytes> = b.events.iter().skip(skip).cloned().collect();
                    (batch, b.ended.is_some())
                };
                if batch.is_empty() {
                    if ended {
                        break;
                    }
                    changed.await;
                    continue;
                }
                next += batch.len() as u64;
                for event in batch {
                    yield event;
                }
            }
        }
    }
}

/// Counts a connection reading the stream, and when the last one left.
struct Reader(Arc<Replay>);

impl Reader {
    fn attach(replay: Arc<Replay>) -> Self {
        replay.lock().readers += 1;
        Reader(replay)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut b = self.0.lock();
        b.readers -= 1;
        b.last_read = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_reader_gets_what_is_there_then_what_comes() {
        let replays = Replays::default();
        let r = replays.start("s", "o");
        r.push(Bytes::from_static(b"0"));
        r.push(Bytes::from_static(b"1"));
        let reader = tokio::spawn(r.clone().follow(1).collect::<Vec<_>>());
        tokio::task::yield_now().await;
        r.push(Bytes::from_static(b"2"));
        r.end();
        let got = reader.await.unwrap();
        assert_eq!(got, [Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
    }

    #[test]
    fn another_origin_or_a_dropped_part_is_lost() {
        let replays = Replays::default();
        let r = replays.start("s", "o");
        r.push(Bytes::from_static(b"0"));
        assert!(matches!(replays.resume("s", "o", 0), Resume::From(_)));
        assert!(matches!(replays.resume("s", "p", 0), Resume::Lost));
        assert!(matches!(replays.resume("t", "o", 0), Resume::Lost));
        let big = Bytes::from(vec![b'x'; MAX_BYTES]);
        r.push(big.clone());
        r.push(big);
        // Events 0 and 1 went to keep the buffer bounded; a page that saw 0 missed 1.
        assert!(matches!(replays.resume("s", "o", 0), Resume::Lost));
        assert!(matches!(replays.resume("s", "o", 1), Resume::From(_)));
    }

    #[test]
    fn a_stream_nobody_reads_is_abandoned_only_after_the_grace() {
        let replays = Replays::default();
        let r = replays.start("s", "o");
        assert!(!r.abandoned());
        r.lock().last_read = Instant::now() - GRACE - Duration::from_secs(1);
        assert!(r.abandoned());
        let _reader = Reader::attach(r.clone());
        assert!(!r.abandoned());
    }
}
