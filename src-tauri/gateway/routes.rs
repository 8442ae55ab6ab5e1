//! The handlers: the seed's streaming route, the OpenAI-compatible routes, and health.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::body::JsonBody;
use super::sse::{self, Encoder};
use super::state::AppState;
use crate::chat::{Frame, NativeBody};
use crate::config::ProviderKind;
use crate::error::{ErrorShape, GatewayError};
use crate::request_log::RecordHandle;
use crate::wire::{openai, seed};

struct SeedEncoder;

impl Encoder for SeedEncoder {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        seed::encode(frame, out)
    }
    fn shape(&self) -> ErrorShape {
        ErrorShape::Seed
    }
}

impl Encoder for openai::ChunkEncoder {
    fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        openai::ChunkEncoder::encode(self, frame, out)
    }
    fn shape(&self) -> ErrorShape {
        ErrorShape::OpenAi
    }
}

impl AppState {
    fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, GatewayError> {
        self.streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| GatewayError::Busy {
                limit: self.config.limits.max_concurrent_streams,
            })
    }
}

/// `POST /api/ai-gateway/stream`: the seed's contract.
pub async fn chat_stream(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBody(body): JsonBody<seed::SeedRequest>,
) -> Result<Response, GatewayError> {
    let (provider, model) = state
        .providers
        .route(body.provider.as_deref(), body.model.as_deref())
        .map_err(GatewayError::bad_request)?;
    let mut chat = body.into_chat()?;
    chat.model = model;
    record.set_request(provider.id(), &chat.model, chat.prompt());
    let permit = state.stream_permit()?;
    let frames = provider.stream(chat).await?;
    Ok(sse::response(frames, SeedEncoder, record, permit))
}

/// `POST /v1/chat/completions`, streaming or not.
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Response {
    chat_completions_inner(state, record, body)
        .await
        .unwrap_or_else(|e| e.response(ErrorShape::OpenAi))
}

async fn chat_completions_inner(
    state: AppState,
    record: RecordHandle,
    mut body: Map<String, Value>,
) -> Result<Response, GatewayError> {
    let parsed = openai::parse_request(&body)?;
    let (provider, model) = state
        .providers
        .route(None, parsed.model.as_deref())
        .map_err(GatewayError::bad_request)?;
    let passthrough = provider.kind() == ProviderKind::OpenAi;
    let mut chat = parsed.chat;
    chat.model = model;
    record.set_request(provider.id(), &chat.model, chat.prompt());
    let client_model = format!("{}/{}", provider.id(), chat.model);
    if passthrough {
        body.insert("model".into(), chat.model.clone().into());
        chat.native = Some(NativeBody::OpenAi(body));
    }
    if parsed.stream {
        let permit = state.stream_permit()?;
        let encoder = openai::ChunkEncoder::new(client_model, chat.include_usage, passthrough);
        let frames = provider.stream(chat).await?;
        return Ok(sse::response(frames, encoder, record, permit));
    }
    let completion = provider.complete(chat).await?;
    record.push_answer(&completion.text);
    if let Some(usage) = completion.usage {
        record.set_usage(usage);
    }
    Ok(match completion.raw {
        Some(raw) if passthrough => Json(raw).into_response(),
        _ => Json(openai::completion_json(&client_model, &completion)).into_response(),
    })
}

/// `GET /v1/models`: every configured provider's models, named `provider-id/model`.
pub async fn models_list(State(state): State<AppState>) -> Json<Value> {
    let mut data = vec![];
    for provider in state.providers.all() {
        let config = provider.config();
        let mut models = vec![config.default_model.as_str()];
        models.extend(
            config
                .models
                .iter()
                .map(String::as_str)
                .filter(|m| *m != config.default_model),
        );
        for model in models {
            data.push(json!({
                "id": format!("{}/{}", config.id, model),
                "object": "model",
                "created": 0,
                "owned_by": config.id,
            }));
        }
    }
    Json(json!({"object": "list", "data": data}))
}

/// `GET /health` and `/api/health`: liveness plus the providers, never a secret.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let providers: Vec<Value> = state
        .providers
        .all()
        .iter()
        .map(|p| {
            let c = p.config();
            json!({
                "id": c.id,
                "kind": c.kind.to_string(),
                "default_model": c.default_model,
                "default": c.id == state.config.default_provider,
            })
        })
        .collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "providers": providers,
    }))
}

/// Any other path: a JSON 404 that still carries CORS headers.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path().to_string();
    GatewayError::NotFound(path.clone()).response(ErrorShape::for_path(&path))
}
