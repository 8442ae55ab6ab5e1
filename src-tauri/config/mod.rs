//! Settings: the JSON file on disk (`RawConfig`), checked once into a `Config` the
//! gateway can trust. The file is shared by the desktop app and `protogate serve` and
//! never holds a secret; secrets live in the keychain (see `secrets`).

mod asap;
mod cache;
mod capability;
mod origin;
mod provider;
mod provider_limits;
mod raw;
mod redis;
mod routes;
mod telemetry;
mod usage;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use asap::AsapSettings;
pub use cache::CacheSection;
pub use capability::Capability;
pub use origin::{HostPolicy, OriginPattern, OriginPolicy};
pub use provider::{is_loopback, KeyUse, ProviderConfig};
pub use provider_limits::{ProviderLimits, RatePer};
pub use raw::{
    AsapSection, Audience, ChatKitSection, CorsSection, HttpsSection, LimitsSection, LogSection,
    ProviderKind, ProviderLimitsSection, ProviderSection, RawConfig, DEFAULT_HTTPS_PORT,
    DEFAULT_ORIGINS, DEFAULT_PORT,
};
pub use redis::RedisSection;
pub use routes::{RouteSection, Strategy};
pub use telemetry::{MetricsSection, TelemetrySection};
pub use usage::{BudgetSection, PriceSection, UsageSection};

/// A mistake in the settings, told with the file and the field so it can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    #[error("no config directory: set XDG_CONFIG_HOME or pass --config")]
    NoConfigDir,
}

/// Limits that keep one prototype from starving the machine or the upstream bill.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_audio_bytes: usize,
    pub requests_per_minute: u32,
    pub burst: u32,
    pub max_concurrent_streams: usize,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Where and how long request records are kept.
#[derive(Clone, Debug)]
pub struct LogSettings {
    pub dir: Option<PathBuf>,
    pub retention_days: usize,
    pub ring_size: usize,
    pub max_text_chars: usize,
}

/// Validated settings. Built only by [`Config::from_raw`], so every value in it is usable.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    /// A chat provider.
    pub default_provider: String,
    /// The voice and search providers used when a request names none, if any can.
    pub default_voice_provider: Option<String>,
    pub default_search_provider: Option<String>,
    pub providers: Vec<ProviderConfig>,
    pub origins: OriginPolicy,
    pub hosts: HostPolicy,
    pub require_access_token: bool,
    pub limits: Limits,
    pub log: LogSettings,
    /// How long a keychain answer is trusted before it is read again.
    pub keychain_cache: Duration,
    /// The HTTPS port (`https://localhost`), when HTTPS is on.
    pub https_port: Option<u16>,
    pub chatkit: ChatKitSettings,
    pub metrics: MetricsSection,
    pub telemetry: TelemetrySection,
    pub cache: CacheSection,
    pub routes: Vec<RouteSection>,
    pub usage: UsageSection,
    pub redis: RedisSection,
}

/// Where ChatKit threads are kept, and how many.
#[derive(Clone, Debug)]
pub struct ChatKitSettings {
    /// `None` when the OS has no data directory: threads are then kept in memory.
    pub dir: Option<PathBuf>,
    pub bounds: crate::chatkit::store::Bounds,
    pub max_upload_bytes: usize,
}

impl Config {
    /// Checks a parsed file; `source` names it in error messages.
    pub fn from_raw(raw: RawConfig, source: &str) -> Result<Self, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: source.to_string(),
            field: field.to_string(),
            message,
        };
        let host: IpAddr = raw
            .host
            .parse()
            .map_err(|_| invalid("host", format!("`{}` is not an IP address", raw.host)))?;
        if !host.is_loopback() && !raw.require_access_token {
            return Err(invalid(
                "host",
                format!(
                    "serving on {host} exposes the gateway to the network; set \
                     \"require_access_token\": true to do that"
                ),
            ));
        }

        let mut providers = Vec::with_capacity(raw.providers.len());
        for (i, p) in raw.providers.into_iter().enumerate() {
            if providers.iter().any(|q: &ProviderConfig| q.id == p.id) {
                let field = format!("providers[{i}].id");
                return Err(invalid(&field, format!("`{}` is used twice", p.id)));
            }
            let provider = ProviderConfig::from_section(p)
                .map_err(|(field, m)| invalid(&format!("providers[{i}].{field}"), m))?;
            providers.push(provider);
        }
        if providers.is_empty() {
            return Err(invalid(
                "providers",
                "is empty; add at least one, e.g. {\"id\": \"demo\", \"kind\": \"demo\"}".into(),
            ));
        }
        let default_for = |cap, field: &str, configured: Option<String>| {
            capability::default_for(&providers, cap, configured).map_err(|m| invalid(field, m))
        };
        let default_provider = default_for(Capability::Chat, "default_provider", raw.default_provider)?
            .ok_or_else(|| {
                invalid(
                    "providers",
                    "has no provider that can chat; add one, e.g. {\"id\": \"demo\", \"kind\": \"demo\"}"
                        .into(),
                )
            })?;
        let default_voice_provider = default_for(
            Capability::Voice,
            "default_voice_provider",
            raw.default_voice_provider,
        )?;
        let default_search_provider = default_for(
            Capability::Search,
            "default_search_provider",
            raw.default_search_provider,
        )?;

        let mut origins = Vec::with_capacity(raw.cors.allowed_origins.len());
        for (i, pattern) in raw.cors.allowed_origins.iter().enumerate() {
            origins.push(
                OriginPattern::parse(pattern)
                    .map_err(|m| invalid(&format!("cors.allowed_origins[{i}]"), m))?,
            );
        }
        if raw.cors.allow_any_origin && !raw.require_access_token {
            return Err(invalid(
                "cors.allow_any_origin",
                "lets every website you open use your providers; it needs \
                 \"require_access_token\": true. To allow one site, add its origin to \
                 cors.allowed_origins instead"
                    .into(),
            ));
        }
        let origins = if raw.cors.allow_any_origin {
            OriginPolicy::any()
        } else {
            OriginPolicy::list(origins)
        };
        for (i, name) in raw.allowed_hosts.iter().enumerate() {
            if name.is_empty() || name.contains(['/', ' ', ':']) {
                return Err(invalid(
                    &format!("allowed_hosts[{i}]"),
                    format!("`{name}` must be a bare host name, without scheme or port"),
                ));
            }
        }

        let section = |name: &'static str| {
            move |(field, m): (String, String)| invalid(&format!("{name}.{field}"), m)
        };
        raw.telemetry.check().map_err(section("telemetry"))?;
        raw.cache
            .check(&providers, &raw.routes)
            .map_err(section("cache"))?;
        raw.usage.check().map_err(section("usage"))?;
        raw.redis.check().map_err(section("redis"))?;
        routes::check(&raw.routes, &providers)
            .map_err(|(field, m)| invalid(&format!("routes{field}"), m))?;

        let l = raw.limits;
        let positive = |field: &str, v: u64| positive(&invalid, &format!("limits.{field}"), v);
        let limits = Limits {
            max_body_bytes: positive("max_body_bytes", l.max_body_bytes as u64)? as usize,
            max_audio_bytes: positive("max_audio_bytes", l.max_audio_bytes as u64)? as usize,
            requests_per_minute: positive("requests_per_minute", l.requests_per_minute.into())?
                as u32,
            burst: positive("burst", l.burst.into())? as u32,
            max_concurrent_streams: positive(
                "max_concurrent_streams",
                l.max_concurrent_streams as u64,
            )? as usize,
            connect_timeout: Duration::from_millis(positive(
                "connect_timeout_ms",
                l.connect_timeout_ms,
            )?),
            first_byte_timeout: Duration::from_millis(positive(
                "first_byte_timeout_ms",
                l.first_byte_timeout_ms,
            )?),
            idle_timeout: Duration::from_millis(positive("idle_timeout_ms", l.idle_timeout_ms)?),
        };

        Ok(Config {
            host,
            port: raw.port,
            default_provider,
            default_voice_provider,
            default_search_provider,
            providers,
            origins,
            hosts: HostPolicy::new(raw.allowed_hosts).with_ip_addresses(!host.is_loopback()),
            require_access_token: raw.require_access_token,
            limits,
            log: LogSettings {
                dir: raw.log.dir,
                retention_days: raw.log.retention_days.max(1),
                ring_size: raw.log.ring_size.max(1),
                max_text_chars: raw.log.max_text_chars,
            },
            keychain_cache: Duration::from_millis(raw.keychain_cache_ms),
            https_port: raw.https.enabled.then_some(raw.https.port),
            chatkit: chatkit_settings(raw.chatkit, invalid)?,
            metrics: raw.metrics,
            telemetry: raw.telemetry,
            cache: raw.cache,
            routes: raw.routes,
            usage: raw.usage,
            redis: raw.redis,
        })
    }

    /// The provider named `id`.
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// `v`, or the error that `field` must be above 0.
fn positive(
    invalid: &impl Fn(&str, String) -> ConfigError,
    field: &str,
    v: u64,
) -> Result<u64, ConfigError> {
    if v == 0 {
        Err(invalid(field, "must be above 0".into()))
    } else {
        Ok(v)
    }
}

fn chatkit_settings(
    raw: ChatKitSection,
    invalid: impl Fn(&str, String) -> ConfigError,
) -> Result<ChatKitSettings, ConfigError> {
    let positive = |field: &str, v: u64| positive(&invalid, &format!("chatkit.{field}"), v);
    Ok(ChatKitSettings {
        dir: raw
            .dir
            .or_else(|| project_dirs().map(|d| d.data_local_dir().join("chatkit"))),
        bounds: crate::chatkit::store::Bounds {
            max_threads: positive("max_threads", raw.max_threads as u64)? as usize,
            max_age: Duration::from_secs(positive("max_age_days", raw.max_age_days)? * 86_400),
        },
        max_upload_bytes: positive("max_upload_bytes", raw.max_upload_bytes as u64)? as usize,
    })
}

/// The settings file in the OS config directory (`$XDG_CONFIG_HOME/protogate/settings.json`).
pub fn default_path() -> Result<PathBuf, ConfigError> {
    project_dirs()
        .map(|d| d.config_dir().join("settings.json"))
        .ok_or(ConfigError::NoConfigDir)
}

/// The directory for rolling request logs when the settings name none.
pub fn default_log_dir() -> Option<PathBuf> {
    project_dirs().map(|d| d.data_local_dir().join("logs"))
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "protogate", "protogate")
}

/// Reads and checks the file at `path`, writing the defaults there first if it is missing.
pub fn load_or_create(path: &Path) -> Result<Config, ConfigError> {
    let source = path.display().to_string();
    Config::from_raw(read_raw_or_create(path)?, &source)
}

/// Reads the file at `path` as written, before checks; a missing file is an error.
pub fn read_raw(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_raw(&text, &path.display().to_string())
}

/// Reads the file at `path` as written, before checks, so the command line can override
/// fields first. A missing file is created with the defaults.
pub fn read_raw_or_create(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = RawConfig::default().to_json();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| ConfigError::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(path, &text).map_err(|source| ConfigError::Write {
                path: path.to_path_buf(),
                source,
            })?;
            text
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse_raw(&text, &path.display().to_string())
}

/// Writes `text` to `path` through a temporary file in the same directory, renamed over
/// the old file: a crash or a full disk never leaves a half-written settings file.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    let write_err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(write_err)?;
    temp.as_file().sync_all().map_err(write_err)?;
    temp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// Parses and checks settings text; `source` names it in error messages.
pub fn parse(text: &str, source: &str) -> Result<Config, ConfigError> {
    Config::from_raw(parse_raw(text, source)?, source)
}

/// Reads settings given as JSON (the window's form), naming the field of a mistake.
pub fn parse_raw_value(value: serde_json::Value, source: &str) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        ConfigError::Invalid {
            path: source.to_string(),
            field,
            message: e.into_inner().to_string(),
        }
    })
}

fn parse_raw(text: &str, source: &str) -> Result<RawConfig, ConfigError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let (field, message) = if inner.is_syntax() || inner.is_eof() {
            ("(file)".to_string(), format!("not valid JSON: {inner}"))
        } else if field == "." {
            ("(file)".to_string(), inner.to_string())
        } else {
            (field, inner.to_string())
        };
        ConfigError::Invalid {
            path: source.to_string(),
            field,
            message,
        }
    })
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Demo => "demo",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::AsapGateway => "asap-gateway",
            ProviderKind::Deepgram => "deepgram",
            ProviderKind::Tavily => "tavily",
            ProviderKind::Brave => "brave",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "settings.json").unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid_and_use_the_demo_provider() {
        let config = parse(&RawConfig::default().to_json(), "defaults").expect("defaults load");
        assert_eq!(config.port, DEFAULT_PORT);
        assert_eq!(config.default_provider, "demo");
        assert!(config.host.is_loopback(), "binds loopback by default");
        assert!(config
            .origins
            .allows("https://project-abc.framercanvas.com"));
    }

    #[test]
    fn broken_json_names_the_file() {
        let e = err("{\"port\": 5711,");
        assert!(e.starts_with("settings.json: "), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = err(r#"{"port": "high"}"#);
        assert!(e.contains("port"), "{e}");
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn unknown_provider_kind_names_the_field() {
        let e = err(r#"{"providers": [{"id": "x", "kind": "openia", "base_url": "http://a"}]}"#);
        assert!(e.contains("providers[0].kind"), "{e}");
        assert!(e.contains("openia"), "{e}");
    }

    #[test]
    fn bad_url_and_origin_are_reported() {
        let e = err(
            r#"{"default_provider": "x", "providers": [{"id": "x", "kind": "openai", "base_url": "not a url", "default_model": "m"}]}"#,
        );
        assert!(e.contains("providers[0].base_url"), "{e}");
        let e = err(r#"{"cors": {"allowed_origins": ["https://fr*mer.com"]}}"#);
        assert!(e.contains("cors.allowed_origins[0]"), "{e}");
    }

    #[test]
    fn unknown_default_provider_lists_the_known_ones() {
        let e = err(r#"{"default_provider": "claude"}"#);
        assert!(e.contains("default_provider") && e.contains("demo"), "{e}");
    }

    #[test]
    fn typo_in_a_key_is_refused_not_ignored() {
        let e = err(r#"{"cors": {"alowed_origins": []}}"#);
        assert!(e.contains("alowed_origins"), "{e}");
    }

    #[test]
    fn lan_binding_requires_the_access_token() {
        let e = err(r#"{"host": "0.0.0.0"}"#);
        assert!(e.contains("require_access_token"), "{e}");
        parse(
            r#"{"host": "0.0.0.0", "require_access_token": true}"#,
            "lan",
        )
        .expect("LAN with a token is allowed");
    }

    #[test]
    fn credentials_in_headers_are_refused() {
        let e = err(
            r#"{"providers": [{"id": "demo", "kind": "demo"}, {"id": "x", "kind": "openai", "base_url": "https://a", "default_model": "m", "headers": {"Authorization": "Bearer sk-1"}}]}"#,
        );
        assert!(
            e.contains("providers[1].headers.Authorization") && e.contains("keychain"),
            "{e}"
        );
        for header in ["api-key", "X-Goog-Api-Key"] {
            let e = err(&format!(
                r#"{{"providers": [{{"id": "x", "kind": "openai", "base_url": "https://a", "default_model": "m", "headers": {{"{header}": "k"}}}}]}}"#
            ));
            assert!(e.contains(&format!("headers.{header}")), "{e}");
        }
    }

    #[test]
    fn a_key_is_never_sent_over_plain_http_to_another_machine() {
        let e = err(
            r#"{"providers": [{"id": "lan", "kind": "openai", "base_url": "http://192.168.1.20:8000/v1", "default_model": "m"}]}"#,
        );
        assert!(
            e.contains("providers[0].base_url") && e.contains("needs_key"),
            "the error says why and how to allow a keyless LAN server: {e}"
        );
        let ok = parse(
            r#"{"providers": [{"id": "lan", "kind": "openai", "base_url": "http://192.168.1.20:8000/v1", "default_model": "m", "needs_key": false}]}"#,
            "t",
        )
        .expect("a keyless LAN server is allowed when said so");
        assert_eq!(ok.providers[0].key, KeyUse::Never);
        let e = err(
            r#"{"providers": [{"id": "gw", "kind": "asap-gateway", "base_url": "http://gw.example/invoke", "default_model": "c", "asap": {"issuer": "p", "key_id": "p/k", "audience": "a"}}]}"#,
        );
        assert!(e.contains("providers[0].base_url"), "{e}");
        let local = parse(
            r#"{"providers": [{"id": "ollama", "kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "default_model": "m"}]}"#,
            "t",
        )
        .unwrap();
        assert_eq!(local.providers[0].key, KeyUse::IfStored);
    }

    #[test]
    fn the_first_provider_is_the_default_when_none_is_named() {
        let config = parse(
            r#"{"providers": [{"id": "claude", "kind": "anthropic", "base_url": "https://api.anthropic.com", "default_model": "c"}, {"id": "demo", "kind": "demo"}]}"#,
            "t",
        )
        .expect("no default_provider is fine");
        assert_eq!(config.default_provider, "claude");
        let e = err(r#"{"providers": []}"#);
        assert!(e.contains("providers") && e.contains("at least one"), "{e}");
    }

    #[test]
    fn allowing_any_origin_needs_the_access_token() {
        let e = err(r#"{"cors": {"allow_any_origin": true}}"#);
        assert!(
            e.contains("cors.allow_any_origin") && e.contains("require_access_token"),
            "{e}"
        );
        parse(
            r#"{"cors": {"allow_any_origin": true}, "require_access_token": true}"#,
            "t",
        )
        .expect("any origin with a token is allowed");
    }

    #[test]
    fn a_rewrite_keeps_every_field() {
        let text = r#"{"providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": 5}, {"id": "lan", "kind": "openai", "base_url": "http://10.0.0.2/v1", "default_model": "m", "needs_key": false}]}"#;
        let raw = parse_raw(text, "t").unwrap();
        let again = parse_raw(&raw.to_json(), "t").unwrap();
        assert_eq!(again.providers[0].chunk_delay_ms, 5);
        assert_eq!(again.providers[1].needs_key, Some(false));
    }

    #[test]
    fn asap_settings_are_checked() {
        let provider = |asap: &str| {
            format!(
                r#"{{"providers": [{{"id": "demo", "kind": "demo"}}, {{"id": "gw", "kind": "asap-gateway", "base_url": "https://gw.example/invoke", "default_model": "claude", "asap": {asap}}}]}}"#
            )
        };
        let ok = parse(
            &provider(r#"{"issuer": "proto", "key_id": "proto/key1", "audience": "ai-gateway"}"#),
            "t",
        )
        .unwrap();
        let asap = ok.provider("gw").unwrap().asap.as_ref().unwrap();
        assert_eq!(asap.lifetime, Duration::from_secs(600));
        let e = err(&provider(
            r#"{"issuer": "proto", "key_id": "other/key1", "audience": "a"}"#,
        ));
        assert!(
            e.contains("providers[1].asap.key_id") && e.contains("proto/"),
            "{e}"
        );
        let e = err(&provider(
            r#"{"issuer": "proto", "key_id": "proto/../x", "audience": "a"}"#,
        ));
        assert!(e.contains("asap.key_id"), "{e}");
        let e = err(&provider(
            r#"{"issuer": "proto", "key_id": "proto/k", "audience": "a", "lifetime_s": 7200}"#,
        ));
        assert!(e.contains("asap.lifetime_s"), "{e}");
        let e = err(
            r#"{"providers": [{"id": "demo", "kind": "demo"}, {"id": "gw", "kind": "asap-gateway", "base_url": "https://gw.example/invoke", "default_model": "c"}]}"#,
        );
        assert!(e.contains("providers[1].asap"), "{e}");
    }

    #[test]
    fn missing_file_is_created_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/settings.json");
        let config = load_or_create(&path).expect("created");
        assert_eq!(config.port, DEFAULT_PORT);
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.contains("\"default_provider\": \"demo\""),
            "{written}"
        );
    }
}
