//! Conversations, uploads and ChatKit threads for every replica: in team mode Redis holds
//! them and this process's [`Store`] is only the working copy of the request at hand.
//!
//! [`Threads::run`] reads what an operation needs from Redis into the store (the one
//! thread it is about, or all the origin's threads for a listing, and the pending uploads
//! when it takes or adds one: one pipelined round trip), runs the operation on the store,
//! and writes back what it changed, added or dropped there (one atomic pipeline, only
//! when something changed). Redis keeps one hash per origin and kind,
//! `<prefix>:threads:<origin digest>` and `<prefix>:uploads:<origin digest>`, a field per
//! id holding its JSON, and lets them expire after the store's age bound. Within a
//! replica the operations on one origin take turns, so reading Redis never overwrites a
//! change not yet written back; across replicas the last write of a thread wins.
//!
//! Redis unreachable: the operation is refused with a 503 saying since when, rather than
//! run on a copy that may be stale: history is never forked or lost. Redis restarted
//! empty: the conversations are gone, and asking for one is the usual "does not exist".
//! Without `--redis`, [`Threads::run`] is the store's own call, as before.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use base64::Engine as _;
use redis::{FromRedisValue, RedisError};

use super::Redis;
use crate::chatkit::store::{OriginJson, Store};
use crate::error::GatewayError;
use crate::gateway::AppState;

/// The threads of a request: the store, and Redis behind it in team mode.
#[derive(Clone)]
pub struct Threads {
    store: Arc<Store>,
    redis: Option<Arc<Redis>>,
    max_age: Duration,
}

impl Threads {
    pub fn of(state: &AppState) -> Threads {
        Threads {
            store: crate::chatkit::store_of(state),
            redis: state.redis.clone(),
            max_age: state.config.chatkit.bounds.max_age,
        }
    }

    /// Runs `op` on `origin`'s threads as every replica sees them (`which` of them it
    /// needs, and the uploads if `uploads`: an origin's pending images can be megabytes),
    /// and keeps what it changed there for all of them. Fails only in team mode with
    /// Redis unreachable (503).
    pub async fn run<R>(
        &self,
        origin: &str,
        which: Which<'_>,
        uploads: bool,
        op: impl FnOnce(&Store) -> R,
    ) -> Result<R, GatewayError> {
        let Some(redis) = &self.redis else {
            return Ok(op(&self.store));
        };
        let turn = origin_turn(origin);
        let _turn = turn.lock().await;
        let keys = Keys::of(redis, origin);
        let before = redis.read_origin(&keys, which, uploads).await?;
        let store = &self.store;
        let mut known = HashSet::new();
        match which {
            Which::All => store.load_threads(origin, &before.threads, None),
            Which::One(id) => store.load_threads(origin, &before.threads, Some(id)),
            Which::New => known = store.thread_ids(origin),
        }
        if let Some(uploads) = &before.uploads {
            store.load_uploads(origin, uploads);
        }
        let changes = store.changes();
        let result = op(store);
        if store.changes() == changes {
            return Ok(result);
        }
        let after = store.origin_json(origin, |id| which.covers(id, &known), uploads);
        redis
            .write_origin(&keys, &before, &after, self.max_age)
            .await?;
        Ok(result)
    }

    /// [`Threads::run`] on thread `id` for code that cannot wait (a stream being dropped):
    /// at once without Redis, else on a task of its own; a failure is logged.
    pub fn run_later(&self, origin: &str, id: String, op: impl FnOnce(&Store) + Send + 'static) {
        if self.redis.is_none() {
            op(&self.store);
            return;
        }
        let (threads, origin) = (self.clone(), origin.to_string());
        tokio::spawn(async move {
            if let Err(e) = threads.run(&origin, Which::One(&id), false, op).await {
                tracing::warn!("thread {id} of {origin} could not be saved: {e}");
            }
        });
    }
}

/// Which of an origin's threads an operation reads and writes back.
#[derive(Clone, Copy, Debug)]
pub enum Which<'a> {
    /// All of them: a listing (which also drops those beyond the store's bounds).
    All,
    /// This one only.
    One(&'a str),
    /// None of those that exist: only the threads the operation creates are written.
    New,
}

impl Which<'_> {
    /// Whether thread `id` is written back; `known` the threads there were before, for
    /// [`Which::New`].
    fn covers(&self, id: &str, known: &HashSet<String>) -> bool {
        match self {
            Which::All => true,
            Which::One(one) => *one == id,
            Which::New => !known.contains(id),
        }
    }
}

/// One lock per origin in this process while someone uses it: its operations take turns.
fn origin_turn(origin: &str) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: LazyLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let mut turns = TURNS.lock().expect("origin turns lock");
    if let Some(turn) = turns.get(origin).and_then(Weak::upgrade) {
        return turn;
    }
    turns.retain(|_, turn| turn.strong_count() > 0);
    let turn = Arc::new(tokio::sync::Mutex::new(()));
    turns.insert(origin.to_string(), Arc::downgrade(&turn));
    turn
}

/// An origin's two hashes, named by a digest of the origin (any header text, bounded).
struct Keys {
    threads: String,
    uploads: String,
}

impl Keys {
    fn of(redis: &Redis, origin: &str) -> Keys {
        let digest = ring::digest::digest(&ring::digest::SHA256, origin.as_bytes());
        let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..18]);
        Keys {
            threads: redis.key("threads", &name),
            uploads: redis.key("uploads", &name),
        }
    }
}

impl Redis {
    /// `which` of the origin's threads, and its uploads if asked, as Redis has them
    /// (none when it has none), in one round trip.
    async fn read_origin(
        &self,
        keys: &Keys,
        which: Which<'_>,
        uploads: bool,
    ) -> Result<OriginJson, GatewayError> {
        let mut connection = self.connection().ok_or_else(|| self.unreachable())?;
        let mut pipe = redis::pipe();
        match which {
            Which::All => pipe.cmd("HGETALL").arg(&keys.threads),
            Which::One(id) => pipe.cmd("HGET").arg(&keys.threads).arg(id),
            // Something to answer, so the replies keep their places.
            Which::New => pipe.cmd("PING"),
        };
        if uploads {
            pipe.cmd("HGETALL").arg(&keys.uploads);
        }
        let read = pipe.query_async::<Vec<redis::Value>>(&mut connection).await;
        let mut read = read.map_err(|e| self.lost(&e))?.into_iter();
        let first = read.next().unwrap_or(redis::Value::Nil);
        let threads = match which {
            Which::All => FromRedisValue::from_owned_redis_value(first),
            Which::One(id) => Option::<String>::from_owned_redis_value(first).map(|json| {
                json.map(|json| (id.to_string(), json))
                    .into_iter()
                    .collect()
            }),
            Which::New => Ok(HashMap::new()),
        };
        let uploads = read.next().map(FromRedisValue::from_owned_redis_value);
        let corrupt = |e| self.lost(&e);
        Ok(OriginJson {
            threads: threads.map_err(corrupt)?,
            uploads: uploads.transpose().map_err(corrupt)?,
        })
    }

    /// Writes what differs between `before` (as read) and `after`, atomically.
    async fn write_origin(
        &self,
        keys: &Keys,
        before: &OriginJson,
        after: &OriginJson,
        max_age: Duration,
    ) -> Result<(), GatewayError> {
        if before == after {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let ttl = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let uploads = before.uploads.as_ref().zip(after.uploads.as_ref());
        let hashes = [Some((&keys.threads, &before.threads, &after.threads))]
            .into_iter()
            .chain([uploads.map(|(b, a)| (&keys.uploads, b, a))])
            .flatten();
        for (key, before, after) in hashes {
            let changed: Vec<(&String, &String)> = after
                .iter()
                .filter(|(id, json)| before.get(*id) != Some(json))
                .collect();
            let gone: Vec<&String> = before
                .keys()
                .filter(|id| !after.contains_key(*id))
                .collect();
            if !changed.is_empty() {
                pipe.cmd("HSET").arg(key).arg(changed).ignore();
                pipe.cmd("PEXPIRE").arg(key).arg(ttl).ignore();
            }
            if !gone.is_empty() {
                pipe.cmd("HDEL").arg(key).arg(gone).ignore();
            }
        }
        let mut connection = self.connection().ok_or_else(|| self.unreachable())?;
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(|e| self.lost(&e))
    }

    /// A command failed: Redis is down until the probe hears from it.
    fn lost(&self, error: &RedisError) -> GatewayError {
        self.failed(error);
        self.unreachable()
    }

    fn unreachable(&self) -> GatewayError {
        GatewayError::Unavailable(format!(
            "conversations are kept in Redis, which is {}; try again shortly",
            self.health()
        ))
    }
}
