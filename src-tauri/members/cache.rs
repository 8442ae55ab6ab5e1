//! The gateway's copy of the member set: what a request's token is checked against.
//!
//! The set is read from the store at most once per time-to-live (`keychain_cache_ms`,
//! 5 s by default) and only when a request needs it, one read at a time; a revoked token
//! is refused within that time plus one read. Failures are kept as long, so a locked
//! keychain costs one read per interval, not one per request.
//!
//! A token is checked by hashing it and looking the hash up in a `HashMap`. The lookup's
//! timing depends on the hash only, and the hash of a guess tells nothing about any
//! stored token: learning which stored hash a guess's hash is near would still need a
//! SHA-256 preimage to use. So no constant-time comparison is needed here, unlike for
//! the plain access token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::{unix_now, MemberError, MemberStore, TokenHash, TOKEN_PREFIX};

/// A member's last-used time is written at most once per this many seconds.
pub const TOUCH_EVERY: u64 = 60;

/// The member set as the gateway checks it. A cheap-clone handle.
#[derive(Clone)]
pub struct Members {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn MemberStore>,
    ttl: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// One read of the store at a time.
    loading: tokio::sync::Mutex<()>,
    /// When the handle was made: times below count from it.
    epoch: Instant,
    /// A failed last-used write is logged once, not once a minute.
    touch_failed: AtomicBool,
}

struct Snapshot {
    at: Instant,
    members: Result<HashMap<TokenHash, Seen>, MemberError>,
}

struct Seen {
    name: Arc<str>,
    /// Milliseconds after `epoch` when this member's last-used time may be written again.
    next_touch: AtomicU64,
}

impl Members {
    /// `ttl`: how long a read of the store is trusted (`keychain_cache_ms`).
    pub fn new(store: Arc<dyn MemberStore>, ttl: Duration) -> Self {
        Members {
            inner: Arc::new(Inner {
                store,
                ttl,
                current: RwLock::new(None),
                loading: tokio::sync::Mutex::new(()),
                epoch: Instant::now(),
                touch_failed: AtomicBool::new(false),
            }),
        }
    }

    /// The store behind this view, for the command line and the window.
    pub fn store(&self) -> &Arc<dyn MemberStore> {
        &self.inner.store
    }

    /// The member `token` belongs to, if it is a current member's. Marks the member used.
    pub async fn verify(&self, token: &str) -> Result<Option<Arc<str>>, MemberError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let snapshot = self.snapshot().await;
        let members = snapshot.members.as_ref().map_err(Clone::clone)?;
        let hash = TokenHash::of(token);
        let Some(seen) = members.get(&hash) else {
            return Ok(None);
        };
        self.touch(hash, seen);
        Ok(Some(seen.name.clone()))
    }

    /// Whether there is any member (so the guard can say "no token is set anywhere").
    pub async fn any(&self) -> Result<bool, MemberError> {
        let snapshot = self.snapshot().await;
        let members = snapshot.members.as_ref().map_err(Clone::clone)?;
        Ok(!members.is_empty())
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let current = self.inner.current.read().expect("member set lock");
        current
            .as_ref()
            .filter(|s| s.at.elapsed() < self.inner.ttl)
            .cloned()
    }

    async fn snapshot(&self) -> Arc<Snapshot> {
        if let Some(snapshot) = self.fresh() {
            return snapshot;
        }
        let _loading = self.inner.loading.lock().await;
        // Someone else may have read it while this request waited.
        if let Some(snapshot) = self.fresh() {
            return snapshot;
        }
        let listed = self.inner.store.list().await;
        let previous = self.inner.current.read().expect("member set lock").clone();
        let members = listed.map(|list| {
            list.into_iter()
                .map(|m| {
                    // A member's throttle carries over, so a reload does not write again.
                    let next_touch = previous
                        .as_ref()
                        .and_then(|p| p.members.as_ref().ok()?.get(&m.hash))
                        .map_or(0, |seen| seen.next_touch.load(Ordering::Relaxed));
                    let seen = Seen {
                        name: m.name.into(),
                        next_touch: AtomicU64::new(next_touch),
                    };
                    (m.hash, seen)
                })
                .collect()
        });
        if let Err(e) = &members {
            tracing::warn!("cannot read the members: {e}");
        }
        let snapshot = Arc::new(Snapshot {
            at: Instant::now(),
            members,
        });
        *self.inner.current.write().expect("member set lock") = Some(snapshot.clone());
        snapshot
    }

    /// Writes `hash`'s last-used time in the background, unless it was written less
    /// than [`TOUCH_EVERY`] seconds ago: a keychain write per request would cost more
    /// than the request.
    fn touch(&self, hash: TokenHash, seen: &Seen) {
        let now = self.inner.epoch.elapsed().as_millis() as u64;
        let next = seen.next_touch.load(Ordering::Relaxed);
        let later = now + TOUCH_EVERY * 1000;
        if now < next
            || seen
                .next_touch
                .compare_exchange(next, later, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            match inner.store.touch(vec![(hash, unix_now())]).await {
                Ok(()) => inner.touch_failed.store(false, Ordering::Relaxed),
                Err(e) => {
                    if !inner.touch_failed.swap(true, Ordering::Relaxed) {
                        tracing::warn!("cannot note when members last used their tokens: {e}");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::MemoryMembers;
    use super::super::{new_token, Member};
    use super::*;
    use secrecy::ExposeSecret;

    const TTL: Duration = Duration::from_secs(5);

    async fn with_member(store: &MemoryMembers, name: &str) -> String {
        let (token, hash) = new_token().unwrap();
        let member = Member {
            name: name.into(),
            hash,
            created: unix_now(),
            last_used: None,
        };
        store.add(member).await.unwrap();
        token.expose_secret().to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_names_its_member_and_a_revoked_one_is_refused_after_the_interval() {
        let store = Arc::new(MemoryMembers::default());
        let ana = with_member(&store, "ana").await;
        let members = Members::new(store.clone(), TTL);
        assert_eq!(members.verify(&ana).await.unwrap().as_deref(), Some("ana"));
        assert_eq!(members.verify("pgm_guess").await.unwrap(), None);
        assert_eq!(members.verify("not-a-member-token").await.unwrap(), None);

        assert!(store.revoke("ana").await.unwrap());
        tokio::time::advance(TTL).await;
        assert_eq!(
            members.verify(&ana).await.unwrap(),
            None,
            "refused once the interval has passed"
        );
        assert!(!members.any().await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_store_is_read_once_per_interval_however_many_requests() {
        let store = Arc::new(MemoryMembers::default());
        let ana = with_member(&store, "ana").await;
        let members = Members::new(store.clone(), TTL);
        for _ in 0..100 {
            members.verify(&ana).await.unwrap();
            members.verify("pgm_wrong").await.unwrap();
        }
        assert_eq!(store.lists(), 1);
        tokio::time::advance(TTL).await;
        members.verify(&ana).await.unwrap();
        assert_eq!(store.lists(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn last_used_is_written_at_most_once_a_minute_per_member() {
        let store = Arc::new(MemoryMembers::default());
        let ana = with_member(&store, "ana").await;
        let bo = with_member(&store, "bo").await;
        let members = Members::new(store.clone(), TTL);
        for _ in 0..50 {
            members.verify(&ana).await.unwrap();
            members.verify(&bo).await.unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(store.touches(), 2, "one write per member");
        let listed = store.list().await.unwrap();
        assert!(listed.iter().all(|m| m.last_used.is_some()), "{listed:?}");

        tokio::time::advance(Duration::from_secs(TOUCH_EVERY)).await;
        members.verify(&ana).await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(
            store.touches(),
            3,
            "written again a minute later, reload or not"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_fails_fails_the_check_and_is_asked_again_after_the_interval() {
        let store = Arc::new(MemoryMembers::default());
        let ana = with_member(&store, "ana").await;
        store.fail(true);
        let members = Members::new(store.clone(), TTL);
        let e = members.verify(&ana).await.unwrap_err();
        assert!(e.to_string().contains("locked"), "{e}");
        members.verify(&ana).await.unwrap_err();
        assert_eq!(store.lists(), 1, "a failure is kept for the interval too");
        store.fail(false);
        tokio::time::advance(TTL).await;
        assert_eq!(members.verify(&ana).await.unwrap().as_deref(), Some("ana"));
    }
}
