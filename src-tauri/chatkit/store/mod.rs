//! ChatKit threads, kept per origin (one prototype never sees another's), bounded in
//! count and age, and saved to one JSON file so a reload or a restart keeps them.
//!
//! The file is rewritten whole (temporary file, then rename) after each change that a
//! reload must see: a finished item, a rename, a delete. Streaming deltas are not saved;
//! they become one item when the answer ends. A file that cannot be read is set aside
//! under a new name, with a log line, and the store starts empty: never a crash.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod conversation;
mod origin;

pub use origin::OriginJson;

use super::types::{
    FeedbackKind, ImageAttachment, ItemsListParams, ListParams, Order, Page, ThreadItem,
    ThreadMetadata, ThreadStatus,
};

const FILE_NAME: &str = "threads.json";

/// How much the store keeps per origin.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_threads: usize,
    pub max_age: Duration,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct Data {
    /// Threads per origin, oldest first.
    #[serde(default)]
    origins: BTreeMap<String, Vec<StoredThread>>,
    /// Uploaded images not yet sent in a message, per origin.
    #[serde(default)]
    uploads: BTreeMap<String, Vec<ImageAttachment>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StoredThread {
    pub meta: ThreadMetadata,
    /// Oldest first.
    pub items: Vec<ThreadItem>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feedback: BTreeMap<String, FeedbackKind>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("thread `{0}` does not exist (deleted, or started by another page)")]
    NoThread(String),
    #[error("item `{0}` is not a user message of this thread")]
    NoUserMessage(String),
    #[error("attachment `{0}` does not exist (uploaded by another page, or deleted)")]
    NoAttachment(String),
}

pub struct Store {
    data: Mutex<Data>,
    file: Option<PathBuf>,
    bounds: Bounds,
    /// Orders file writes: a snapshot older than the one on disk is never written.
    written: Mutex<u64>,
    next: AtomicU64,
    /// Counts changes, so team mode can tell a reading operation from a changing one.
    changes: AtomicU64,
}

impl Store {
    /// The one store of `dir` in this process (reloaded settings keep it), opened now
    /// if no one has it open. `None` keeps threads in memory only.
    pub fn shared(dir: Option<&Path>, bounds: Bounds) -> Arc<Store> {
        static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Store>>>> = OnceLock::new();
        let Some(dir) = dir else {
            return Arc::new(Store::in_memory(bounds));
        };
        let mut open = OPEN
            .get_or_init(Default::default)
            .lock()
            .expect("store registry lock");
        open.retain(|_, store| store.strong_count() > 0);
        if let Some(store) = open.get(dir).and_then(Weak::upgrade) {
            return store;
        }
        let store = Arc::new(Store::open(dir, bounds));
        open.insert(dir.to_path_buf(), Arc::downgrade(&store));
        store
    }

    pub fn in_memory(bounds: Bounds) -> Store {
        Store {
            data: Mutex::new(Data::default()),
            file: None,
            bounds,
            written: Mutex::new(0),
            next: AtomicU64::new(1),
            changes: AtomicU64::new(0),
        }
    }

    fn open(dir: &Path, bounds: Bounds) -> Store {
        let file = dir.join(FILE_NAME);
        let data =
            match std::fs::read(&file) {
                Ok(bytes) => {
                    match serde_json::from_slice::<Data>(&bytes) {
                        Ok(data) => data,
                        Err(e) => {
                            let aside = file.with_extension(format!(
                                "corrupt-{}.json",
                                OffsetDateTime::now_utc().unix_timestamp()
                            ));
                            let moved = std::fs::rename(&file, &aside);
                            tracing::warn!(
                        "ChatKit threads in {} could not be read ({e}); set aside as {} ({}) \
                         and starting with none",
                        file.display(),
                        aside.display(),
                        if moved.is_ok() { "moved" } else { "could not move it" },
                    );
                            Data::default()
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
                Err(e) => {
                    tracing::warn!(
                        "ChatKit threads in {} could not be read ({e}); keeping them in memory",
                        file.display()
                    );
                    return Store::in_memory(bounds);
                }
            };
        let mut data = data;
        prune(&mut data, bounds);
        Store {
            data: Mutex::new(data),
            file: Some(file),
            bounds,
            written: Mutex::new(0),
            next: AtomicU64::new(1),
            changes: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the data, prunes what is over the bounds and saves the result.
    fn change<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        let (result, snapshot) = {
            let mut data = self.data.lock().expect("store lock");
            let result = f(&mut data);
            prune(&mut data, self.bounds);
            self.changes.fetch_add(1, Ordering::Relaxed);
            let snapshot = self.file.as_ref().map(|_| {
                (
                    self.next.fetch_add(1, Ordering::Relaxed),
                    serde_json::to_vec(&*data).expect("threads serialize"),
                )
            });
            (result, snapshot)
        };
        if let (Some(file), Some((seq, bytes))) = (&self.file, snapshot) {
            self.write(file, seq, &bytes);
        }
        result
    }

    fn write(&self, file: &Path, seq: u64, bytes: &[u8]) {
        let mut written = self.written.lock().expect("store write lock");
        if *written > seq {
            return;
        }
        let result = (|| {
            let dir = file.parent().expect("the file is in a directory");
            std::fs::create_dir_all(dir)?;
            let mut temp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut temp, bytes)?;
            temp.persist(file).map_err(|e| e.error)?;
            Ok::<_, std::io::Error>(())
        })();
        match result {
            Ok(()) => *written = seq,
            Err(e) => tracing::warn!(
                "ChatKit threads could not be saved to {}: {e}; they are kept in memory",
                file.display()
            ),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&Data) -> R) -> R {
        f(&self.data.lock().expect("store lock"))
    }

    pub fn create_thread(&self, origin: &str) -> ThreadMetadata {
        let meta = ThreadMetadata {
            title: None,
            id: new_id("thr"),
            created_at: now(),
            status: ThreadStatus::Active,
            metadata: Default::default(),
        };
        let stored = StoredThread {
            meta: meta.clone(),
            items: Vec::new(),
            feedback: BTreeMap::new(),
        };
        self.change(|d| d.origins.entry(origin.into()).or_default().push(stored));
        meta
    }

    pub fn thread(&self, origin: &str, id: &str) -> Result<StoredThread, StoreError> {
        self.read(|d| find(d, origin, id).cloned())
    }

    fn with_thread<R>(
        &self,
        origin: &str,
        id: &str,
        f: impl FnOnce(&mut StoredThread) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.change(|d| {
            let thread = d
                .origins
                .get_mut(origin)
                .and_then(|threads| threads.iter_mut().find(|t| t.meta.id == id))
                .ok_or_else(|| StoreError::NoThread(id.into()))?;
            f(thread)
        })
    }

    pub fn add_item(
        &self,
        origin: &str,
        thread_id: &str,
        item: ThreadItem,
    ) -> Result<(), StoreError> {
        self.with_thread(origin, thread_id, |t| {
            t.items.push(item);
            Ok(())
        })
    }

    /// Removes every item after the user message `item_id` (a retry) and returns the
    /// thread as it is now.
    pub fn truncate_after(
        &self,
        origin: &str,
        thread_id: &str,
        item_id: &str,
    ) -> Result<StoredThread, StoreError> {
        self.with_thread(origin, thread_id, |t| {
            let at = t
                .items
                .iter()
                .position(|i| i.id() == item_id && matches!(i, ThreadItem::UserMessage(_)))
                .ok_or_else(|| StoreError::NoUserMessage(item_id.into()))?;
            t.items.truncate(at + 1);
            Ok(t.clone())
        })
    }

    pub fn set_title(
        &self,
        origin: &str,
        thread_id: &str,
        title: &str,
    ) -> Result<ThreadMetadata, StoreError> {
        self.with_thread(origin, thread_id, |t| {
            t.meta.title = Some(title.to_string());
            Ok(t.meta.clone())
        })
    }

    pub fn set_feedback(
        &self,
        origin: &str,
        thread_id: &str,
        item_ids: &[String],
        kind: FeedbackKind,
    ) -> Result<(), StoreError> {
        self.with_thread(origin, thread_id, |t| {
            for id in item_ids {
                t.feedback.insert(id.clone(), kind);
            }
            Ok(())
        })
    }

    /// Deleting a thread that is already gone succeeds, as the SDK's stores do.
    pub fn delete_thread(&self, origin: &str, thread_id: &str) {
        self.change(|d| {
            if let Some(threads) = d.origins.get_mut(origin) {
                threads.retain(|t| t.meta.id != thread_id);
            }
        })
    }

    pub fn list_threads(&self, origin: &str, params: &ListParams) -> Page<ThreadMetadata> {
        self.read(|d| {
            let threads = d.origins.get(origin).map(Vec::as_slice).unwrap_or(&[]);
            page(
                threads,
                params.order,
                params.after.as_deref(),
                params.limit,
                |t| &t.meta.id,
                |t| t.meta.clone(),
            )
        })
    }

    pub fn list_items(
        &self,
        origin: &str,
        params: &ItemsListParams,
    ) -> Result<Page<ThreadItem>, StoreError> {
        self.read(|d| {
            let thread = find(d, origin, &params.thread_id)?;
            Ok(page(
                &thread.items,
                params.order,
                params.after.as_deref(),
                params.limit,
                |i| i.id(),
                Clone::clone,
            ))
        })
    }

    pub fn add_upload(&self, origin: &str, attachment: ImageAttachment) {
        self.change(|d| d.uploads.entry(origin.into()).or_default().push(attachment));
    }

    /// Takes an uploaded image into a message of `thread_id`.
    pub fn take_upload(
        &self,
        origin: &str,
        id: &str,
        thread_id: &str,
    ) -> Result<ImageAttachment, StoreError> {
        self.change(|d| {
            let uploads = d.uploads.get_mut(origin);
            let at = uploads
                .as_ref()
                .and_then(|u| u.iter().position(|a| a.id == id))
                .ok_or_else(|| StoreError::NoAttachment(id.into()))?;
            let mut attachment = uploads.expect("found above").remove(at);
            attachment.thread_id = Some(thread_id.into());
            Ok(attachment)
        })
    }

    pub fn delete_upload(&self, origin: &str, id: &str) {
        self.change(|d| {
            if let Some(uploads) = d.uploads.get_mut(origin) {
                uploads.retain(|a| a.id != id);
            }
        })
    }
}

fn find<'a>(d: &'a Data, origin: &str, id: &str) -> Result<&'a StoredThread, StoreError> {
    d.origins
        .get(origin)
        .and_then(|threads| threads.iter().find(|t| t.meta.id == id))
        .ok_or_else(|| StoreError::NoThread(id.into()))
}

/// The page after the record `after` (exclusive) in `order`; `after` of the answer is
/// the cursor for the next page when there is one.
fn page<T, U>(
    records: &[T],
    order: Order,
    after: Option<&str>,
    limit: Option<usize>,
    id: impl Fn(&T) -> &str,
    view: impl Fn(&T) -> U,
) -> Page<U> {
    const DEFAULT_PAGE_SIZE: usize = 20;
    let limit = limit.filter(|&l| l > 0).unwrap_or(DEFAULT_PAGE_SIZE);
    let ordered: Vec<&T> = match order {
        Order::Asc => records.iter().collect(),
        Order::Desc => records.iter().rev().collect(),
    };
    let start = after
        .and_then(|a| ordered.iter().position(|r| id(r) == a))
        .map_or(0, |at| at + 1);
    let chosen: Vec<&T> = ordered.iter().skip(start).take(limit).copied().collect();
    let has_more = start + chosen.len() < ordered.len();
    Page {
        after: has_more
            .then(|| chosen.last().map(|r| id(r).to_string()))
            .flatten(),
        data: chosen.into_iter().map(view).collect(),
        has_more,
    }
}

/// Drops threads older than the age bound, then the oldest beyond the count bound.
fn prune(data: &mut Data, bounds: Bounds) {
    let oldest = OffsetDateTime::now_utc() - bounds.max_age;
    for threads in data.origins.values_mut() {
        threads.retain(|t| created(&t.meta.created_at).is_none_or(|at| at >= oldest));
        let over = threads.len().saturating_sub(bounds.max_threads);
        threads.drain(..over);
    }
    data.origins.retain(|_, threads| !threads.is_empty());
    for uploads in data.uploads.values_mut() {
        let over = uploads.len().saturating_sub(MAX_PENDING_UPLOADS);
        uploads.drain(..over);
    }
    data.uploads.retain(|_, uploads| !uploads.is_empty());
}

/// Uploaded images waiting for their message, per origin.
const MAX_PENDING_UPLOADS: usize = 20;

fn created(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

/// RFC 3339 in UTC, as pydantic reads datetimes.
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now formats")
}

/// `thr_…`, `msg_…`, `atc_…`: the SDK's prefixes.
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::super::types::{AssistantMessageItem, OutputText};
    use super::*;

    const BOUNDS: Bounds = Bounds {
        max_threads: 3,
        max_age: Duration::from_secs(86_400),
    };

    fn answer(thread: &str, text: &str) -> ThreadItem {
        ThreadItem::AssistantMessage(AssistantMessageItem {
            id: new_id("msg"),
            thread_id: thread.into(),
            created_at: now(),
            content: vec![OutputText {
                annotations: vec![],
                text: text.into(),
            }],
        })
    }

    #[test]
    fn origins_do_not_see_each_other() {
        let store = Store::in_memory(BOUNDS);
        let t = store.create_thread("https://a.example");
        assert!(store.thread("https://a.example", &t.id).is_ok());
        assert_eq!(
            store.thread("https://b.example", &t.id).unwrap_err(),
            StoreError::NoThread(t.id.clone())
        );
        assert!(store
            .list_threads("https://b.example", &ListParams::default())
            .data
            .is_empty());
    }

    #[test]
    fn pages_follow_order_and_cursor() {
        let store = Store::in_memory(BOUNDS);
        let t = store.create_thread("o");
        for n in 0..5 {
            store
                .add_item("o", &t.id, answer(&t.id, &n.to_string()))
                .unwrap();
        }
        let text = |page: &Page<ThreadItem>| -> Vec<String> {
            page.data
                .iter()
                .map(|i| match i {
                    ThreadItem::AssistantMessage(m) => m.content[0].text.clone(),
                    _ => unreachable!(),
                })
                .collect()
        };
        let params = |order, after: Option<String>| ItemsListParams {
            thread_id: t.id.clone(),
            limit: Some(2),
            order,
            after,
        };
        let first = store.list_items("o", &params(Order::Asc, None)).unwrap();
        assert_eq!(text(&first), ["0", "1"]);
        assert!(first.has_more);
        let second = store
            .list_items("o", &params(Order::Asc, first.after.clone()))
            .unwrap();
        assert_eq!(text(&second), ["2", "3"]);
        let last = store
            .list_items("o", &params(Order::Asc, second.after.clone()))
            .unwrap();
        assert_eq!(text(&last), ["4"]);
        assert!(!last.has_more && last.after.is_none());
        let newest = store.list_items("o", &params(Order::Desc, None)).unwrap();
        assert_eq!(text(&newest), ["4", "3"]);
    }

    #[test]
    fn the_oldest_threads_go_beyond_the_bound() {
        let store = Store::in_memory(BOUNDS);
        let ids: Vec<_> = (0..5).map(|_| store.create_thread("o").id).collect();
        let kept: Vec<_> = store
            .list_threads("o", &ListParams::default())
            .data
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(kept, [ids[4].clone(), ids[3].clone(), ids[2].clone()]);
    }

    #[test]
    fn threads_survive_a_reopen_and_a_corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = Store::open(dir.path(), BOUNDS);
            let t = store.create_thread("o");
            store.add_item("o", &t.id, answer(&t.id, "kept")).unwrap();
            t.id
        };
        let store = Store::open(dir.path(), BOUNDS);
        assert_eq!(store.thread("o", &id).unwrap().items.len(), 1);

        std::fs::write(dir.path().join(FILE_NAME), b"{ not json").unwrap();
        let store = Store::open(dir.path(), BOUNDS);
        assert!(store.thread("o", &id).is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("threads.corrupt-")),
            "{names:?}"
        );
        // The store works on, and saves again.
        store.create_thread("o");
        assert!(dir.path().join(FILE_NAME).exists());
    }
}
