//! `metrics` and `telemetry` in the settings: Prometheus metrics and OpenTelemetry traces,
//! both off by default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /metrics` in Prometheus' text format. Off, the path is a 404 like any unknown
/// one and nothing is counted.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub enabled: bool,
}

/// Traces to an OpenTelemetry collector (OTLP over HTTP, protobuf), one span per model
/// call. Off while no endpoint is set here or in the standard `OTEL_EXPORTER_OTLP_*`
/// environment variables; a value set here wins over the environment's.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// The collector's base URL (`/v1/traces` is added unless it is there already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Headers for the collector; never credentials (the file holds no secret):
    /// those go in `OTEL_EXPORTER_OTLP_HEADERS`, or the keychain for Langfuse.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `service.name` of the spans; else `OTEL_SERVICE_NAME`, else "protogate".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Prompts and answers on the spans (cut to `log.max_text_chars`); off by default,
    /// since the collector may be somebody else's.
    pub capture_content: bool,
    /// The Langfuse preset: its OTLP endpoint, and Basic auth from this public key and
    /// the secret key in the keychain (account `langfuse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub langfuse: Option<LangfuseSection>,
}

/// Where Langfuse is and whose project the traces go to.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LangfuseSection {
    /// Langfuse Cloud (EU) by default; `https://us.cloud.langfuse.com`, or your own.
    pub host: String,
    /// `pk-lf-...`, from the project's settings in Langfuse.
    pub public_key: String,
}

impl Default for LangfuseSection {
    fn default() -> Self {
        LangfuseSection {
            host: "https://cloud.langfuse.com".into(),
            public_key: String::new(),
        }
    }
}

/// Header names that carry credentials, refused in the settings file.
const CREDENTIAL_WORDS: [&str; 6] = [
    "authorization",
    "cookie",
    "key",
    "token",
    "secret",
    "password",
];

impl TelemetrySection {
    /// A mistake in the section, as (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        let err = |field: &str, message: String| Err((field.to_string(), message));
        if let Some(endpoint) = &self.otlp_endpoint {
            if let Err(why) = check_url(endpoint) {
                return err("otlp_endpoint", why);
            }
            if self.langfuse.is_some() {
                return err(
                    "langfuse",
                    "the Langfuse preset has an endpoint of its own: remove otlp_endpoint, or \
                     remove langfuse to send to your collector instead"
                        .into(),
                );
            }
        }
        for (name, value) in &self.headers {
            let field = format!("headers.{name}");
            let lower = name.to_ascii_lowercase();
            if CREDENTIAL_WORDS.iter().any(|w| lower.contains(w)) {
                return err(
                    &field,
                    "looks like a credential, and the settings file never holds one: give it \
                     in OTEL_EXPORTER_OTLP_HEADERS instead (or use the Langfuse preset, whose \
                     key is kept in the keychain)"
                        .into(),
                );
            }
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return err(&field, "is not a valid HTTP header name".into());
            }
            if reqwest::header::HeaderValue::from_str(value).is_err() {
                return err(&field, "has characters an HTTP header cannot carry".into());
            }
        }
        if self
            .service_name
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return err(
                "service_name",
                "is empty: remove it for \"protogate\"".into(),
            );
        }
        if let Some(langfuse) = &self.langfuse {
            if let Err(why) = check_url(&langfuse.host) {
                return err("langfuse.host", why);
            }
            let key = langfuse.public_key.trim();
            if key.starts_with("sk-") {
                return err(
                    "langfuse.public_key",
                    "this is the secret key: it goes to the keychain (`protogate secrets set \
                     langfuse`, or the window's Traces settings), and the public key \
                     (pk-lf-...) goes here"
                        .into(),
                );
            }
            if key.is_empty() {
                return err(
                    "langfuse.public_key",
                    "is empty: copy the public key (pk-lf-...) from your Langfuse project's \
                     settings"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// An `http` or `https` URL with a host, and no credentials in it.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("`{text}` is not a URL ({e}); write it as http://host:4318"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{text}` must be an http:// or https:// URL with a host"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold a user name or password: the settings file never holds a \
                    credential"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(section: serde_json::Value) -> Result<(), (String, String)> {
        serde_json::from_value::<TelemetrySection>(section)
            .unwrap()
            .check()
    }

    #[test]
    fn no_credential_reaches_the_settings_file() {
        let (field, why) = check(serde_json::json!({"otlp_endpoint": "http://c:4318",
            "headers": {"Authorization": "Bearer x"}}))
        .unwrap_err();
        assert_eq!(field, "headers.Authorization");
        assert!(why.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{why}");
        let (field, _) =
            check(serde_json::json!({"otlp_endpoint": "http://u:p@c:4318"})).unwrap_err();
        assert_eq!(field, "otlp_endpoint");
        let (field, why) =
            check(serde_json::json!({"langfuse": {"public_key": "sk-lf-123"}})).unwrap_err();
        assert_eq!(field, "langfuse.public_key");
        assert!(why.contains("keychain"), "{why}");
    }

    #[test]
    fn the_langfuse_preset_and_a_collector_are_one_or_the_other() {
        let both = serde_json::json!({"otlp_endpoint": "http://c:4318",
            "langfuse": {"public_key": "pk-lf-1"}});
        assert_eq!(check(both).unwrap_err().0, "langfuse");
        assert!(check(serde_json::json!({"langfuse": {"public_key": "pk-lf-1"}})).is_ok());
        assert!(check(serde_json::json!({"otlp_endpoint": "localhost:4318"})).is_err());
    }
}
