//! Identical requests answered once (`cache` in the settings, off by default).
//!
//! An identical request (same origin, provider or route, model, streamed or not, and
//! body: see `key.rs`) within the time to live is answered from memory: a stream as the
//! frames the provider sent, replayed through the client's own encoder at once, so the
//! client sees the same events; a whole answer as the same completion. Only a complete,
//! successful answer is stored. Identical requests in flight share one upstream call
//! (`coalesce.rs`). `dispatch` asks [`Cache::consult`] before anything else, so an answer
//! from memory neither waits in a provider's queue nor spends its budget.
//!
//! # Layout
//! - `control.rs`: what a request's `Cache-Control` asks.
//! - `key.rs`: the normal form of a request, hashed.
//! - `store.rs`: the stored answers, bounded in entries and bytes (moka).
//! - `coalesce.rs`: the calls in flight that identical requests join.
//! - `shared.rs`: team mode's second level, the answers every replica shares in Redis
//!   (calls in flight are joined per replica), in the binary form of `form.rs`.

mod coalesce;
mod control;
mod form;
mod key;
mod shared;
mod store;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::Semaphore;

pub use control::CacheControl;

use crate::chat::{ChatEvent, ChatRequest, Completion, Frame, Usage};
use crate::config::{CacheSection, Config, ProviderKind};
use crate::dispatch::Streaming;
use crate::error::GatewayError;
use crate::providers::FrameStream;
use crate::request_log::RecordHandle;
use coalesce::{Flights, Joined};
use key::Key;
use store::{Answer, Store};

/// The response header that says what the cache did: `hit`, `coalesced` or `miss`.
pub const CACHE_HEADER: &str = "x-protogate-cache";

/// The gateway's cache: a cheap-clone handle, empty while the settings leave it off (then
/// consulting it costs one branch).
#[derive(Clone, Default)]
pub struct Cache(Option<Arc<Shared>>);

struct Shared {
    settings: CacheSection,
    store: Store,
    flights: Arc<Flights>,
    /// Team mode: answers shared with the other replicas.
    redis: Option<Arc<crate::team::Redis>>,
}

impl Cache {
    pub fn new(settings: &CacheSection) -> Self {
        if !settings.any_on() {
            return Cache(None);
        }
        Cache(Some(Arc::new(Shared {
            settings: settings.clone(),
            store: Store::new(settings),
            flights: Arc::default(),
            redis: None,
        })))
    }

    /// Shares answers with every replica through `redis` (at start, before any request).
    pub fn share(&mut self, redis: &Arc<crate::team::Redis>) {
        if let Some(shared) = self.0.as_mut().and_then(Arc::get_mut) {
            shared.redis = Some(redis.clone());
        }
    }

    /// Keeps `previous`'s answers (and calls in flight) across a settings change that
    /// leaves them right: the same cache settings, routes and Redis, each provider calling
    /// the same upstream.
    pub fn carry_on(&mut self, config: &Config, previous: &Cache, previous_config: &Config) {
        fn upstreams(c: &Config) -> Vec<(&str, ProviderKind, Option<&str>)> {
            c.providers
                .iter()
                .map(|p| {
                    (
                        p.id.as_str(),
                        p.kind,
                        p.base_url.as_ref().map(|u| u.as_str()),
                    )
                })
                .collect()
        }
        if config.cache == previous_config.cache
            && config.routes == previous_config.routes
            && config.redis == previous_config.redis
            && upstreams(config) == upstreams(previous_config)
        {
            *self = previous.clone();
        }
    }

    /// What the cache can do for `chat`, on its way to `scope` (a provider id, or the
    /// route's name when the model names a route); `None` when it stays out: off, off for
    /// `scope`, `Cache-Control: no-store`, or sampled hotter than `max_temperature`.
    pub fn consult(
        &self,
        scope: &str,
        chat: &ChatRequest,
        record: &RecordHandle,
        streamed: bool,
    ) -> Option<Consult> {
        let shared = self.0.as_ref()?;
        let control = record.cache_control();
        if control == CacheControl::Bypass || !shared.settings.applies_to(scope) {
            return None;
        }
        if let Some(max) = shared.settings.max_temperature {
            if chat.temperature.unwrap_or(1.0) > max {
                return None;
            }
        }
        let key = key::key(scope, record.origin().as_deref(), streamed, chat);
        Some(Consult {
            shared: shared.clone(),
            key,
            control,
            record: record.clone(),
        })
    }
}

/// A request the cache takes part in.
pub struct Consult {
    shared: Arc<Shared>,
    key: Key,
    control: CacheControl,
    record: RecordHandle,
}

impl Consult {
    /// A streamed answer: from memory, from an identical call in flight, or from the call
    /// `call` makes (the upstream, through the provider's queue), shared with identical
    /// requests that come while it runs. An answer from memory takes none of `streams` (the gateway's
    /// stream slots), and a shared call the one slot its upstream call takes.
    pub async fn stream<F>(
        self,
        streams: &Arc<Semaphore>,
        call: impl FnOnce() -> F,
    ) -> Result<Streaming, GatewayError>
    where
        F: Future<Output = Result<Streaming, GatewayError>> + Send + 'static,
    {
        let Consult {
            shared,
            key,
            control,
            record,
        } = self;
        let no_slot = streams
            .clone()
            .try_acquire_many_owned(0)
            .map_err(|_| GatewayError::Unavailable("the gateway is stopping".into()))?;
        let shared_answer = |frames| Streaming {
            frames,
            permit: no_slot,
        };
        if control == CacheControl::Normal {
            if let Some(Answer::Stream(frames)) = shared.store.get(&key).as_deref() {
                served(&record, Served::Hit);
                return Ok(shared_answer(replay(frames.clone())));
            }
            if shared.redis.is_some() {
                if let Some(Answer::Stream(frames)) = shared.in_redis(&key).await.as_deref() {
                    served(&record, Served::Hit);
                    return Ok(shared_answer(replay(frames.clone())));
                }
            }
            if shared.settings.coalesce {
                let reader = match shared.flights.join(key) {
                    Joined::Follower(reader) => {
                        served(&record, Served::Coalesced);
                        reader
                    }
                    Joined::Leader(reader) => {
                        record.set_cache_missed();
                        let keeper = shared.clone();
                        reader.drive_stream(call(), move |frames| {
                            keeper.keep(key, Answer::Stream(frames))
                        });
                        reader
                    }
                };
                return Ok(shared_answer(reader.stream().await?));
            }
        }
        record.set_cache_missed();
        let answer = Box::pin(call()).await?;
        Ok(Streaming {
            frames: recording(answer.frames, shared, key),
            permit: answer.permit,
        })
    }

    /// A whole answer: from memory, from an identical call in flight, or from `call`.
    pub async fn complete<F>(self, call: impl FnOnce() -> F) -> Result<Completion, GatewayError>
    where
        F: Future<Output = Result<Completion, GatewayError>> + Send + 'static,
    {
        let Consult {
            shared,
            key,
            control,
            record,
        } = self;
        if control == CacheControl::Normal {
            if let Some(Answer::Whole(completion)) = shared.store.get(&key).as_deref() {
                served(&record, Served::Hit);
                return Ok(completion.clone());
            }
            if shared.redis.is_some() {
                if let Some(Answer::Whole(completion)) = shared.in_redis(&key).await.as_deref() {
                    served(&record, Served::Hit);
                    return Ok(completion.clone());
                }
            }
            if shared.settings.coalesce {
                let reader = match shared.flights.join(key) {
                    Joined::Follower(reader) => {
                        served(&record, Served::Coalesced);
                        reader
                    }
                    Joined::Leader(reader) => {
                        record.set_cache_missed();
                        let keeper = shared.clone();
                        reader.drive_whole(call(), move |completion| {
                            keeper.keep(key, Answer::Whole(completion.clone()))
                        });
                        reader
                    }
                };
                return reader.whole().await;
            }
        }
        record.set_cache_missed();
        let completion = Box::pin(call()).await?;
        shared.keep(key, Answer::Whole(completion.clone()));
        Ok(completion)
    }
}

impl Shared {
    /// Keeps a complete answer here and, in team mode, for the other replicas.
    fn keep(&self, key: Key, answer: Answer) {
        match &self.redis {
            None => self.store.put(key, answer),
            Some(redis) => {
                let answer = Arc::new(answer);
                self.store.put_shared(key, answer.clone());
                let CacheSection {
                    ttl_s, max_bytes, ..
                } = self.settings;
                shared::publish(redis, key, answer, ttl_s, max_bytes);
            }
        }
    }

    /// An answer another replica stored for `key`, now kept here too. It lives here for
    /// the whole time to live from now, so at most twice that after the upstream gave it.
    /// Boxed: a Redis call's future is large, and requests without Redis must not carry
    /// its room in theirs.
    async fn in_redis(&self, key: &Key) -> Option<Arc<Answer>> {
        let redis = self.redis.as_deref()?;
        let answer = Arc::new(Box::pin(shared::fetch(redis, key)).await?);
        self.store.put_shared(*key, answer.clone());
        Some(answer)
    }
}

/// How a request was answered without an upstream call of its own.
enum Served {
    Hit,
    Coalesced,
}

/// Marks the record: its own answer cost no tokens (the usage the replayed frames carry
/// was billed to the request that paid for it).
fn served(record: &RecordHandle, how: Served) {
    record.set_usage(Usage::default());
    let (cache, note) = match how {
        Served::Hit => ("hit", "cache hit, 0 tokens"),
        Served::Coalesced => (
            "coalesced",
            "coalesced with an identical request in flight, 0 tokens",
        ),
    };
    record.set_cache(cache);
    record.set_note(note);
}

/// A stored stream, sent again at once (no pacing).
fn replay(frames: Arc<[Frame]>) -> FrameStream {
    Box::pin(futures_util::stream::iter(
        (0..frames.len()).map(move |i| Ok(frames[i].clone())),
    ))
}

/// `frames` as they pass, stored once the end marker has come (a failed or cut stream
/// never is).
fn recording(mut frames: FrameStream, shared: Arc<Shared>, key: Key) -> FrameStream {
    Box::pin(async_stream::stream! {
        let mut kept = Vec::new();
        while let Some(item) = frames.next().await {
            let Ok(frame) = &item else {
                yield item;
                break;
            };
            kept.push(frame.clone());
            let end = frame.events.contains(&ChatEvent::End);
            if end {
                shared.keep(key, Answer::Stream(std::mem::take(&mut kept).into()));
            }
            yield item;
            if end {
                break;
            }
        }
    })
}
