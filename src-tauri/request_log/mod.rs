//! The request log: every request, refused ones included, as one [`Record`] in an
//! in-memory ring (the window's live log) and a line in rolling daily JSON files.

mod layer;
mod record;

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::io::BufWriter;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::broadcast;

use tracing_appender::rolling::{RollingFileAppender, Rotation};

pub use layer::REQUEST_ID_HEADER;
pub(crate) use layer::{open_record, RequestRecord};
pub use record::{Attempt, LogEvent, LogEventKind, Record, RecordHandle};

/// Something that reads each finished record (metrics, traces, budgets): called on the
/// request's own task, so it must only count or hand off, never wait.
pub trait RecordObserver: Send + Sync {
    fn finished(&self, record: &Record);
}

/// The observers a running gateway's settings asked for; none by default.
pub type Observers = Vec<std::sync::Arc<dyn RecordObserver>>;

const FILE_PREFIX: &str = "requests";
const FILE_SUFFIX: &str = "jsonl";
/// Records reach the file within this time. Writing each one through a worker thread
/// (tracing-appender's `non_blocking`) woke a thread per request and cost a fifth of the
/// gateway's throughput in the benchmark; a buffer flushed on a timer costs nothing.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

thread_local! {
    /// A record's line is written here first, so the buffer is not grown anew for every
    /// request (or written to under the file's lock).
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A line buffer grown past this by one long record is not kept.
const LINE_KEPT: usize = 64 * 1024;

/// Cheap-clone handle to the ring and the log files.
#[derive(Clone)]
pub struct RequestLog {
    inner: Arc<Inner>,
}

struct Inner {
    ring: Mutex<VecDeque<Record>>,
    capacity: usize,
    max_text_chars: usize,
    live: broadcast::Sender<LogEvent>,
    /// Buffered; flushed every [`FLUSH_EVERY`] and when the last handle goes.
    file: Option<Mutex<BufWriter<RollingFileAppender>>>,
    dir: Option<PathBuf>,
    /// Replaced whole when the settings change; empty costs one atomic load per record.
    observers: arc_swap::ArcSwap<Observers>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl RequestLog {
    /// A log kept in memory and, when `dir` is given, in daily files there; files older
    /// than `retention_days` are deleted as the log rolls over.
    pub fn new(
        dir: Option<&Path>,
        retention_days: usize,
        capacity: usize,
        max_text_chars: usize,
    ) -> std::io::Result<Self> {
        let file = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let appender = RollingFileAppender::builder()
                    .rotation(Rotation::DAILY)
                    .filename_prefix(FILE_PREFIX)
                    .filename_suffix(FILE_SUFFIX)
                    .max_log_files(retention_days)
                    .build(dir)
                    .map_err(std::io::Error::other)?;
                Some(Mutex::new(BufWriter::with_capacity(64 * 1024, appender)))
            }
            None => None,
        };
        let log = RequestLog {
            inner: Arc::new(Inner {
                ring: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
                capacity,
                max_text_chars,
                live: broadcast::channel(256).0,
                file,
                dir: dir.map(Path::to_path_buf),
                observers: Default::default(),
            }),
        };
        if log.inner.file.is_some() {
            let weak = Arc::downgrade(&log.inner);
            std::thread::Builder::new()
                .name("protogate-log-flush".into())
                .spawn(move || flush_while_alive(weak))?;
        }
        Ok(log)
    }

    /// Writes buffered records to the file now.
    pub fn flush(&self) {
        if let Some(file) = &self.inner.file {
            let _ = file.lock().expect("log file lock").flush();
        }
    }

    /// Where the daily files are written, if anywhere.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// A handle for a new request's record, which publishes its progress to subscribers.
    pub(crate) fn open(&self, record: Record) -> RecordHandle {
        RecordHandle::new(record, self.inner.max_text_chars).publishing(self.inner.live.clone())
    }

    /// Makes `observers` the ones told of each finished record, in place of any before.
    pub fn set_observers(&self, observers: Observers) {
        self.inner.observers.store(std::sync::Arc::new(observers));
    }

    /// Stores a finished record everywhere it belongs.
    pub fn push(&self, record: Record) {
        for observer in self.inner.observers.load().iter() {
            observer.finished(&record);
        }
        tracing::debug!(
            target: "protogate::request",
            id = %record.id, method = %record.method, path = %record.path,
            status = record.status, latency_ms = record.latency_ms,
            origin = record.origin.as_deref().unwrap_or("-"),
            error = record.error.as_deref().unwrap_or(""),
        );
        if let Some(file) = &self.inner.file {
            LINE.with_borrow_mut(|line| {
                line.clear();
                if record.write_json(line).is_ok() {
                    line.push(b'\n');
                    let _ = file.lock().expect("log file lock").write_all(line);
                }
                if line.capacity() > LINE_KEPT {
                    *line = Vec::new();
                }
            });
        }
        if self.inner.live.receiver_count() > 0 {
            let _ = self.inner.live.send(LogEvent {
                kind: LogEventKind::Finished,
                record: record.clone(),
            });
        }
        let mut ring = self.inner.ring.lock().expect("ring lock");
        if ring.len() == self.inner.capacity {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// The records in memory, oldest first.
    pub fn recent(&self) -> Vec<Record> {
        self.inner
            .ring
            .lock()
            .expect("ring lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Each request as it starts, moves on (response head, first token) and finishes, so
    /// the window can show a two-minute stream from its first second. Nothing is built
    /// for this while nobody subscribes.
    pub fn subscribe(&self) -> broadcast::Receiver<LogEvent> {
        self.inner.live.subscribe()
    }

    /// Forgets the records in memory; the files keep them.
    pub fn clear(&self) {
        self.inner.ring.lock().expect("ring lock").clear();
    }
}

fn flush_while_alive(log: Weak<Inner>) {
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let Some(inner) = log.upgrade() else { return };
        if let Some(file) = &inner.file {
            let _ = file.lock().expect("log file lock").flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_records() {
        let log = RequestLog::new(None, 1, 2, 100).unwrap();
        for id in ["a", "b", "c"] {
            log.push(Record {
                id: id.into(),
                ..Record::default()
            });
        }
        let ids: Vec<_> = log.recent().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn records_are_written_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = RequestLog::new(Some(dir.path()), 3, 10, 100).unwrap();
            log.push(Record {
                id: "r1".into(),
                status: 200,
                ..Record::default()
            });
            log.flush();
        }
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("requests.") && name.ends_with(".jsonl"),
            "{name}"
        );
        let line = std::fs::read_to_string(file).unwrap();
        let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(value["id"], "r1");
    }
}
