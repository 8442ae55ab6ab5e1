//! A finished request as an OpenTelemetry span, following the GenAI semantic conventions
//! (`gen_ai.*`), and a batch of them as one OTLP export request.
//!
//! The request's task only copies what a span needs ([`Finished`]); the span, its ids and
//! its attributes are written on the exporter's task, in protobuf (`otlp_proto.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::otlp_proto::Message;
use crate::chat::Usage;
use crate::config::{Config, ProviderKind};
use crate::request_log::Attempt;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the spans say about a configured provider.
#[derive(Debug)]
pub struct ProviderInfo {
    pub id: String,
    /// `gen_ai.provider.name`: the API the provider speaks, as the conventions name it.
    pub name: &'static str,
    /// `server.address` and `server.port`, from its base URL when it has one.
    pub server: Option<(String, Option<u16>)>,
}

impl ProviderInfo {
    /// Each configured provider by id.
    pub fn all(config: &Config) -> std::collections::HashMap<String, Arc<ProviderInfo>> {
        let info = |p: &crate::config::ProviderConfig| ProviderInfo {
            id: p.id.clone(),
            name: provider_name(p.kind),
            server: p
                .base_url
                .as_ref()
                .and_then(|url| Some((url.host_str()?.to_string(), url.port_or_known_default()))),
        };
        config
            .providers
            .iter()
            .map(|p| (p.id.clone(), Arc::new(info(p))))
            .collect()
    }
}

/// The conventions' names where they have one (`openai` covers every OpenAI-compatible
/// server, as the conventions say: `server.address` tells them apart); the ASAP gateway
/// speaks Bedrock's Claude format.
fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::AsapGateway => "aws.bedrock",
        ProviderKind::Demo => "protogate.demo",
        ProviderKind::Deepgram => "deepgram",
        ProviderKind::Tavily => "tavily",
        ProviderKind::Brave => "brave",
    }
}

/// What a span needs from a finished record, copied on the request's task.
#[derive(Debug)]
pub struct Finished {
    pub end: SystemTime,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub id: String,
    pub method: String,
    pub path: String,
    pub provider: Arc<ProviderInfo>,
    pub model: Option<String>,
    pub status: u16,
    pub usage: Option<Usage>,
    pub finish_reason: Option<&'static str>,
    pub error: Option<String>,
    pub error_kind: Option<&'static str>,
    pub origin: Option<String>,
    pub route: Option<String>,
    pub cache: Option<&'static str>,
    pub attempts: Vec<Attempt>,
    /// Only when the settings capture content.
    pub prompt: Option<String>,
    pub answer: Option<String>,
}

/// The conventions' `gen_ai.operation.name`: `chat` for every chat route; they name no
/// operation for speech to text or web search, so those are `transcription` and `search`.
fn operation(path: &str) -> &'static str {
    match path {
        "/v1/audio/transcriptions" | "/api/voice/process" => "transcription",
        "/api/search" => "search",
        _ => "chat",
    }
}

/// `Span.kind` CLIENT and `Status.code` ERROR, as the protos number them.
const SPAN_KIND_CLIENT: u64 = 3;
const STATUS_CODE_ERROR: u64 = 2;
/// `Span.attributes`, `Resource.attributes`, `Event.attributes`.
const SPAN_ATTRIBUTES: u32 = 9;

/// Bytes a span takes, about: enough that a batch's buffer is not grown again and again.
const SPAN_BYTES: usize = 1024;

/// One `ExportTraceServiceRequest`, encoded: the spans under one resource (the gateway)
/// and one scope. The spans are written once, then copied once behind the small
/// messages around them.
pub fn export_request(service_name: &str, langfuse: bool, spans: &[Finished]) -> Vec<u8> {
    let (mut body, mut nested) = (Message::default(), Message::default());
    let mut written = Message(Vec::with_capacity(spans.len() * SPAN_BYTES));
    for finished in spans {
        // ScopeSpans.spans = 2
        written.message(2, &mut body, |m| span(m, finished, langfuse, &mut nested));
    }
    // ScopeSpans { scope = 1 { name = 1, version = 2 }, spans = 2 }
    let mut scope = Message::default();
    scope.message(1, &mut nested, |scope| {
        scope.string(1, "protogate");
        scope.string(2, VERSION);
    });
    // ResourceSpans { resource = 1 { attributes = 1 }, scope_spans = 2 }
    let mut resource = Message::default();
    resource.message(1, &mut nested, |resource| {
        resource.attr_str(1, "service.name", service_name);
        resource.attr_str(1, "service.version", VERSION);
        resource.attr_str(1, "telemetry.sdk.name", "protogate");
        resource.attr_str(1, "telemetry.sdk.language", "rust");
        resource.attr_str(1, "telemetry.sdk.version", VERSION);
    });
    let scope_spans_len = scope.0.len() + written.0.len();
    let mut scope_spans_header = Message::default();
    scope_spans_header.header(2, scope_spans_len);
    let resource_spans_len = resource.0.len() + scope_spans_header.0.len() + scope_spans_len;
    // ExportTraceServiceRequest { resource_spans = 1 }
    let mut request = Message(Vec::with_capacity(resource_spans_len + 8));
    request.header(1, resource_spans_len);
    for part in [resource, scope_spans_header, scope, written] {
        request.0.extend_from_slice(&part.0);
    }
    request.0
}

fn span(m: &mut Message, f: &Finished, langfuse: bool, nested: &mut Message) {
    let end = nanos(f.end);
    let start = end.saturating_sub((f.latency_ms * 1e6) as u64);
    let operation = operation(&f.path);
    let provider = &f.provider;
    // A voice record's model reads `provider/model`, as the client named it.
    let model = f.model.as_deref().map(|m| {
        m.strip_prefix(provider.id.as_str())
            .and_then(|m| m.strip_prefix('/'))
            .unwrap_or(m)
    });
    let failed = f.status >= 400 || f.error.is_some();
    m.bytes(1, uuid::Uuid::new_v4().as_bytes());
    m.bytes(2, &uuid::Uuid::new_v4().as_bytes()[..8]);
    match model {
        Some(model) => m.string_parts(5, &[operation, " ", model]),
        None => m.string(5, operation),
    }
    m.uint(6, SPAN_KIND_CLIENT);
    m.fixed64(7, start);
    m.fixed64(8, end);

    let a = SPAN_ATTRIBUTES;
    m.attr_str(a, "gen_ai.operation.name", operation);
    m.attr_str(a, "gen_ai.provider.name", provider.name);
    if let Some(model) = model {
        m.attr_str(a, "gen_ai.request.model", model);
        if !failed {
            m.attr_str(a, "gen_ai.response.model", model);
        }
    }
    if let Some(usage) = f.usage {
        m.attr_int(a, "gen_ai.usage.input_tokens", usage.input_tokens as i64);
        m.attr_int(a, "gen_ai.usage.output_tokens", usage.output_tokens as i64);
    }
    if let Some(reason) = f.finish_reason {
        m.attr_str_array(a, "gen_ai.response.finish_reasons", &[reason]);
    }
    if let Some(ttft) = f.ttft_ms {
        m.attr_f64(a, "gen_ai.response.time_to_first_chunk", ttft / 1e3);
    }
    if let Some((host, port)) = &provider.server {
        m.attr_str(a, "server.address", host);
        if let Some(port) = port {
            m.attr_int(a, "server.port", i64::from(*port));
        }
    }
    m.attr_str(a, "http.request.method", &f.method);
    m.attr_str(a, "http.route", &f.path);
    m.attr_int(a, "http.response.status_code", i64::from(f.status));
    if failed {
        match f.error_kind {
            Some(kind) => m.attr_str(a, "error.type", kind),
            None => m.attr_str(a, "error.type", &error_type(f.status)),
        }
    }
    m.attr_str(a, "protogate.request.id", &f.id);
    m.attr_str(a, "protogate.provider.id", &provider.id);
    let optional = [
        ("protogate.origin", f.origin.as_deref()),
        ("protogate.route", f.route.as_deref()),
        ("protogate.cache", f.cache),
    ];
    for (key, text) in optional {
        if let Some(text) = text {
            m.attr_str(a, key, text);
        }
    }
    content(m, f, langfuse);

    // A route's targets that did not answer, each an event at the time it was left.
    let mut at = start;
    for attempt in &f.attempts {
        at += (attempt.ms * 1e6) as u64;
        m.message(11, nested, |event| {
            event.fixed64(1, at);
            event.string(2, "protogate.attempt");
            event.attr_str(3, "protogate.attempt.target", &attempt.target);
            event.attr_str(3, "protogate.attempt.reason", &attempt.reason);
            event.attr_f64(3, "protogate.attempt.duration_ms", attempt.ms);
        });
    }
    if failed {
        // Status { message = 2, code = 3 }
        m.message(15, nested, |status| {
            match &f.error {
                Some(error) => status.string(2, error),
                None => status.string_parts(2, &["answered ", &f.status.to_string()]),
            }
            status.uint(3, STATUS_CODE_ERROR);
        });
    }
}

/// The conventions' `error.type` where the record has no kind: the status code.
fn error_type(status: u16) -> String {
    if status >= 400 {
        status.to_string()
    } else {
        "_OTHER".into()
    }
}

/// The prompt and answer as the conventions' message lists (JSON strings); for
/// Langfuse also as its own input and output, which it shows first.
fn content(m: &mut Message, f: &Finished, langfuse: bool) {
    let pairs = [
        (
            "gen_ai.input.messages",
            "langfuse.observation.input",
            "user",
            &f.prompt,
        ),
        (
            "gen_ai.output.messages",
            "langfuse.observation.output",
            "assistant",
            &f.answer,
        ),
    ];
    for (key, langfuse_key, role, text) in pairs {
        let Some(text) = text else { continue };
        let mut message =
            serde_json::json!({"role": role, "parts": [{"type": "text", "content": text}]});
        if let (Some(reason), "assistant") = (f.finish_reason, role) {
            message["finish_reason"] = reason.into();
        }
        let messages = serde_json::Value::Array(vec![message]).to_string();
        if langfuse {
            m.attr_str(SPAN_ATTRIBUTES, langfuse_key, &messages);
        }
        m.attr_str(SPAN_ATTRIBUTES, key, &messages);
    }
}

fn nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64
}

/// A finished chat with usage, for tests.
#[cfg(test)]
pub fn example() -> Finished {
    tests::finished()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
    use prost::Message as _;

    pub(super) fn finished() -> Finished {
        Finished {
            end: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            latency_ms: 250.0,
            ttft_ms: Some(40.0),
            id: "abc123".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            provider: Arc::new(ProviderInfo {
                id: "team-openai".into(),
                name: "openai",
                server: Some(("api.openai.com".into(), Some(443))),
            }),
            model: Some("gpt-4o-mini".into()),
            status: 200,
            usage: Some(Usage {
                input_tokens: 12,
                output_tokens: 7,
            }),
            finish_reason: Some("stop"),
            error: None,
            error_kind: None,
            origin: None,
            route: None,
            cache: None,
            attempts: vec![],
            prompt: None,
            answer: None,
        }
    }

    /// The span as OpenTelemetry's own types read it back.
    fn decoded(f: Finished) -> Span {
        let bytes = export_request("svc", false, &[f]);
        let request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let resource = request.resource_spans[0].resource.clone().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        let scope_spans = &request.resource_spans[0].scope_spans[0];
        assert_eq!(scope_spans.scope.as_ref().unwrap().name, "protogate");
        scope_spans.spans[0].clone()
    }

    fn attr(span: &Span, key: &str) -> Option<Value> {
        let kv = span.attributes.iter().find(|kv| kv.key == key)?;
        kv.value.clone()?.value
    }

    #[test]
    fn a_chat_is_a_client_span_named_after_its_operation_and_model() {
        let s = decoded(finished());
        assert_eq!(s.name, "chat gpt-4o-mini");
        assert_eq!(s.kind, SpanKind::Client as i32);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 250_000_000);
        assert_eq!((s.trace_id.len(), s.span_id.len()), (16, 8));
        assert!(s.status.is_none());
        assert_eq!(
            attr(&s, "gen_ai.usage.input_tokens"),
            Some(Value::IntValue(12))
        );
        assert_eq!(
            attr(&s, "http.response.status_code"),
            Some(Value::IntValue(200))
        );
        assert_eq!(
            attr(&s, "gen_ai.response.time_to_first_chunk"),
            Some(Value::DoubleValue(0.04))
        );
        assert!(attr(&s, "error.type").is_none());
        assert!(attr(&s, "gen_ai.input.messages").is_none());
    }

    #[test]
    fn a_failure_has_an_error_type_an_error_status_and_its_attempts() {
        let mut f = finished();
        f.status = 502;
        f.error = Some("openai answered 500".into());
        f.error_kind = Some("upstream_status");
        f.attempts = vec![Attempt {
            target: "groq/llama".into(),
            reason: "answered 429".into(),
            ms: 3.5,
        }];
        let s = decoded(f);
        let status = s.status.clone().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "openai answered 500");
        assert_eq!(
            attr(&s, "error.type"),
            Some(Value::StringValue("upstream_status".into()))
        );
        assert!(attr(&s, "gen_ai.response.model").is_none());
        assert_eq!(s.events[0].name, "protogate.attempt");
        assert_eq!(
            s.events[0].time_unix_nano,
            s.start_time_unix_nano + 3_500_000
        );
    }

    #[test]
    fn a_voice_model_loses_its_provider_prefix() {
        let mut f = finished();
        f.path = "/v1/audio/transcriptions".into();
        f.model = Some("team-openai/whisper-1".into());
        assert_eq!(decoded(f).name, "transcription whisper-1");
    }
}
