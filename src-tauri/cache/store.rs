//! The stored answers: a moka cache bounded both in entries and in bytes, each answer
//! kept for the time to live from when it was stored.
//!
//! moka bounds one measure, so both are folded into the weight: an answer weighs its
//! bytes, but never less than `max_bytes / max_entries`. Then `max_bytes` of weight
//! holds at most `max_entries` answers and at most `max_bytes` bytes (many small answers
//! make room a little before the bytes alone would ask). The least recently used go
//! first: a fresh answer is always let in, which the next identical request relies on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::policy::EvictionPolicy;

use super::key::{Key, KeyHasher};
use crate::chat::{ChatEvent, Completion, Frame};
use crate::config::CacheSection;

/// A complete, successful answer.
#[derive(Debug)]
pub enum Answer {
    /// The frames a provider streamed, up to and with its end marker.
    Stream(Arc<[Frame]>),
    Whole(Completion),
}

pub struct Store {
    answers: moka::sync::Cache<Key, Arc<Answer>, KeyHasher>,
    max_bytes: u64,
    least: u64,
    /// Weight stored since moka last applied its bounds.
    pending: AtomicU64,
}

impl Store {
    pub fn new(settings: &CacheSection) -> Self {
        let least = (settings.max_bytes / settings.max_entries.max(1)).max(1);
        let answers = moka::sync::Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(move |_: &Key, answer: &Arc<Answer>| -> u32 {
                (answer.size() as u64).max(least).min(u32::MAX.into()) as u32
            })
            .time_to_live(Duration::from_secs(settings.ttl_s))
            .eviction_policy(EvictionPolicy::lru())
            .build_with_hasher(KeyHasher::default());
        Store {
            answers,
            max_bytes: settings.max_bytes,
            least,
            pending: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Answer>> {
        self.answers.get(key)
    }

    /// Stores `answer` unless it alone is over the bytes allowed. Once the answers may
    /// be over a bound, it applies at once (moka would evict a little later, on some
    /// later call); below them, that work is left for later.
    pub fn put(&self, key: Key, answer: Answer) {
        let size = answer.size() as u64;
        if size <= self.max_bytes {
            self.insert(key, Arc::new(answer), size);
        }
    }

    /// As [`Store::put`], for an answer also held elsewhere (on its way to Redis).
    pub fn put_shared(&self, key: Key, answer: Arc<Answer>) {
        let size = answer.size() as u64;
        if size <= self.max_bytes {
            self.insert(key, answer, size);
        }
    }

    fn insert(&self, key: Key, answer: Arc<Answer>, size: u64) {
        self.answers.insert(key, answer);
        let weight = size.max(self.least);
        let pending = self.pending.fetch_add(weight, Ordering::Relaxed) + weight;
        if self.answers.weighted_size() + pending > self.max_bytes {
            self.answers.run_pending_tasks();
            self.pending.store(0, Ordering::Relaxed);
        }
    }

    /// Answers stored now.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.answers.run_pending_tasks();
        self.answers.entry_count()
    }
}

/// What a frame costs beside its text: the struct and its vectors' headers.
const FRAME_OVERHEAD: usize = 96;
/// An entry's own cost: its key, the answer's header, moka's bookkeeping.
const ENTRY_OVERHEAD: usize = 192;

impl Answer {
    /// Bytes held, near enough.
    pub fn size(&self) -> usize {
        ENTRY_OVERHEAD
            + match self {
                Answer::Stream(frames) => frames.iter().map(frame_size).sum(),
                Answer::Whole(c) => {
                    c.text.len()
                        + c.raw.as_ref().map_or(0, |r| r.len())
                        + c.tool_calls
                            .iter()
                            .map(|t| t.id.len() + t.name.len() + t.arguments.len() + 72)
                            .sum::<usize>()
                }
            }
    }
}

fn frame_size(frame: &Frame) -> usize {
    let raw = frame
        .raw
        .as_ref()
        .map_or(0, |r| r.data.len() + r.name.as_ref().map_or(0, String::len));
    let events: usize = frame
        .events
        .iter()
        .map(|e| {
            48 + match e {
                ChatEvent::Text(t) => t.len(),
                ChatEvent::ToolCallStart { id, name, .. } => id.len() + name.len(),
                ChatEvent::ToolCallDelta { arguments, .. } => arguments.len(),
                ChatEvent::Finish(_) | ChatEvent::Usage(_) | ChatEvent::End => 0,
            }
        })
        .sum();
    FRAME_OVERHEAD + raw + events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_entries: u64, max_bytes: u64) -> CacheSection {
        CacheSection {
            enabled: true,
            max_entries,
            max_bytes,
            ..CacheSection::default()
        }
    }

    fn text(n: usize) -> Answer {
        Answer::Whole(Completion {
            text: "x".repeat(n),
            ..Completion::default()
        })
    }

    #[test]
    fn entries_are_bounded_in_number() {
        let store = Store::new(&settings(2, 1 << 20));
        for i in 0..5u8 {
            store.put([i; 32], text(10));
        }
        assert_eq!(store.len(), 2);
        assert!(store.get(&[4; 32]).is_some(), "the newest answer is kept");
        assert!(store.get(&[0; 32]).is_none(), "the oldest answer made room");
    }

    #[test]
    fn entries_are_bounded_in_bytes() {
        let store = Store::new(&settings(1000, 10_000));
        for i in 0..5u8 {
            store.put([i; 32], text(3_000));
        }
        assert!(store.len() <= 3, "three answers of 3 KB fill 10 KB");
        assert!(store.get(&[4; 32]).is_some());
        store.put([9; 32], text(20_000));
        assert!(
            store.get(&[9; 32]).is_none(),
            "an answer over the whole bound is not kept"
        );
        assert!(store.get(&[4; 32]).is_some(), "and it pushed nothing out");
    }
}
