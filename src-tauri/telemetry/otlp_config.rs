//! Where spans go and what they say about the gateway: from the settings' `telemetry`
//! section and the standard OpenTelemetry environment variables.
//!
//! The settings win over the environment, field by field, as OpenTelemetry's SDKs do
//! with configuration given in code (the Rust, Java and .NET exporters alike); the
//! specification itself sets no order between the two. Headers from both are sent, the
//! settings' on a name both give.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;

use crate::config::TelemetrySection;

/// OTLP/HTTP's traces path under a base endpoint.
const TRACES_PATH: &str = "/v1/traces";
/// Langfuse's OTLP endpoint under its host.
const LANGFUSE_PATH: &str = "/api/public/otel";
const DEFAULT_SERVICE_NAME: &str = "protogate";

/// A resolved destination for spans. Two are equal when every span would go to the
/// same place, the same way: a settings reload that changes neither keeps its exporter.
#[derive(Clone, PartialEq)]
pub struct Target {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub url: Url,
    /// Sent with every export; those from the environment are marked sensitive, as
    /// they may carry a token.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub service_name: String,
    /// Prompts and answers on the spans.
    pub capture_content: bool,
    /// The Langfuse preset's public key; its secret key is read from the keychain
    /// (account `langfuse`) at each export.
    pub langfuse_public_key: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &shown_url(&self.url))
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

/// The URL as a log line may show it: no user, password or query, which may hold a
/// credential.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

/// The target the settings and `env` (a variable's value by name) describe; `None`
/// when traces are off: no endpoint anywhere, or `OTEL_SDK_DISABLED=true`. A mistake
/// in the environment is an error in plain words that names the variable, never a value.
pub fn resolve(
    section: &TelemetrySection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Target>, String> {
    // The spec: an empty value is the same as an unset one.
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let url = if let Some(langfuse) = &section.langfuse {
        under(
            &parse(&langfuse.host, "telemetry.langfuse.host")?,
            LANGFUSE_PATH,
        )
    } else if let Some(base) = &section.otlp_endpoint {
        under(&parse(base, "telemetry.otlp_endpoint")?, "")
    } else if let Some(url) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        // Used as it is, by the spec.
        parse(&url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?
    } else if let Some(base) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
        under(&parse(&base, "OTEL_EXPORTER_OTLP_ENDPOINT")?, "")
    } else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    for var in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        if let Some(list) = env(var) {
            for (name, value) in parse_headers(&list, var)? {
                set(&mut headers, name, value);
            }
        }
    }
    for (name, value) in &section.headers {
        // Checked when the settings were read.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            set(&mut headers, name, value);
        }
    }
    if section.langfuse.is_some() {
        // Langfuse's ingestion version for OpenTelemetry exporters that post directly.
        let name = HeaderName::from_static("x-langfuse-ingestion-version");
        set(&mut headers, name, HeaderValue::from_static("4"));
    }
    let service_name = section
        .service_name
        .clone()
        .or_else(|| env("OTEL_SERVICE_NAME"))
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.into());
    Ok(Some(Target {
        url,
        headers,
        service_name,
        capture_content: section.capture_content,
        langfuse_public_key: section
            .langfuse
            .as_ref()
            .map(|l| l.public_key.trim().into()),
    }))
}

fn parse(text: &str, source: &str) -> Result<Url, String> {
    match Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(format!(
            "{source} is not an http:// or https:// URL; traces are off"
        )),
    }
}

/// `base` with `path` and then `/v1/traces` appended, unless it already ends so (a
/// user who pasted the full URL).
fn under(base: &Url, path: &str) -> Url {
    if base.path().ends_with(TRACES_PATH) {
        return base.clone();
    }
    let mut url = base.clone();
    let joined = format!("{}{path}{TRACES_PATH}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

fn set(headers: &mut Vec<(HeaderName, HeaderValue)>, name: HeaderName, value: HeaderValue) {
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value));
}

/// `k=v,k2=v2`, each part percent-decoded (the W3C Baggage format the spec names). The
/// values are sensitive: an error names the variable and the key, never a value.
fn parse_headers(list: &str, var: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for entry in list.split(',').filter(|e| !e.trim().is_empty()) {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!(
                "{var} has an entry without `=`; write it as name=value,name2=value2. \
                 Traces are off"
            ));
        };
        let key = decode(key).map_err(|_| format!("{var}: a header name is not UTF-8"))?;
        let bad =
            || format!("{var}: the header `{key}` is not a valid HTTP header; traces are off");
        let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| bad())?;
        let mut value = decode(value)
            .ok()
            .and_then(|v| HeaderValue::from_str(&v).ok())
            .ok_or_else(bad)?;
        value.set_sensitive(true);
        out.push((name, value));
    }
    Ok(out)
}

fn decode(text: &str) -> Result<std::borrow::Cow<'_, str>, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(text.trim()).decode_utf8()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn section(value: serde_json::Value) -> TelemetrySection {
        serde_json::from_value(value).unwrap()
    }

    fn resolved(value: serde_json::Value, env: &[(&str, &str)]) -> Option<Target> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&section(value), &|name| env.get(name).cloned()).unwrap()
    }

    fn header<'a>(target: &'a Target, name: &str) -> Option<&'a str> {
        let (_, value) = target.headers.iter().find(|(n, _)| n == name)?;
        value.to_str().ok()
    }

    #[test]
    fn nothing_configured_is_off() {
        assert!(resolved(json!({}), &[]).is_none());
        assert!(resolved(json!({}), &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).is_none());
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_used_as_it_is() {
        let base = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/otlp/")];
        let t = resolved(json!({}), &base).unwrap();
        assert_eq!(t.url.as_str(), "http://collector:4318/otlp/v1/traces");
        let both = [
            base[0],
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:9999/custom",
            ),
        ];
        let t = resolved(json!({}), &both).unwrap();
        assert_eq!(t.url.as_str(), "http://traces:9999/custom");
        let pasted = json!({"otlp_endpoint": "http://localhost:4318/v1/traces"});
        let t = resolved(pasted, &[]).unwrap();
        assert_eq!(t.url.as_str(), "http://localhost:4318/v1/traces");
    }

    #[test]
    fn settings_win_over_the_environment() {
        let env = [
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://env:4318/v1/traces",
            ),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=env,x-env-only=yes"),
        ];
        let settings = json!({"otlp_endpoint": "http://file:4318", "service_name": "from-file",
                              "headers": {"x-team": "file"}});
        let t = resolved(settings, &env).unwrap();
        assert_eq!(t.url.as_str(), "http://file:4318/v1/traces");
        assert_eq!(t.service_name, "from-file");
        assert_eq!(header(&t, "x-team"), Some("file"));
        assert_eq!(
            header(&t, "x-env-only"),
            Some("yes"),
            "headers from both are sent"
        );
        let t = resolved(json!({}), &env).unwrap();
        assert_eq!(t.service_name, "from-env");
        assert_eq!(
            resolved(json!({"otlp_endpoint": "http://a:1"}), &[])
                .unwrap()
                .service_name,
            "protogate"
        );
    }

    #[test]
    fn env_headers_are_percent_decoded_and_sensitive() {
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                " Authorization = Bearer%20tok%2Cen ,x-b=1",
            ),
        ];
        let t = resolved(json!({}), &env).unwrap();
        assert_eq!(header(&t, "authorization"), Some("Bearer tok,en"));
        assert!(t.headers.iter().all(|(_, v)| v.is_sensitive()));
    }

    #[test]
    fn a_bad_env_header_names_the_variable_never_the_value() {
        let env: HashMap<&str, &str> = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "token-hunter2"),
        ]
        .into();
        let err = resolve(&section(json!({})), &|n| env.get(n).map(|v| v.to_string())).unwrap_err();
        assert!(err.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_langfuse_preset_posts_to_its_otel_path() {
        let settings =
            json!({"langfuse": {"host": "https://lf.example.com/", "public_key": "pk-lf-1"}});
        let t = resolved(
            settings,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
        )
        .unwrap();
        assert_eq!(
            t.url.as_str(),
            "https://lf.example.com/api/public/otel/v1/traces"
        );
        assert_eq!(t.langfuse_public_key.as_deref(), Some("pk-lf-1"));
        assert_eq!(header(&t, "x-langfuse-ingestion-version"), Some("4"));
    }

    #[test]
    fn otel_sdk_disabled_turns_traces_off() {
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ];
        assert!(resolved(json!({"otlp_endpoint": "http://a:1"}), &env).is_none());
    }

    #[test]
    fn a_shown_url_has_no_credentials() {
        let url = Url::parse("https://user:pw@host:1/v1/traces?token=abc").unwrap();
        assert_eq!(shown_url(&url), "https://host:1/v1/traces");
    }
}
