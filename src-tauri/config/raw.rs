//! The settings file exactly as it is on disk. Unknown keys are refused so a typo is
//! reported instead of silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The port a fresh install listens on: clear of the dev servers designers already run
/// (3000, 5173, 8000, 8080, 1234, 1337, 4000, 8787, 11434).
pub const DEFAULT_PORT: u16 = 5711;
/// The HTTPS port: the next one up.
pub const DEFAULT_HTTPS_PORT: u16 = 5712;
pub(crate) const DEMO_MODEL: &str = "protogate-demo";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub host: String,
    pub port: u16,
    /// The provider that answers when a request names none; the first one when unset
    /// (not the fresh install's "demo": a file that lists providers may not have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_provider: Option<String>,
    /// The provider that transcribes when a request names none; else the first that can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_voice_provider: Option<String>,
    /// The provider that searches when a request names none; else the first that can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_search_provider: Option<String>,
    pub providers: Vec<ProviderSection>,
    pub cors: CorsSection,
    /// Extra names accepted in the `Host` header, beyond localhost and loopback IPs.
    pub allowed_hosts: Vec<String>,
    /// Every request must carry the access token from the keychain.
    pub require_access_token: bool,
    pub limits: LimitsSection,
    pub log: LogSection,
    /// How long a keychain answer is trusted before it is read again.
    pub keychain_cache_ms: u64,
    /// `https://localhost` beside plain http, for Safari.
    pub https: HttpsSection,
    /// ChatKit threads (`/api/chatkit`).
    pub chatkit: ChatKitSection,
    /// `GET /metrics` (Prometheus).
    pub metrics: super::telemetry::MetricsSection,
    /// Traces to an OpenTelemetry collector.
    pub telemetry: super::telemetry::TelemetrySection,
    /// Identical requests answered from memory.
    pub cache: super::cache::CacheSection,
    /// Names a prototype uses as its model, standing for several targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<super::routes::RouteSection>,
    /// Prices and budgets for the Usage view.
    pub usage: super::usage::UsageSection,
    /// Team mode: state shared with other replicas through Redis.
    #[serde(skip_serializing_if = "super::redis::RedisSection::is_off")]
    pub redis: super::redis::RedisSection,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatKitSection {
    /// Defaults to the OS data directory (`$XDG_DATA_HOME/protogate/chatkit` on Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Threads kept per origin; the oldest go first.
    pub max_threads: usize,
    /// Threads older than this are dropped.
    pub max_age_days: u64,
    /// Largest image a page may upload.
    pub max_upload_bytes: usize,
}

impl Default for ChatKitSection {
    fn default() -> Self {
        ChatKitSection {
            dir: None,
            max_threads: 100,
            max_age_days: 30,
            max_upload_bytes: 5 << 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsSection {
    pub enabled: bool,
    /// 0 takes any free port.
    pub port: u16,
}

impl Default for HttpsSection {
    fn default() -> Self {
        HttpsSection {
            enabled: true,
            port: DEFAULT_HTTPS_PORT,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Demo,
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    AsapGateway,
    /// Deepgram's speech-to-text (voice only).
    Deepgram,
    /// Tavily's web search (search only).
    Tavily,
    /// Brave's web search API (search only).
    Brave,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    pub id: String,
    pub kind: ProviderKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Models listed by `/v1/models` besides the default one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// An `openai`-kind provider with one also transcribes speech (`whisper-1`,
    /// `gpt-4o-mini-transcribe`, Groq's `whisper-large-v3-turbo`, a local server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_model: Option<String>,
    /// Extra headers on every upstream call (e.g. `X-Atlassian-UseCaseId`). Never
    /// credentials: those live in the keychain.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// How an `asap-gateway` provider signs its tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asap: Option<AsapSection>,
    /// `false`: the server takes no key and none is ever sent (a trusted LAN server on
    /// plain `http://`). `true`: a key is required even on this machine. Unset: required,
    /// except for servers on this machine, which get one only if it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_key: Option<bool>,
    #[serde(
        default = "default_chunk_delay_ms",
        skip_serializing_if = "is_default_chunk_delay"
    )]
    pub chunk_delay_ms: u64,
    /// The provider's own budget (its plan's requests per minute or hour): over it, a
    /// request waits its turn in a queue. None: no limit but the per-origin one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ProviderLimitsSection>,
}

/// A provider's `limits`, as written; checked in `config/provider_limits.rs`. Fields left
/// out stay out when the file is written again, so defaults can improve later.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderLimitsSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue: Option<usize>,
}

/// ASAP token settings (<https://s2sauth.bitbucket.io/spec/>); the private key itself is
/// the provider's secret in the keychain.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AsapSection {
    pub issuer: String,
    /// `<issuer>/<key-name>`, as the verifier looks the public key up by it.
    pub key_id: String,
    pub audience: Audience,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default = "default_lifetime_s")]
    pub lifetime_s: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

fn default_lifetime_s() -> u64 {
    600
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSection {
    pub allowed_origins: Vec<String>,
    pub allow_any_origin: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub max_body_bytes: usize,
    /// Largest audio a page may send to be transcribed.
    pub max_audio_bytes: usize,
    pub requests_per_minute: u32,
    pub burst: u32,
    pub max_concurrent_streams: usize,
    pub connect_timeout_ms: u64,
    pub first_byte_timeout_ms: u64,
    pub idle_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// Defaults to the OS data directory (`$XDG_DATA_HOME/protogate/logs` on Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub retention_days: usize,
    pub ring_size: usize,
    /// Prompt and answer text kept per record.
    pub max_text_chars: usize,
}

fn default_chunk_delay_ms() -> u64 {
    30
}

fn is_default_chunk_delay(ms: &u64) -> bool {
    *ms == default_chunk_delay_ms()
}

/// What the designer controls: Framer's editor, its canvas and its plugin hosts, local
/// dev servers, and the desktop window itself (Tauri's origins on Linux/macOS and
/// Windows). Published and staging sites (`*.framer.app`, `*.framer.website`, custom
/// domains) are not here: anyone can publish there, so each is approved by its origin.
pub const DEFAULT_ORIGINS: &[&str] = &[
    "https://framer.com",
    "https://www.framer.com",
    "https://*.framercanvas.com",
    "https://*.plugins.framercdn.com",
    "http://localhost:*",
    "http://127.0.0.1:*",
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            default_provider: Some("demo".into()),
            default_voice_provider: None,
            default_search_provider: None,
            providers: vec![ProviderSection {
                id: "demo".into(),
                kind: ProviderKind::Demo,
                base_url: None,
                default_model: Some(DEMO_MODEL.into()),
                models: vec![],
                transcription_model: None,
                headers: BTreeMap::new(),
                asap: None,
                needs_key: None,
                chunk_delay_ms: default_chunk_delay_ms(),
                limits: None,
            }],
            cors: CorsSection::default(),
            allowed_hosts: vec![],
            require_access_token: false,
            limits: LimitsSection::default(),
            log: LogSection::default(),
            keychain_cache_ms: 5_000,
            https: HttpsSection::default(),
            chatkit: ChatKitSection::default(),
            metrics: Default::default(),
            telemetry: Default::default(),
            cache: Default::default(),
            routes: vec![],
            usage: Default::default(),
            redis: Default::default(),
        }
    }
}

impl Default for CorsSection {
    fn default() -> Self {
        CorsSection {
            allowed_origins: DEFAULT_ORIGINS.iter().map(|s| s.to_string()).collect(),
            allow_any_origin: false,
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: 1 << 20,
            // OpenAI's own limit for a transcription upload.
            max_audio_bytes: 25 << 20,
            requests_per_minute: 120,
            burst: 30,
            max_concurrent_streams: 64,
            connect_timeout_ms: 10_000,
            first_byte_timeout_ms: 120_000,
            idle_timeout_ms: 60_000,
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            dir: None,
            retention_days: 14,
            ring_size: 1000,
            max_text_chars: 2000,
        }
    }
}

impl RawConfig {
    /// Pretty JSON, as written for a fresh install.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("settings always serialize");
        text.push('\n');
        text
    }
}
