//! A route's request: its targets tried in the route's order until one answers. Each try
//! waits its provider's own queue. A streamed try counts as answered only once its
//! first frame is in, and nothing reaches the client before that, so a failure up to
//! there moves on to the next target; a failure after it is the client's in-stream
//! error, as for a provider named directly. Every target that did not answer is written
//! on the record with its reason.
//!
//! Which failures move on: everything that is about the target (429, 5xx, 404, a refused
//! connection, no first byte, a key missing, rejected or locked away, the provider's own
//! limit or budget), since the next target has its own server, key and budget. Which
//! stop: 400, 413 and 422 (the request itself is wrong, and every target would say so
//! after as long a wait each), and the gateway's own stream limit.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use super::route::Route;
use crate::chat::{ChatRequest, Completion};
use crate::error::{GatewayError, ProviderError};
use crate::gateway::AppState;
use crate::providers::{FrameStream, Provider};
use crate::request_log::{Attempt, RecordHandle};

/// The pause before a target is tried again, doubled for each further try: never long,
/// since another target is the better wait.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MOST: Duration = Duration::from_secs(2);

/// What the caller wants from a target: a stream or a whole answer.
pub(super) trait Ask {
    type Answer;
    /// One try of `provider`, after its queue.
    async fn ask(
        &mut self,
        state: &AppState,
        provider: &Provider,
        chat: ChatRequest,
    ) -> Result<Self::Answer, GatewayError>;
}

/// A stream, answered once its first frame is in; the stream slot it holds, taken on
/// the first try that got through its queue (or given by the caller).
pub(super) struct Streamed(pub Option<OwnedSemaphorePermit>);

/// A whole answer.
pub(super) struct Whole;

/// What a failed try means for the route.
enum Verdict {
    /// Try the next target. `counts` when the failure is the target's own (its health);
    /// `retry_after` when the upstream asked for a pause.
    Next {
        reason: String,
        counts: bool,
        retry_after: Option<Duration>,
    },
    /// Answer the client with this error now.
    Stop,
}

/// Sends `chat` through `route`: the first answer of its targets, tried in its order.
pub(super) async fn send<A: Ask>(
    state: &AppState,
    route: &Route,
    chat: ChatRequest,
    record: &RecordHandle,
    want: &mut A,
) -> Result<A::Answer, GatewayError> {
    record.set_route(route.name());
    let plan = route.plan(Instant::now());
    for (t, left) in &plan.skipped {
        record.set_note(&format!(
            "skipped {} (cooling down after failures, {} s left)",
            route.targets()[*t].name,
            left.as_secs_f64().ceil()
        ));
    }
    let prompt = chat.prompt();
    let mut tried = vec![0u32; route.targets().len()];
    let (mut last, mut failures) = (None, vec![]);
    for t in plan.tries {
        let target = &route.targets()[t];
        if tried[t] > 0 {
            if route.cooling(t, Instant::now()).is_some() {
                continue;
            }
            tokio::time::sleep(backoff(tried[t])).await;
        }
        tried[t] += 1;
        let provider = &state.providers.all()[target.provider];
        record.set_request(provider.id(), &target.model, prompt.clone());
        let mut chat = chat.clone();
        chat.model.clone_from(&target.model);
        chat.native = None;
        let started = Instant::now();
        let answer = match provider.wait_turn(record).await {
            Ok(()) => want.ask(state, provider, chat).await,
            Err(e) => Err(e),
        };
        let error = match answer {
            Ok(answer) => {
                route.answered(t);
                return Ok(answer);
            }
            Err(error) => error,
        };
        let Verdict::Next {
            reason,
            counts,
            retry_after,
        } = verdict(&error)
        else {
            return Err(error);
        };
        if counts {
            route.failed(t, Instant::now(), retry_after);
        }
        failures.push(format!("{} {reason}", target.name));
        record.push_attempt(Attempt {
            target: target.name.clone(),
            reason,
            ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        });
        last = Some(error);
    }
    let last = last.expect("a route tries at least one target");
    Err(GatewayError::RouteFailed {
        route: route.name().to_string(),
        attempts: failures.join("; "),
        last: Box::new(last),
    })
}

impl Ask for Streamed {
    type Answer = FrameStream;

    async fn ask(
        &mut self,
        state: &AppState,
        provider: &Provider,
        chat: ChatRequest,
    ) -> Result<FrameStream, GatewayError> {
        if self.0.is_none() {
            self.0 = Some(state.stream_permit()?);
        }
        let mut frames = provider.stream(chat).await?;
        let first = match frames.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(e.into()),
            None => {
                return Err(ProviderError::Cut {
                    provider: provider.id().to_string(),
                }
                .into())
            }
        };
        Ok(Box::pin(
            futures_util::stream::iter([Ok(first)]).chain(frames),
        ))
    }
}

impl Ask for Whole {
    type Answer = Completion;

    async fn ask(
        &mut self,
        _: &AppState,
        provider: &Provider,
        chat: ChatRequest,
    ) -> Result<Completion, GatewayError> {
        Ok(provider.complete(chat).await?)
    }
}

fn verdict(error: &GatewayError) -> Verdict {
    let next = |reason: String| Verdict::Next {
        reason,
        counts: true,
        retry_after: None,
    };
    let e = match error {
        GatewayError::Provider(e) => e,
        // The provider's own limit or daily budget: not a fault of its server.
        GatewayError::ProviderLimited { limit, why, .. } => {
            return Verdict::Next {
                reason: format!("over its limit of {limit}: {why}"),
                counts: false,
                retry_after: None,
            }
        }
        _ => return Verdict::Stop,
    };
    match e {
        ProviderError::Status {
            status: 400 | 413 | 422,
            ..
        } => Verdict::Stop,
        ProviderError::Status {
            status: 429,
            retry_after,
            ..
        } => {
            let wait = retry_after
                .as_ref()
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Verdict::Next {
                reason: match wait {
                    Some(wait) => format!("answered 429 (retry after {} s)", wait.as_secs()),
                    None => "answered 429".into(),
                },
                counts: true,
                retry_after: wait,
            }
        }
        ProviderError::Status { status, .. } => next(format!("answered {status}")),
        ProviderError::Connect { .. } => next("could not connect".into()),
        ProviderError::FirstByteTimeout { after, .. } => {
            next(format!("no first byte within {} s", after.as_secs_f64()))
        }
        ProviderError::IdleTimeout { after, .. } => {
            next(format!("no first event within {} s", after.as_secs_f64()))
        }
        ProviderError::KeyRejected { status, .. } => {
            next(format!("rejected its key (answered {status})"))
        }
        ProviderError::MissingKey { .. } => next("has no key set".into()),
        ProviderError::BadKey { .. } => next("its key cannot be used".into()),
        ProviderError::Secret { .. } => next("its key cannot be read from the keychain".into()),
        ProviderError::Redirected { status, .. } => {
            next(format!("redirected (answered {status}), not followed"))
        }
        ProviderError::Untranslatable { message, .. } => next(format!("cannot take it: {message}")),
        ProviderError::BadModel { reason, .. } => next(format!("cannot use its model: {reason}")),
        ProviderError::InStream { .. } => next("sent an error before answering".into()),
        ProviderError::Decode { .. } => next("sent something unreadable".into()),
        ProviderError::Cut { .. } => next("closed the stream before answering".into()),
    }
}

/// The pause before the `n`th repeat of a target: doubling from [`BACKOFF_FIRST`] up to
/// [`BACKOFF_MOST`], each a random half to whole of that ("equal jitter"), so clients
/// that failed together do not come back together.
fn backoff(n: u32) -> Duration {
    let full = BACKOFF_FIRST
        .saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(BACKOFF_MOST);
    full.mul_f64(0.5 + random_unit() / 2.0)
}

/// A number in [0, 1): std's hasher keys are random per process and per call.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn status(status: u16, retry_after: Option<&'static str>) -> GatewayError {
        ProviderError::Status {
            provider: "p".into(),
            status,
            message: "m".into(),
            retry_after: retry_after.map(HeaderValue::from_static),
        }
        .into()
    }

    fn reason(error: GatewayError) -> Option<(String, bool, Option<Duration>)> {
        match verdict(&error) {
            Verdict::Next {
                reason,
                counts,
                retry_after,
            } => Some((reason, counts, retry_after)),
            Verdict::Stop => None,
        }
    }

    #[test]
    fn target_failures_move_on_and_request_mistakes_stop() {
        assert_eq!(
            reason(status(429, Some("2"))),
            Some((
                "answered 429 (retry after 2 s)".into(),
                true,
                Some(Duration::from_secs(2))
            ))
        );
        assert_eq!(reason(status(503, None)).unwrap().0, "answered 503");
        assert_eq!(reason(status(404, None)).unwrap().0, "answered 404");
        let connect = ProviderError::Connect {
            provider: "p".into(),
            message: "refused".into(),
        };
        assert_eq!(reason(connect.into()).unwrap().0, "could not connect");
        let slow = ProviderError::FirstByteTimeout {
            provider: "p".into(),
            after: Duration::from_secs(10),
        };
        assert_eq!(reason(slow.into()).unwrap().0, "no first byte within 10 s");
        let limited = GatewayError::ProviderLimited {
            provider: "p".into(),
            limit: "100 requests per minute".into(),
            why: "its queue is full".into(),
            retry_after_s: 1,
        };
        assert_eq!(
            reason(limited),
            Some((
                "over its limit of 100 requests per minute: its queue is full".into(),
                false,
                None
            )),
            "a full budget is not the server's fault"
        );
        for code in [400, 413, 422] {
            assert!(reason(status(code, None)).is_none(), "{code} stops");
        }
        assert!(reason(GatewayError::Busy { limit: 4 }).is_none());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_short() {
        for n in 1..=20 {
            let full = BACKOFF_FIRST
                .saturating_mul(1 << (n - 1).min(16))
                .min(BACKOFF_MOST);
            let pause = backoff(n);
            assert!(pause >= full / 2 && pause <= full, "{n}: {pause:?}");
        }
        let pauses: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(3)).collect();
        assert!(pauses.len() > 1, "jittered, not one fixed pause");
    }
}
