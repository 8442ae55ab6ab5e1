//! Sends a chat to the provider that answers it: waits for the provider's turn (its
//! `limits`), takes a stream slot, and starts the answer. Every chat route comes through
//! here (the seed route, OpenAI, Anthropic, Responses, the chat API, ChatKit and the
//! WebSockets), so what stands between a request and its upstream is added in one place.
//! A route (`routes[]`) goes on to [`retry`], which tries its targets in turn. The cache
//! comes first of all (`crate::cache`): an answer from memory, or from an identical call
//! in flight, neither waits in a provider's queue nor spends its budget.

mod cooldown;
mod retry;
mod route;

pub use route::{Destination, Route, Target, Via};

use retry::{Streamed, Whole};
use tokio::sync::OwnedSemaphorePermit;

use crate::chat::{ChatRequest, Completion};
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::providers::FrameStream;
use crate::request_log::RecordHandle;

/// A streamed answer under way, and the stream slot it holds until it is dropped.
pub struct Streaming {
    pub frames: FrameStream,
    pub permit: OwnedSemaphorePermit,
}

/// Starts a streamed answer from `provider` (or a route). Returns once the upstream has
/// accepted the request, so what fails up to then can still be answered with a status
/// code; for a route, once its first frame is in, so a failure up to then can still move
/// on to the next target.
pub async fn stream<'a>(
    state: &AppState,
    provider: impl Into<Via<'a>>,
    chat: ChatRequest,
    record: &RecordHandle,
) -> Result<Streaming, GatewayError> {
    let via = provider.into();
    let Some(cached) = state.cache.consult(via.id(), &chat, record, true) else {
        return stream_upstream(state, via, chat, record).await;
    };
    let call = || {
        let (state, to, record) = owned(state, via, record);
        async move { stream_upstream(&state, &to, chat, &record).await }
    };
    // Boxed, so the cache's part adds nothing to this future's size while the cache is off.
    Box::pin(cached.stream(&state.streams, call)).await
}

async fn stream_upstream<'a>(
    state: &AppState,
    provider: impl Into<Via<'a>>,
    chat: ChatRequest,
    record: &RecordHandle,
) -> Result<Streaming, GatewayError> {
    let provider = match provider.into() {
        Via::Provider(provider) => provider,
        // Boxed here and below: a route's retries would otherwise make every request's
        // future as large as theirs, and the future is copied whole when it is boxed for
        // the router.
        Via::Route(route) => return Box::pin(via_route(state, route, chat, record, None)).await,
    };
    // The queue first: a request waiting for its provider's budget holds no stream slot.
    provider.wait_turn(record).await?;
    let permit = state.stream_permit()?;
    let frames = provider.stream(chat).await?;
    Ok(Streaming { frames, permit })
}

/// [`stream`] for a caller that took its stream slot before (ChatKit takes it before it
/// stores the user's message, so a busy gateway leaves no unanswered message behind).
pub async fn stream_holding<'a>(
    state: &AppState,
    provider: impl Into<Via<'a>>,
    chat: ChatRequest,
    record: &RecordHandle,
    permit: OwnedSemaphorePermit,
) -> Result<Streaming, GatewayError> {
    let via = provider.into();
    let Some(cached) = state.cache.consult(via.id(), &chat, record, true) else {
        return stream_holding_upstream(state, via, chat, record, permit).await;
    };
    let call = || {
        let (state, to, record) = owned(state, via, record);
        async move { stream_holding_upstream(&state, &to, chat, &record, permit).await }
    };
    Box::pin(cached.stream(&state.streams, call)).await
}

async fn stream_holding_upstream<'a>(
    state: &AppState,
    provider: impl Into<Via<'a>>,
    chat: ChatRequest,
    record: &RecordHandle,
    permit: OwnedSemaphorePermit,
) -> Result<Streaming, GatewayError> {
    let provider = match provider.into() {
        Via::Provider(provider) => provider,
        Via::Route(route) => {
            return Box::pin(via_route(state, route, chat, record, Some(permit))).await
        }
    };
    provider.wait_turn(record).await?;
    let frames = provider.stream(chat).await?;
    Ok(Streaming { frames, permit })
}

/// A whole answer from `provider` (or a route), for a client that did not ask to stream.
pub async fn complete<'a>(
    state: &AppState,
    provider: impl Into<Via<'a>>,
    chat: ChatRequest,
    record: &RecordHandle,
) -> Result<Completion, GatewayError> {
    let via = provider.into();
    let Some(cached) = state.cache.consult(via.id(), &chat, record, false) else {
        return complete_upstream(state, via, chat, record).await;
    };
    let call = || {
        let (state, to, record) = owned(state, via, record);
        async move { complete_upstream(&state, &to, chat, &record).await }
    };
    Box::pin(cached.complete(call)).await
}

/// A request's parts, owned: the upstream call the cache lets identical requests share
/// may outlive the client that started it.
fn owned(
    state: &AppState,
    via: Via,
    record: &RecordHandle,
) -> (AppState, Destination, RecordHandle) {
    (state.clone(), via.owned(), record.clone())
}

async fn complete_upstream<'a>(
    state: &AppState,
    provider: impl Into<Via<'a>>,
    chat: ChatRequest,
    record: &RecordHandle,
) -> Result<Completion, GatewayError> {
    let provider = match provider.into() {
        Via::Provider(provider) => provider,
        Via::Route(route) => {
            return Box::pin(retry::send(state, route, chat, record, &mut Whole)).await
        }
    };
    provider.wait_turn(record).await?;
    Ok(provider.complete(chat).await?)
}

async fn via_route(
    state: &AppState,
    route: &Route,
    chat: ChatRequest,
    record: &RecordHandle,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Streaming, GatewayError> {
    let mut streamed = Streamed(permit);
    let frames = retry::send(state, route, chat, record, &mut streamed).await?;
    let permit = streamed.0.expect("a stream that answered took its slot");
    Ok(Streaming { frames, permit })
}
