//! Identical requests in flight share one upstream call (the canvas re-render storm:
//! ten identical calls within a second cost one).
//!
//! The call is driven by a task of its own into a shared buffer, as the chat API's
//! resumable streams are (`chat_api/replay.rs`); unlike those, the buffer keeps the whole
//! answer, since every client reads it from its start and the cache stores it. Each
//! client is a [`Reader`]: one that leaves takes nothing from the others, and when the
//! last has left before the end, the task is stopped, which drops the upstream call and
//! cancels it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::key::{Key, KeyHasher};
use crate::chat::{ChatEvent, Completion, Frame};
use crate::dispatch::Streaming;
use crate::error::{GatewayError, ProviderError};
use crate::providers::FrameStream;

/// The calls in flight, by key.
#[derive(Default)]
pub struct Flights {
    calls: Mutex<HashMap<Key, Arc<Flight>, KeyHasher>>,
}

/// One shared upstream call, as far as it has come.
struct Flight {
    progress: Mutex<Progress>,
    changed: Notify,
}

#[derive(Default)]
struct Progress {
    /// `None` until the upstream took the call or refused it.
    opened: Option<Result<Opened, GatewayError>>,
    frames: Vec<Frame>,
    ended: Option<Ended>,
    readers: usize,
    /// Every reader left before the end: the call was stopped.
    abandoned: bool,
    task: Option<AbortHandle>,
}

#[derive(Clone)]
enum Opened {
    Stream,
    Whole(Completion),
}

#[derive(Clone)]
enum Ended {
    /// The upstream's end marker came.
    Complete,
    Failed(ProviderError),
    /// The frames stopped without an end marker (providers report that as an error, so
    /// this is a safeguard).
    Stopped,
}

/// A client of a flight, from the moment it joined.
pub struct Reader {
    flight: Arc<Flight>,
    flights: Arc<Flights>,
    key: Key,
}

/// Who a client is to the call it joined.
pub enum Joined {
    /// The first: it starts the call.
    Leader(Reader),
    /// The call was already under way.
    Follower(Reader),
}

impl Flights {
    /// Joins the call in flight for `key`, or opens one.
    pub fn join(self: &Arc<Self>, key: Key) -> Joined {
        let mut calls = self.calls.lock().expect("flights lock");
        if let Some(flight) = calls.get(&key) {
            if let Some(reader) = self.attach(flight, key) {
                return Joined::Follower(reader);
            }
        }
        let flight = Arc::new(Flight {
            progress: Mutex::default(),
            changed: Notify::new(),
        });
        calls.insert(key, flight.clone());
        Joined::Leader(self.attach(&flight, key).expect("a new flight is open"))
    }

    fn attach(self: &Arc<Self>, flight: &Arc<Flight>, key: Key) -> Option<Reader> {
        let mut p = flight.lock();
        if p.abandoned {
            return None;
        }
        p.readers += 1;
        Some(Reader {
            flight: flight.clone(),
            flights: self.clone(),
            key,
        })
    }

    /// Forgets the flight, if `key` still names this one.
    fn remove(&self, key: &Key, flight: &Arc<Flight>) {
        let mut calls = self.calls.lock().expect("flights lock");
        if calls.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            calls.remove(key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.calls.lock().expect("flights lock").len()
    }
}

impl Flight {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().expect("flight lock")
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.lock());
        self.changed.notify_waiters();
    }
}

impl Reader {
    /// Starts the shared streamed call (the leader does, once). `keep` gets the frames
    /// of a complete answer, before a newcomer can miss both the flight and the store.
    pub fn drive_stream(
        &self,
        call: impl Future<Output = Result<Streaming, GatewayError>> + Send + 'static,
        keep: impl FnOnce(Arc<[Frame]>) + Send + 'static,
    ) {
        // Boxed at once: an upstream call's future is kilobytes, moved on each step below.
        let call = Box::pin(call);
        let flight = self.flight.clone();
        self.drive(async move {
            let answer = match call.await {
                Ok(answer) => answer,
                Err(e) => return flight.update(|p| p.opened = Some(Err(e))),
            };
            flight.update(|p| p.opened = Some(Ok(Opened::Stream)));
            let Streaming { mut frames, permit } = answer;
            let ended = loop {
                match frames.next().await {
                    Some(Ok(frame)) => {
                        let end = frame.events.contains(&ChatEvent::End);
                        flight.update(|p| p.frames.push(frame));
                        if end {
                            break Ended::Complete;
                        }
                    }
                    Some(Err(e)) => break Ended::Failed(e),
                    None => break Ended::Stopped,
                }
            };
            drop((frames, permit));
            if matches!(ended, Ended::Complete) {
                keep(flight.lock().frames.as_slice().into());
            }
            flight.update(|p| p.ended = Some(ended));
        });
    }

    /// Starts the shared call for a whole answer (the leader does, once).
    pub fn drive_whole(
        &self,
        call: impl Future<Output = Result<Completion, GatewayError>> + Send + 'static,
        keep: impl FnOnce(&Completion) + Send + 'static,
    ) {
        let call = Box::pin(call);
        let flight = self.flight.clone();
        self.drive(async move {
            let answer = call.await;
            if let Ok(completion) = &answer {
                keep(completion);
            }
            flight.update(|p| p.opened = Some(answer.map(Opened::Whole)));
        });
    }

    fn drive(&self, work: impl Future<Output = ()> + Send + 'static) {
        let landing = Landing {
            flight: self.flight.clone(),
            flights: self.flights.clone(),
            key: self.key,
        };
        let task = tokio::spawn(async move {
            let _landing = landing;
            work.await;
        });
        let mut p = self.flight.lock();
        match p.abandoned {
            true => task.abort(),
            false => p.task = Some(task.abort_handle()),
        }
    }

    /// Waits until the upstream has taken the call (a stream) or answered it (a whole
    /// answer); a refusal is every reader's.
    async fn opened(&self) -> Result<Opened, GatewayError> {
        loop {
            let changed = self.flight.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(opened) = self.flight.lock().opened.clone() {
                return opened;
            }
            changed.await;
        }
    }

    /// The whole answer, once it is in.
    pub async fn whole(self) -> Result<Completion, GatewayError> {
        match self.opened().await? {
            Opened::Whole(completion) => Ok(completion),
            Opened::Stream => unreachable!("a key is either streamed or not"),
        }
    }

    /// Once the upstream has taken the call, its frames from the first, each as it
    /// comes; this reader stays attached until the stream is dropped.
    pub async fn stream(self) -> Result<FrameStream, GatewayError> {
        self.opened().await?;
        let reader = self;
        Ok(Box::pin(async_stream::stream! {
            let mut next = 0;
            loop {
                let changed = reader.flight.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let (batch, ended) = {
                    let p = reader.flight.lock();
                    (p.frames[next..].to_vec(), p.ended.clone())
                };
                if !batch.is_empty() {
                    next += batch.len();
                    for frame in batch {
                        yield Ok(frame);
                    }
                    continue;
                }
                match ended {
                    Some(Ended::Failed(e)) => {
                        yield Err(e);
                        break;
                    }
                    Some(Ended::Complete | Ended::Stopped) => break,
                    None => changed.await,
                }
            }
        }))
    }
}

/// The end of a flight's task, however it ends: the flight is forgotten, and readers
/// still waiting (the task panicked) are told it stopped rather than left waiting.
struct Landing {
    flight: Arc<Flight>,
    flights: Arc<Flights>,
    key: Key,
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.flight.update(|p| match p.opened {
            None => {
                let stopped = "the upstream call stopped before it answered";
                p.opened = Some(Err(GatewayError::Unavailable(stopped.into())));
            }
            Some(Ok(Opened::Stream)) => {
                p.ended.get_or_insert(Ended::Stopped);
            }
            Some(_) => {}
        });
        self.flights.remove(&self.key, &self.flight);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let stop = {
            let mut p = self.flight.lock();
            p.readers -= 1;
            let finished =
                p.ended.is_some() || matches!(p.opened, Some(Err(_)) | Some(Ok(Opened::Whole(_))));
            if p.readers == 0 && !finished {
                p.abandoned = true;
                Some(p.task.take())
            } else {
                None
            }
        };
        if let Some(task) = stop {
            if let Some(task) = task {
                task.abort();
            }
            self.flights.remove(&self.key, &self.flight);
        }
    }
}
