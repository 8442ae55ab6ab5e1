//! One provider's settings, checked: its id, URL, model, headers and ASAP settings.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::asap::AsapSettings;
use super::provider_limits::ProviderLimits;
use super::raw::{ProviderKind, ProviderSection, DEMO_MODEL};
use crate::secrets::ACCESS_TOKEN_ACCOUNT;

/// Headers that would put a credential in the settings file (OpenAI, Anthropic, Azure
/// OpenAI's `api-key`, Gemini's `x-goog-api-key`, proxies, cookies).
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "cookie",
];

/// Whether a provider's upstream gets a stored key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// A request without a key fails before it is sent.
    Required,
    /// A server on this machine (Ollama, LM Studio): the key is sent if one is stored.
    IfStored,
    /// The built-in demo, or `"needs_key": false`: no key is read or sent.
    Never,
}

/// Whether a URL points at this machine, where a key cannot be overheard on the way.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A provider as the gateway uses it: checked, with its URL parsed.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    pub base_url: Option<reqwest::Url>,
    pub default_model: String,
    pub models: Vec<String>,
    /// The speech-to-text model of an `openai`-kind provider that transcribes.
    pub transcription_model: Option<String>,
    /// Sent on every upstream call; checked to hold no credential.
    pub headers: HeaderMap,
    pub asap: Option<AsapSettings>,
    pub key: KeyUse,
    /// Pace of the demo provider's stream.
    pub chunk_delay: Duration,
    /// The provider's own budget, over which requests queue; `None`: no limit.
    pub limits: Option<ProviderLimits>,
}

impl ProviderConfig {
    /// Checks one `providers[]` entry; the error names the field (`base_url`,
    /// `headers.X`, `asap.key_id`) and says what is wrong.
    pub(super) fn from_section(p: ProviderSection) -> Result<Self, (String, String)> {
        let err = |field: &str, message: String| Err((field.to_string(), message));
        let id_ok =
            p.id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if p.id.is_empty() || !id_ok {
            return err(
                "id",
                format!("`{}` must be lowercase letters, digits, `-` or `_`", p.id),
            );
        }
        if p.id == ACCESS_TOKEN_ACCOUNT || p.id == crate::tls::CA_ACCOUNT {
            return err("id", format!("`{}` is reserved for the access token", p.id));
        }
        let base_url = match (&p.kind, p.base_url) {
            (ProviderKind::Demo, _) => None,
            (_, None) => return err("base_url", "is required".into()),
            (_, Some(url)) => match reqwest::Url::parse(&url) {
                Err(e) => return err("base_url", format!("`{url}`: {e}")),
                Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                    return err(
                        "base_url",
                        format!("`{url}` must start with http:// or https://"),
                    )
                }
                Ok(u) => Some(u),
            },
        };
        let key = key_use(&p.kind, base_url.as_ref(), p.needs_key)?;
        let default_model = match p.default_model {
            Some(m) if !m.is_empty() => m,
            _ if p.kind == ProviderKind::Demo => DEMO_MODEL.to_string(),
            _ => match super::capability::default_model(p.kind) {
                Some(m) => m.to_string(),
                None => return err("default_model", "is required".into()),
            },
        };
        let transcription_model = match (p.kind, p.transcription_model) {
            (_, None) => None,
            (ProviderKind::OpenAi, Some(m)) if !m.trim().is_empty() => Some(m),
            (ProviderKind::OpenAi, Some(_)) => {
                return err("transcription_model", "must not be empty".into())
            }
            (kind, Some(_)) => {
                return err(
                    "transcription_model",
                    format!(
                        "applies only to kind \"openai\" (a {kind} provider transcribes with \
                         its default_model, or not at all)"
                    ),
                )
            }
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &p.headers {
            let field = format!("headers.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                return err(&field, "is not a valid header name".into());
            };
            if CREDENTIAL_HEADERS.contains(&header.as_str()) {
                return err(
                    &field,
                    "carries a credential: keep it in the keychain (`protogate secrets set`), \
                     not in this file"
                        .into(),
                );
            }
            let Ok(value) = HeaderValue::from_str(value) else {
                return err(&field, "is not a valid header value".into());
            };
            headers.insert(header, value);
        }
        let asap = match (p.kind, p.asap) {
            (ProviderKind::AsapGateway, Some(a)) => {
                Some(AsapSettings::from_section(a).map_err(|(f, m)| (format!("asap.{f}"), m))?)
            }
            (ProviderKind::AsapGateway, None) => {
                return err("asap", "is required: issuer, key_id, audience".into())
            }
            (_, Some(_)) => return err("asap", "applies only to kind \"asap-gateway\"".into()),
            (_, None) => None,
        };
        let limits = p.limits.map(ProviderLimits::from_section).transpose()?;
        Ok(ProviderConfig {
            id: p.id,
            kind: p.kind,
            base_url,
            default_model,
            models: p.models,
            transcription_model,
            headers,
            asap,
            key,
            chunk_delay: Duration::from_millis(p.chunk_delay_ms),
            limits,
        })
    }
}

/// Decides [`KeyUse`], refusing a key on plain `http://` beyond this machine: anyone on
/// the network path could read it.
fn key_use(
    kind: &ProviderKind,
    url: Option<&reqwest::Url>,
    needs_key: Option<bool>,
) -> Result<KeyUse, (String, String)> {
    let Some(url) = url else {
        return Ok(KeyUse::Never);
    };
    let err = |field: &str, message: String| Err((field.to_string(), message));
    let local = is_loopback(url);
    let key = match (kind, needs_key) {
        (ProviderKind::AsapGateway, Some(false)) => {
            return err(
                "needs_key",
                "an asap-gateway provider always signs its calls with its key".into(),
            )
        }
        (_, Some(false)) => KeyUse::Never,
        (ProviderKind::AsapGateway, _) | (_, Some(true)) => KeyUse::Required,
        (_, None) if local => KeyUse::IfStored,
        (_, None) => KeyUse::Required,
    };
    if key != KeyUse::Never && url.scheme() == "http" && !local {
        let host = url.host_str().unwrap_or_default();
        let mut message = format!(
            "`{url}` is plain http:// to {host}, another machine: a key sent there can be read \
             on the network, so Protogate sends keys only over https:// or to this machine. \
             Use https://"
        );
        if *kind != ProviderKind::AsapGateway {
            message.push_str(
                ", or, for a trusted server on your network that needs no key, set \
                 \"needs_key\": false on this provider",
            );
        }
        return err("base_url", message);
    }
    Ok(key)
}
