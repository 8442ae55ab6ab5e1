//! Protogate: an AI gateway on localhost for browser prototypes, with a tray app.
//!
//! # Layout
//!
//! - [`config`]: the settings file, checked into a [`Config`].
//! - [`secrets`]: provider keys from the OS keychain (cached briefly) or the environment.
//! - [`chat`]: the gateway's own chat model that every format translates through.
//! - [`wire`]: client and provider wire formats (the seed contract, OpenAI, Anthropic).
//! - [`providers`]: the upstreams (demo, OpenAI-compatible, Anthropic, the ASAP gateway).
//! - [`cache`]: identical requests answered from memory, and identical calls in flight
//!   shared (off by default).
//! - [`chat_api`]: the wiring spec's `/api/chat` routes, conversations, uploads, agents.
//! - [`voice_api`]: speech to text, `POST /api/voice/process` and OpenAI's
//!   `/v1/audio/transcriptions`, through Deepgram, an OpenAI-compatible server or the demo.
//! - [`search_api`]: `POST /api/search`, web search through Tavily, Brave or the demo.
//! - [`chatkit`]: OpenAI's ChatKit UI served on `/api/chatkit`, threads kept per origin.
//! - [`gateway`]: the HTTP server, its layers and routes.
//! - `workers`: the threads connections are served on, one single-threaded runtime per
//!   core, each with its own upstream connection pool.
//! - `deadline`: the timeouts of a forwarded request, kept per worker.
//! - [`request_log`]: one record per request, in memory and in daily JSON-lines files.
//! - [`members`]: people with a token of their own (`protogate members`), checked by
//!   the gateway against a copy of the set kept in memory.
//! - [`usage`]: requests, tokens and estimated cost per provider, model and site, read
//!   from the log files; daily budgets per provider.
//! - [`allocator`]: mimalloc as the binary's allocator.
//! - [`controller`]: start, stop and restart the gateway, watch its state, change its
//!   settings while it runs; shared by the tray app and the command line.
//!
//! The command line (`serve`, `secrets`, `members`, `providers`, `check`, `tls`, `usage`)
//! lives in the binary, so that clap and rpassword never reach the library the shell links.
//!
//! The core never names Tauri; the desktop shell arrives behind the `desktop` feature.

pub mod allocator;
pub mod cache;
pub mod chat;
pub mod chat_api;
pub mod chatkit;
pub mod config;
pub mod controller;
mod deadline;
pub mod dispatch;
pub mod error;
pub mod gateway;
pub mod members;
pub mod providers;
pub mod request_log;
pub mod search_api;
pub mod secrets;
pub mod team;
pub mod telemetry;
pub mod tls;
pub mod usage;
pub mod voice_api;
pub mod wire;
mod workers;

pub use config::Config;
pub use error::{GatewayError, ProviderError};
pub use gateway::{bind, router, serve, AppState, BindError};
pub use request_log::RequestLog;
pub use secrets::SecretStore;
