//! Sends a chat to the provider that answers it: waits for the provider's turn (its
//! `limits`), takes a stream slot, and starts the answer. Every chat route comes through
//! here (the seed route, OpenAI, Anthropic, Responses, the chat API, ChatKit and the
//! WebSockets), so what stands between a request and its upstream is added in one place.

use tokio::sync::OwnedSemaphorePermit;

use crate::chat::{ChatRequest, Completion};
use crate::error::GatewayError;
use crate::gateway::AppState;
use crate::providers::{FrameStream, Provider};
use crate::request_log::RecordHandle;

/// A streamed answer under way, and the stream slot it holds until it is dropped.
pub struct Streaming {
    pub frames: FrameStream,
    pub permit: OwnedSemaphorePermit,
}

/// Starts a streamed answer from `provider`. Returns once the upstream has accepted the
/// request, so what fails up to then can still be answered with a status code.
pub async fn stream(
    state: &AppState,
    provider: &Provider,
    chat: ChatRequest,
    record: &RecordHandle,
) -> Result<Streaming, GatewayError> {
    // The queue first: a request waiting for its provider's budget holds no stream slot.
    provider.wait_turn(record).await?;
    let permit = state.stream_permit()?;
    let frames = provider.stream(chat).await?;
    Ok(Streaming { frames, permit })
}

/// [`stream`] for a caller that took its stream slot before (ChatKit takes it before it
/// stores the user's message, so a busy gateway leaves no unanswered message behind).
pub async fn stream_holding(
    _state: &AppState,
    provider: &Provider,
    chat: ChatRequest,
    record: &RecordHandle,
    permit: OwnedSemaphorePermit,
) -> Result<Streaming, GatewayError> {
    provider.wait_turn(record).await?;
    let frames = provider.stream(chat).await?;
    Ok(Streaming { frames, permit })
}

/// A whole answer from `provider`, for a client that did not ask to stream.
pub async fn complete(
    provider: &Provider,
    chat: ChatRequest,
    record: &RecordHandle,
) -> Result<Completion, GatewayError> {
    provider.wait_turn(record).await?;
    Ok(provider.complete(chat).await?)
}
