//! The HTTP gateway. The caller binds ([`bind`]) and then serves ([`serve`]) with any
//! shutdown future, so the CLI, the tray and the tests share one path.

mod body;
mod conn;
mod encoders;
mod front;
mod guard;
mod probes;
mod routes;
mod scrape;
mod server;
mod sse;
mod state;
mod ws;
mod ws_chat;
mod ws_responses;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::cors::{AllowHeaders, AllowOrigin, AllowPrivateNetwork, CorsLayer};

pub(crate) use body::JsonBody;
pub use conn::ClientStall;
pub use front::Gateway;
use front::{Admit, Front};
pub use probes::{Probes, ReadinessCheck, LIVEZ, READYZ};
pub use server::{serve_live, serve_live_tls, LiveRouter, DRAIN};
pub(crate) use sse::event_stream;
pub use state::AppState;

use crate::config::Config;
use crate::request_log::REQUEST_ID_HEADER;

/// Why the gateway could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("port {port} on {host} is already in use (another Protogate, or another app?); choose another with --port or \"port\" in the settings")]
    InUse { host: String, port: u16 },
    #[error("cannot listen on {host}:{port}: {source}")]
    Other {
        host: String,
        port: u16,
        source: std::io::Error,
    },
}

impl BindError {
    /// The port another app holds, when that is why: the window offers the next one.
    pub fn port_in_use(&self) -> Option<u16> {
        match self {
            BindError::InUse { port, .. } => Some(*port),
            BindError::Other { .. } => None,
        }
    }
}

/// Binds the configured host and port (port 0 takes any free one). The caller binds, so
/// a port already in use is its error to report, before anything is served.
pub async fn bind(config: &Config) -> Result<TcpListener, BindError> {
    let addr = SocketAddr::new(config.host, config.port);
    TcpListener::bind(addr).await.map_err(|source| {
        let (host, port) = (config.host.to_string(), config.port);
        if source.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse { host, port }
        } else {
            BindError::Other { host, port, source }
        }
    })
}

/// Binds the HTTPS port on the configured host, when HTTPS is on.
pub async fn bind_https(config: &Config) -> Option<Result<TcpListener, BindError>> {
    let port = config.https_port?;
    let addr = SocketAddr::new(config.host, port);
    Some(TcpListener::bind(addr).await.map_err(|source| {
        let host = config.host.to_string();
        if source.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse { host, port }
        } else {
            BindError::Other { host, port, source }
        }
    }))
}

/// A running HTTPS listener: where it listens and the task serving it.
pub type HttpsServer = (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>);

/// Starts `https://localhost` beside HTTP with the same router: binds the port, loads
/// (or makes) the local CA from the keychain, and serves until `stop`. `Ok(None)` when
/// HTTPS is off in the settings; `Err` says why it could not start, while HTTP goes on.
pub async fn start_https(
    config: &Config,
    live: LiveRouter,
    secrets: &crate::secrets::SecretStore,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Option<HttpsServer>, String> {
    let Some(bound) = bind_https(config).await else {
        return Ok(None);
    };
    let listener = bound.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ca = crate::tls::load_or_create(secrets)
        .await
        .map_err(|e| e.to_string())?;
    let acceptor = crate::tls::acceptor(&ca).map_err(|e| e.to_string())?;
    let task = tokio::spawn(serve_live_tls(
        listener,
        live,
        acceptor,
        stop.cancelled_owned(),
    ));
    Ok(Some((addr, task)))
}

/// The gateway's routes, with the log, the checks and CORS around them (see
/// `front.rs`), without a socket: tests can call it directly.
pub fn router(state: AppState) -> Gateway {
    let routes = Router::new()
        .route("/api/ai-gateway/stream", post(routes::chat_stream))
        .route("/v1/chat/completions", post(routes::chat_completions))
        .route("/v1/messages", post(routes::messages))
        .route(
            "/v1/responses",
            post(routes::responses_create).get(ws_responses::responses_socket),
        )
        .route("/ws/chat", get(ws_chat::chat_socket))
        .route("/v1/models", get(routes::models_list))
        .route("/api/chatkit", post(crate::chatkit::handle))
        .route(
            "/api/chatkit/upload",
            // Room for the form's own lines around the image.
            post(crate::chatkit::upload).layer(DefaultBodyLimit::max(
                state.config.chatkit.max_upload_bytes + 16 * 1024,
            )),
        )
        .route("/api/chat", post(crate::chat_api::chat))
        .route(
            "/api/chat/stream",
            post(crate::chat_api::chat_stream_post).get(crate::chat_api::chat_stream_get),
        )
        .route(
            "/api/conversations/{id}",
            get(crate::chat_api::conversation_get).delete(crate::chat_api::conversation_delete),
        )
        .route(
            "/api/upload",
            post(crate::chat_api::upload).layer(DefaultBodyLimit::max(
                state.config.chatkit.max_upload_bytes + 16 * 1024,
            )),
        )
        .route("/api/agents", get(crate::chat_api::agents))
        .route(
            "/api/voice/process",
            post(crate::voice_api::process).layer(voice_limit(&state)),
        )
        .route(
            "/v1/audio/transcriptions",
            post(crate::voice_api::transcriptions).layer(voice_limit(&state)),
        )
        .route("/api/search", post(crate::search_api::search))
        .route("/health", get(routes::health))
        .route("/api/health", get(routes::health))
        .merge(scrape::routes(&state))
        .fallback(routes::not_found)
        .with_state(state.clone());
    let admitted = Admit::new(state.clone(), routes);
    Front::new(state, cors_layer().layer(admitted))
}

/// The voice routes' body limit: the audio's own limit, with room for the form's lines
/// and text fields around it (the audio itself is held to `max_audio_bytes`).
fn voice_limit(state: &AppState) -> DefaultBodyLimit {
    DefaultBodyLimit::max(state.config.limits.max_audio_bytes + 64 * 1024)
}

/// CORS for origins that passed the front service's gate (`front.rs`): the origin is echoed (with
/// `Vary: Origin`), never `*`, and credentials are never allowed since no cookies are
/// involved. Private Network Access preflights are answered "yes"
/// (<https://wicg.github.io/private-network-access/>).
fn cors_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        // The SDKs send many headers of their own (x-stainless-*, anthropic-version):
        // mirroring what the browser asks for is safe without credentials.
        .allow_headers(AllowHeaders::mirror_request())
        .allow_private_network(AllowPrivateNetwork::yes())
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderName::from_static(crate::cache::CACHE_HEADER),
        ])
        .max_age(Duration::from_secs(600))
        // `Vary` is added by the front service instead, built once: tower-http joins its
        // names anew for every response (1.2 k instructions per request, callgrind).
        .vary(Vec::<HeaderName>::new())
}

/// Serves until `shutdown` completes, then lets open requests finish for a few seconds
/// and ends the connections still open.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_live(listener, LiveRouter::new(state), shutdown).await
}
