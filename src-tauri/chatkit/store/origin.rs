//! One origin's threads and uploads as JSON by id, out of the store and back in: what
//! team mode keeps in Redis (`team/threads.rs`), with this store as the working copy.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

use super::{created, Store, StoredThread};
use crate::chatkit::types::ImageAttachment;

/// An origin's threads and, when asked for, its uploads, each as its JSON, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginJson {
    pub threads: HashMap<String, String>,
    /// `None`: not asked for (they are large); this store's stay as they are.
    pub uploads: Option<HashMap<String, String>>,
}

impl Store {
    /// The origin's threads that `keep` names, and its uploads if `uploads`, as they are
    /// here now.
    pub fn origin_json(
        &self,
        origin: &str,
        keep: impl Fn(&str) -> bool,
        uploads: bool,
    ) -> OriginJson {
        self.read(|d| OriginJson {
            threads: d
                .origins
                .get(origin)
                .into_iter()
                .flatten()
                .filter(|t| keep(&t.meta.id))
                .map(|t| (t.meta.id.clone(), to_json(t)))
                .collect(),
            uploads: uploads.then(|| {
                d.uploads
                    .get(origin)
                    .into_iter()
                    .flatten()
                    .map(|a| (a.id.clone(), to_json(a)))
                    .collect()
            }),
        })
    }

    /// How many changes this store has seen: unchanged across an operation, it changed
    /// nothing.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ids of the origin's threads here.
    pub fn thread_ids(&self, origin: &str) -> HashSet<String> {
        self.read(|d| {
            let threads = d.origins.get(origin).into_iter().flatten();
            threads.map(|t| t.meta.id.clone()).collect()
        })
    }

    /// Makes the origin's threads those of `json` (only the thread `only`, if given: the
    /// others stay), oldest first: by creation time, then in the order this store had
    /// them. A thread that cannot be read is left out, logged.
    pub fn load_threads(&self, origin: &str, json: &HashMap<String, String>, only: Option<&str>) {
        self.change(|d| {
            let mut threads: Vec<StoredThread> = parsed(json, "thread");
            let here = d.origins.remove(origin).unwrap_or_default();
            let order: HashMap<String, usize> = here
                .iter()
                .enumerate()
                .map(|(at, t)| (t.meta.id.clone(), at))
                .collect();
            if let Some(only) = only {
                threads.retain(|t| t.meta.id == only);
                threads.extend(here.into_iter().filter(|t| t.meta.id != only));
            }
            threads.sort_by_cached_key(|t| {
                (
                    created(&t.meta.created_at),
                    order.get(&t.meta.id).copied().unwrap_or(usize::MAX),
                    t.meta.id.clone(),
                )
            });
            d.origins.insert(origin.to_string(), threads);
        });
    }

    /// Makes the origin's uploads those of `json`, in the order this store had them, new
    /// ones after.
    pub fn load_uploads(&self, origin: &str, json: &HashMap<String, String>) {
        self.change(|d| {
            let order: HashMap<String, usize> = d
                .uploads
                .get(origin)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(at, a)| (a.id.clone(), at))
                .collect();
            let mut uploads: Vec<ImageAttachment> = parsed(json, "upload");
            uploads.sort_by_cached_key(|a| {
                (
                    order.get(&a.id).copied().unwrap_or(usize::MAX),
                    a.id.clone(),
                )
            });
            d.uploads.insert(origin.to_string(), uploads);
        });
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("threads serialize")
}

fn parsed<T: DeserializeOwned>(json: &HashMap<String, String>, what: &str) -> Vec<T> {
    json.iter()
        .filter_map(|(id, text)| match serde_json::from_str(text) {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::warn!("the shared {what} `{id}` could not be read ({e}); left out");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Bounds;
    use super::*;

    const BOUNDS: Bounds = Bounds {
        max_threads: 5,
        max_age: Duration::from_secs(86_400),
    };

    fn upload(id: &str) -> ImageAttachment {
        ImageAttachment {
            id: id.into(),
            name: "a.png".into(),
            mime_type: "image/png".into(),
            preview_url: "data:image/png;base64,AA==".into(),
            thread_id: None,
        }
    }

    fn broken_empty() -> OriginJson {
        OriginJson {
            threads: HashMap::new(),
            uploads: Some(HashMap::new()),
        }
    }

    fn all(_: &str) -> bool {
        true
    }

    fn load(store: &Store, json: &OriginJson) {
        store.load_threads("o", &json.threads, None);
        store.load_uploads("o", json.uploads.as_ref().unwrap());
    }

    #[test]
    fn an_origin_goes_out_and_comes_back_in_order() {
        let here = Store::in_memory(BOUNDS);
        let ids: Vec<String> = (0..3).map(|_| here.create_thread("o").id).collect();
        here.create_thread("p");
        here.add_upload("o", upload("atc_1"));
        let json = here.origin_json("o", all, true);
        assert_eq!(json.threads.len(), 3);

        let there = Store::in_memory(BOUNDS);
        load(&there, &json);
        assert_eq!(there.origin_json("o", all, true), json);
        let listed: Vec<String> = there
            .list_threads("o", &Default::default())
            .data
            .into_iter()
            .rev()
            .map(|t| t.id)
            .collect();
        assert_eq!(listed, ids);
        assert!(there.origin_json("p", all, true).threads.is_empty());

        // One thread alone: the others stay, and one gone elsewhere goes here too.
        there.load_threads("o", &HashMap::new(), Some(&ids[1]));
        assert_eq!(there.thread_ids("o").len(), 2);
        assert!(there.thread("o", &ids[1]).is_err());
        // Emptied elsewhere (Redis restarted): gone here too, and no crash on bad JSON.
        let mut broken = OriginJson {
            uploads: Some(HashMap::new()),
            ..OriginJson::default()
        };
        broken.threads.insert("thr_x".into(), "{ not json".into());
        load(&there, &broken);
        assert!(there.thread("o", &ids[0]).is_err());
        assert_eq!(there.origin_json("o", all, true), broken_empty());
    }
}
