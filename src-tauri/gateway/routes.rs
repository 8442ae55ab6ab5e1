//! The handlers: the seed's streaming route, the OpenAI- and Anthropic-compatible
//! routes, models and health.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use tokio::sync::OwnedSemaphorePermit;

use super::body::{JsonBody, JsonBytes};
use super::encoders::SeedEncoder;
use super::sse;
use super::state::AppState;
use crate::chat::{ChatRequest, Completion, Native, NativeBody};
use crate::config::ProviderKind;
use crate::dispatch::{self, Route, Via};
use crate::error::{ErrorShape, GatewayError};
use crate::request_log::RecordHandle;
use crate::wire::{anthropic, openai, responses, seed, ClientRequest};

impl AppState {
    pub(crate) fn stream_permit(&self) -> Result<OwnedSemaphorePermit, GatewayError> {
        self.streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| GatewayError::Busy {
                limit: self.config.limits.max_concurrent_streams,
            })
    }
}

/// A request routed to its provider (or a route of providers), ready to send.
pub(super) struct Routed<'a> {
    pub provider: Via<'a>,
    pub chat: ChatRequest,
    /// The provider speaks the client's format: its events and bodies pass through.
    pub passthrough: bool,
    /// `provider-id/model`, or a route's name, as the client sees the model.
    pub client_model: String,
}

/// Picks the provider, and keeps the client's own body when the provider speaks its
/// format, so fields Protogate does not model (tools, metadata) still reach the upstream.
pub(super) fn route<'a>(
    state: &'a AppState,
    record: &RecordHandle,
    provider: Option<&str>,
    model: Option<&str>,
    mut chat: ChatRequest,
    native: Option<NativeBody>,
) -> Result<Routed<'a>, GatewayError> {
    let (via, model) = state
        .providers
        .route(provider, model)
        .map_err(GatewayError::bad_request)?;
    chat.model = model;
    let provider = match via {
        Via::Provider(provider) => provider,
        Via::Route(route) => return through_route(record, route, chat),
    };
    record.set_request(provider.id(), &chat.model, chat.prompt());
    let passthrough = matches!(
        (&native, provider.kind()),
        (Some(NativeBody::OpenAi(_)), ProviderKind::OpenAi)
            | (Some(NativeBody::Anthropic(_)), ProviderKind::Anthropic)
    );
    // What cannot be translated is refused by name, never dropped; the demo provider
    // answers anything with its labelled canned text.
    if !passthrough && provider.kind() != ProviderKind::Demo && !chat.untranslatable.is_empty() {
        return Err(GatewayError::bad_request(format!(
            "{} cannot be translated for provider '{}' ({}); send it to a provider of the \
             request's own format, or leave it out",
            chat.untranslatable.join(", "),
            provider.id(),
            provider.kind()
        )));
    }
    if passthrough {
        chat.native = native;
    }
    Ok(Routed {
        client_model: format!("{}/{}", provider.id(), chat.model),
        provider: via,
        chat,
        passthrough,
    })
}

/// A request for a route. Its targets may speak other formats than the client, so it is
/// always translated through the canonical model, never passed through; the client sees
/// the route's name as the model, the name it asked for (the log names the target that
/// answered).
fn through_route<'a>(
    record: &RecordHandle,
    route: &'a Route,
    chat: ChatRequest,
) -> Result<Routed<'a>, GatewayError> {
    record.set_route(route.name());
    if !route.all_demo() && !chat.untranslatable.is_empty() {
        return Err(GatewayError::bad_request(format!(
            "{} cannot be translated for route '{}', whose targets each get the request in \
             their own format; leave it out, or send it to one provider by name",
            chat.untranslatable.join(", "),
            route.name()
        )));
    }
    Ok(Routed {
        client_model: route.name().to_string(),
        provider: Via::Route(route),
        chat,
        passthrough: false,
    })
}

/// `POST /api/ai-gateway/stream`: the seed's contract.
pub async fn chat_stream(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBody(body): JsonBody<seed::SeedRequest>,
) -> Result<Response, GatewayError> {
    let (provider, model) = (body.provider.clone(), body.model.clone());
    let chat = body.into_chat()?;
    let routed = route(
        &state,
        &record,
        provider.as_deref(),
        model.as_deref(),
        chat,
        None,
    )?;
    let answer = dispatch::stream(&state, routed.provider, routed.chat, &record).await?;
    Ok(sse::response(answer.frames, SeedEncoder, record, answer.permit).await)
}

/// What differs between the OpenAI- and Anthropic-compatible routes.
trait ClientFormat {
    type Encoder: sse::Encoder;
    const SHAPE: ErrorShape;
    fn parse(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError>;
    /// The client's body, when some provider kind speaks the same format.
    fn native(body: Native) -> Option<NativeBody>;
    fn encoder(client_model: String, chat: &ChatRequest, passthrough: bool) -> Self::Encoder;
    fn completion_json(client_model: &str, completion: &Completion) -> Value;
}

struct OpenAiFormat;

impl ClientFormat for OpenAiFormat {
    type Encoder = openai::ChunkEncoder;
    const SHAPE: ErrorShape = ErrorShape::OpenAi;
    fn parse(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError> {
        openai::parse_request(body)
    }
    fn native(body: Native) -> Option<NativeBody> {
        Some(NativeBody::OpenAi(body))
    }
    fn encoder(client_model: String, chat: &ChatRequest, passthrough: bool) -> Self::Encoder {
        openai::ChunkEncoder::new(client_model, chat.include_usage, passthrough)
    }
    fn completion_json(client_model: &str, completion: &Completion) -> Value {
        openai::completion_json(client_model, completion)
    }
}

struct AnthropicFormat;

impl ClientFormat for AnthropicFormat {
    type Encoder = anthropic::EventEncoder;
    const SHAPE: ErrorShape = ErrorShape::Anthropic;
    fn parse(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError> {
        anthropic::parse_request(body)
    }
    fn native(body: Native) -> Option<NativeBody> {
        Some(NativeBody::Anthropic(body))
    }
    fn encoder(client_model: String, _: &ChatRequest, passthrough: bool) -> Self::Encoder {
        anthropic::EventEncoder::new(client_model, passthrough)
    }
    fn completion_json(client_model: &str, completion: &Completion) -> Value {
        anthropic::message_json(client_model, completion)
    }
}

/// OpenAI's Responses API: translated through the canonical model for every provider
/// kind (OpenAI-compatible upstreams get Chat Completions, which all of them speak).
struct ResponsesFormat;

impl ClientFormat for ResponsesFormat {
    type Encoder = responses::ResponseEncoder;
    const SHAPE: ErrorShape = ErrorShape::OpenAi;
    fn parse(body: &Map<String, Value>) -> Result<ClientRequest, GatewayError> {
        responses::parse_request(body)
    }
    fn native(_: Native) -> Option<NativeBody> {
        None
    }
    fn encoder(client_model: String, _: &ChatRequest, _: bool) -> Self::Encoder {
        responses::ResponseEncoder::new(client_model)
    }
    fn completion_json(client_model: &str, completion: &Completion) -> Value {
        responses::response_json(client_model, completion)
    }
}

/// `POST /v1/responses`, streaming or not.
pub async fn responses_create(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBytes(fields, raw): JsonBytes<Map<String, Value>>,
) -> Response {
    answer::<ResponsesFormat>(state, record, Native { fields, raw }).await
}

/// `POST /v1/chat/completions`, streaming or not.
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBytes(fields, raw): JsonBytes<Map<String, Value>>,
) -> Response {
    answer::<OpenAiFormat>(state, record, Native { fields, raw }).await
}

/// `POST /v1/messages`: Anthropic's Messages API, streaming or not.
pub async fn messages(
    State(state): State<AppState>,
    Extension(record): Extension<RecordHandle>,
    JsonBytes(fields, raw): JsonBytes<Map<String, Value>>,
) -> Response {
    answer::<AnthropicFormat>(state, record, Native { fields, raw }).await
}

/// Answers a request in format `F`, streamed or whole, errors in `F`'s shape.
async fn answer<F: ClientFormat>(state: AppState, record: RecordHandle, body: Native) -> Response {
    let result = async {
        let parsed = F::parse(&body.fields)?;
        let native = F::native(body);
        let model = parsed.model.as_deref();
        let r = route(&state, &record, None, model, parsed.chat, native)?;
        if parsed.stream {
            let encoder = F::encoder(r.client_model, &r.chat, r.passthrough);
            let answer = dispatch::stream(&state, r.provider, r.chat, &record).await?;
            return Ok(sse::response(answer.frames, encoder, record.clone(), answer.permit).await);
        }
        let completion = dispatch::complete(&state, r.provider, r.chat, &record).await?;
        note_completion(&record, &completion);
        Ok(match completion.raw {
            Some(raw) if r.passthrough => json_bytes(raw),
            _ => Json(F::completion_json(&r.client_model, &completion)).into_response(),
        })
    };
    result
        .await
        .unwrap_or_else(|e: GatewayError| e.response(F::SHAPE))
}

/// An upstream JSON body, forwarded as received.
fn json_bytes(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn note_completion(record: &RecordHandle, completion: &Completion) {
    record.push_answer(&completion.text);
    if let Some(finish) = completion.finish {
        record.set_finish_reason(finish.as_openai());
    }
    if let Some(usage) = completion.usage {
        record.set_usage(usage);
    }
}

/// `GET /v1/models`: every configured provider's models, named `provider-id/model`, then
/// the routes by name, each saying it is a route and what stands behind it.
pub async fn models_list(State(state): State<AppState>) -> Json<Value> {
    let mut data = vec![];
    for provider in state.providers.all() {
        let config = provider.config();
        if !config.can(crate::config::Capability::Chat) {
            continue;
        }
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
    for route in state.providers.routes() {
        data.push(json!({
            "id": route.name(),
            "object": "model",
            "created": 0,
            "owned_by": "protogate-route",
            "route": route.describe(),
        }));
    }
    Json(json!({"object": "list", "data": data}))
}

/// `GET /health` and `/api/health`: liveness plus each provider and whether its
/// credential can be read (never the credential).
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let mut providers = vec![];
    for p in state.providers.all() {
        let c = p.config();
        let credential = p.key_state(&state.secrets).await;
        providers.push(json!({
            "id": c.id,
            "kind": c.kind.to_string(),
            "default_model": c.default_model,
            "default": c.id == state.config.default_provider,
            "capabilities": c.capabilities(),
            "credential": credential,
        }));
    }
    let mut health = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "providers": providers,
    });
    if let Some(redis) = &state.redis {
        health["redis"] = redis.health().into();
    }
    Json(health)
}

/// Any other path: a JSON 404 that still carries CORS headers.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path().to_string();
    GatewayError::NotFound(path.clone()).response(ErrorShape::for_path(&path))
}
