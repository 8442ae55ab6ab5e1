//! What the wiring spec's chat API (`/api/chat`, `conversation_id`, `/api/upload`) needs
//! of the store beside ChatKit's requests: a conversation is a thread, so both kinds of
//! client share one store with the same bounds, per origin.
//!
//! A turn is stored whole when it ends ([`Store::commit_turn`]): the user's message and
//! the answer together, so a failed answer leaves no dangling question in the history
//! and the images it named stay uploaded for the retry.

use serde_json::Value;

use super::{Store, StoreError, StoredThread};
use crate::chatkit::types::{ImageAttachment, ThreadItem};

/// The thread metadata key under which a conversation keeps its system prompt.
const SYSTEM_KEY: &str = "system";

impl Store {
    /// The conversation's thread, or a new one when `id` is `None`.
    pub fn conversation(&self, origin: &str, id: Option<&str>) -> Result<StoredThread, StoreError> {
        match id {
            Some(id) => self.thread(origin, id),
            None => {
                let meta = self.create_thread(origin);
                self.thread(origin, &meta.id)
            }
        }
    }

    /// The system prompt the conversation was started with.
    pub fn system_of(thread: &StoredThread) -> Option<String> {
        thread
            .meta
            .metadata
            .get(SYSTEM_KEY)
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// Keeps `system` for the conversation's later turns.
    pub fn set_system(
        &self,
        origin: &str,
        thread_id: &str,
        system: &str,
    ) -> Result<(), StoreError> {
        self.with_thread(origin, thread_id, |t| {
            t.meta
                .metadata
                .insert(SYSTEM_KEY.into(), Value::String(system.into()));
            Ok(())
        })
    }

    /// The images a message will carry, left in place until the turn is committed: the
    /// uploads named by `ids`, then those uploaded for `thread_id` and not sent yet.
    pub fn pending_uploads(
        &self,
        origin: &str,
        ids: &[String],
        thread_id: &str,
    ) -> Result<Vec<ImageAttachment>, StoreError> {
        self.read(|d| {
            let pending = d.uploads.get(origin).map(Vec::as_slice).unwrap_or(&[]);
            let mut chosen = Vec::new();
            for id in ids {
                let upload = pending
                    .iter()
                    .find(|a| &a.id == id)
                    .ok_or_else(|| StoreError::NoAttachment(id.clone()))?;
                chosen.push(upload.clone());
            }
            for upload in pending {
                let for_thread = upload.thread_id.as_deref() == Some(thread_id);
                if for_thread && !chosen.iter().any(|c| c.id == upload.id) {
                    chosen.push(upload.clone());
                }
            }
            Ok(chosen)
        })
    }

    /// Stores a finished turn: the uploads it sent leave the pending list, the message
    /// and the answer join the thread. A thread deleted meanwhile stays deleted.
    pub fn commit_turn(
        &self,
        origin: &str,
        thread_id: &str,
        items: [ThreadItem; 2],
        sent_uploads: &[String],
    ) -> Result<(), StoreError> {
        self.change(|d| {
            if let Some(uploads) = d.uploads.get_mut(origin) {
                uploads.retain(|a| !sent_uploads.contains(&a.id));
            }
            let thread = d
                .origins
                .get_mut(origin)
                .and_then(|threads| threads.iter_mut().find(|t| t.meta.id == thread_id))
                .ok_or_else(|| StoreError::NoThread(thread_id.into()))?;
            thread.items.extend(items);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{new_id, now, Bounds};
    use super::*;
    use crate::chatkit::types::{AssistantMessageItem, OutputText, UserContent, UserMessageItem};

    const BOUNDS: Bounds = Bounds {
        max_threads: 5,
        max_age: Duration::from_secs(86_400),
    };

    fn image(id: &str, thread: Option<&str>) -> ImageAttachment {
        ImageAttachment {
            id: id.into(),
            name: "a.png".into(),
            mime_type: "image/png".into(),
            preview_url: "data:image/png;base64,AA==".into(),
            thread_id: thread.map(String::from),
        }
    }

    fn turn(thread: &str) -> [ThreadItem; 2] {
        [
            ThreadItem::UserMessage(UserMessageItem {
                id: new_id("msg"),
                thread_id: thread.into(),
                created_at: now(),
                content: vec![UserContent::InputText { text: "hi".into() }],
                attachments: vec![],
                quoted_text: None,
                inference_options: Default::default(),
            }),
            ThreadItem::AssistantMessage(AssistantMessageItem {
                id: new_id("msg"),
                thread_id: thread.into(),
                created_at: now(),
                content: vec![OutputText {
                    annotations: vec![],
                    text: "hello".into(),
                }],
            }),
        ]
    }

    #[test]
    fn uploads_stay_until_the_turn_is_committed() {
        let store = Store::in_memory(BOUNDS);
        let t = store.conversation("o", None).unwrap();
        store.add_upload("o", image("atc_named", None));
        store.add_upload("o", image("atc_for_thread", Some(&t.meta.id)));
        store.add_upload("o", image("atc_other", Some("thr_else")));
        let chosen = store
            .pending_uploads("o", &["atc_named".into()], &t.meta.id)
            .unwrap();
        let ids: Vec<_> = chosen.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["atc_named", "atc_for_thread"]);
        // Nothing taken yet: a failed answer can be retried with the same images.
        assert_eq!(
            store
                .pending_uploads("o", &["atc_named".into()], &t.meta.id)
                .unwrap()
                .len(),
            2
        );
        let sent: Vec<String> = chosen.into_iter().map(|a| a.id).collect();
        store
            .commit_turn("o", &t.meta.id, turn(&t.meta.id), &sent)
            .unwrap();
        assert_eq!(store.thread("o", &t.meta.id).unwrap().items.len(), 2);
        assert!(store
            .pending_uploads("o", &[], &t.meta.id)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .pending_uploads("o", &["atc_named".into()], &t.meta.id)
                .unwrap_err(),
            StoreError::NoAttachment("atc_named".into())
        );
        assert_eq!(
            store
                .pending_uploads("o", &["atc_other".into()], "x")
                .unwrap()
                .len(),
            1
        );
        // Another origin sees none of them.
        assert!(store
            .pending_uploads("p", &["atc_other".into()], "x")
            .is_err());
    }

    #[test]
    fn a_conversation_keeps_its_system_prompt_and_is_per_origin() {
        let store = Store::in_memory(BOUNDS);
        let t = store.conversation("o", None).unwrap();
        assert_eq!(Store::system_of(&t), None);
        store.set_system("o", &t.meta.id, "be brief").unwrap();
        let again = store.conversation("o", Some(&t.meta.id)).unwrap();
        assert_eq!(Store::system_of(&again).as_deref(), Some("be brief"));
        assert!(store.conversation("p", Some(&t.meta.id)).is_err());
        store.delete_thread("o", &t.meta.id);
        assert!(store
            .commit_turn("o", &t.meta.id, turn(&t.meta.id), &[])
            .is_err());
    }
}
