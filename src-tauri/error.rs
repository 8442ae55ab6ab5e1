//! Errors on the request path. Each picks its status and a message safe to show a client;
//! the message also rides in the response's extensions for the request log. Building a
//! response never logs: the request log is the one place that records what happened.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::secrets::SecretError;

/// A provider call that failed. Messages name the provider and never carry a credential.
/// `Clone`: a call that identical requests share fails for each of them.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no {credential} is set for provider '{provider}'. Set it with `protogate secrets set {provider}`, or set {env_var} for `protogate serve`")]
    MissingKey {
        provider: String,
        credential: &'static str,
        env_var: String,
    },
    #[error("the {credential} of provider '{provider}' cannot be used: {message}")]
    BadKey {
        provider: String,
        credential: &'static str,
        message: String,
    },
    #[error("cannot read the key for provider '{provider}': {source}. Unlock the keychain, or set {env_var} for `protogate serve`")]
    Secret {
        provider: String,
        env_var: String,
        source: SecretError,
    },
    #[error("could not reach provider '{provider}': {message}")]
    Connect { provider: String, message: String },
    #[error("provider '{provider}' did not answer within {} s", .after.as_secs_f64())]
    FirstByteTimeout { provider: String, after: Duration },
    #[error("provider '{provider}' went quiet for {} s in the middle of the answer", .after.as_secs_f64())]
    IdleTimeout { provider: String, after: Duration },
    #[error("{upstream} rejected the {credential} for provider '{provider}' (upstream status {status}); check or replace it with `protogate secrets set {provider}`")]
    KeyRejected {
        provider: String,
        upstream: &'static str,
        credential: &'static str,
        status: u16,
    },
    #[error("provider '{provider}' answered {status}: {message}")]
    Status {
        provider: String,
        status: u16,
        message: String,
        retry_after: Option<HeaderValue>,
    },
    #[error("provider '{provider}' redirected to {location} (status {status}); Protogate does not follow redirects, so your key goes only where the settings say: update base_url")]
    Redirected {
        provider: String,
        status: u16,
        location: String,
    },
    #[error("the request cannot be sent to provider '{provider}': {message}")]
    Untranslatable { provider: String, message: String },
    #[error("model `{model}` cannot be used with provider '{provider}': {reason}")]
    BadModel {
        provider: String,
        model: String,
        reason: &'static str,
    },
    #[error("provider '{provider}' sent an error in the stream: {message}")]
    InStream { provider: String, message: String },
    #[error("provider '{provider}' sent something unreadable: {message}")]
    Decode { provider: String, message: String },
    #[error("the stream from provider '{provider}' was cut before the answer was complete")]
    Cut { provider: String },
}

impl ProviderError {
    /// The failure in one word, for counting (the record's `error_kind`, `/metrics`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::MissingKey { .. }
            | ProviderError::BadKey { .. }
            | ProviderError::Secret { .. }
            | ProviderError::KeyRejected { .. } => "key",
            ProviderError::Connect { .. } => "connect",
            ProviderError::FirstByteTimeout { .. } | ProviderError::IdleTimeout { .. } => "timeout",
            ProviderError::Status { .. } | ProviderError::Redirected { .. } => "upstream_status",
            ProviderError::Untranslatable { .. } | ProviderError::BadModel { .. } => "bad_request",
            ProviderError::InStream { .. } => "upstream_error",
            ProviderError::Decode { .. } => "decode",
            ProviderError::Cut { .. } => "cut",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ProviderError::MissingKey { .. } | ProviderError::BadKey { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ProviderError::Secret { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProviderError::FirstByteTimeout { .. } | ProviderError::IdleTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProviderError::Status { status: 429, .. } => StatusCode::TOO_MANY_REQUESTS,
            ProviderError::Status {
                status: 400 | 404 | 422,
                ..
            }
            | ProviderError::BadModel { .. }
            | ProviderError::Untranslatable { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    fn details(&self) -> Value {
        match self {
            ProviderError::Status {
                provider, status, ..
            }
            | ProviderError::KeyRejected {
                provider, status, ..
            }
            | ProviderError::Redirected {
                provider, status, ..
            } => {
                json!({"provider": provider, "upstream_status": status})
            }
            ProviderError::MissingKey {
                provider, env_var, ..
            } => {
                json!({"provider": provider, "env_var": env_var})
            }
            ProviderError::BadKey { provider, .. }
            | ProviderError::BadModel { provider, .. }
            | ProviderError::Untranslatable { provider, .. } => {
                json!({"provider": provider})
            }
            ProviderError::Secret { provider, .. }
            | ProviderError::Connect { provider, .. }
            | ProviderError::FirstByteTimeout { provider, .. }
            | ProviderError::IdleTimeout { provider, .. }
            | ProviderError::InStream { provider, .. }
            | ProviderError::Decode { provider, .. }
            | ProviderError::Cut { provider } => json!({"provider": provider}),
        }
    }
}

/// Everything a request can fail with.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    BadRequest { message: String, details: Value },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Protogate itself cannot answer now (the keychain holding the access token is
    /// locked): not the client's fault, so not a 401.
    #[error("{0}")]
    Unavailable(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body trickled in slower than the idle timeout allows (a slowloris client).
    #[error("the request body did not arrive within {} s; send it at once", .after.as_secs_f64())]
    SlowBody { after: std::time::Duration },
    #[error("too many requests from this origin; try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// Over a provider's own budget (`providers[].limits`): its queue was full, or the
    /// request waited there past the queue timeout. Names the provider and its limit.
    #[error("{provider}'s limit of {limit}: {why}; try again in {retry_after_s} s")]
    ProviderLimited {
        provider: String,
        /// "100 requests per minute".
        limit: String,
        /// "waited 30 s in the queue".
        why: String,
        retry_after_s: u64,
    },
    #[error("too many answers are streaming at once (limit {limit}); try again shortly")]
    Busy { limit: usize },
    #[error("no route {0}")]
    NotFound(String),
    /// Something the request names (a conversation, an upload) does not exist for it.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// No target of a route (`routes[]`) answered; its status is the last failure's.
    #[error("no target of route `{route}` answered: {attempts}")]
    RouteFailed {
        route: String,
        /// Each try in plain words: "groq/llama-3.1-8b-instant answered 429".
        attempts: String,
        last: Box<GatewayError>,
    },
}

/// What a refused or failed request leaves for the request log: the message, and its
/// kind ([`GatewayError::kind`]).
#[derive(Clone, Debug)]
pub struct ErrorNote(pub String, pub &'static str);

/// The error body shape a client understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": "...", "details": ...}`: the seed contract.
    Seed,
    /// `{"error": {"message", "type", "code"}}`: what OpenAI's SDKs parse.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`: what Anthropic's SDKs parse.
    Anthropic,
}

impl ErrorShape {
    /// OpenAI-style paths get OpenAI-style errors, also from the middleware.
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/v1/messages") {
            ErrorShape::Anthropic
        } else if path.starts_with("/v1/") {
            ErrorShape::OpenAi
        } else {
            ErrorShape::Seed
        }
    }
}

impl GatewayError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        GatewayError::BadRequest {
            message: message.into(),
            details: Value::Null,
        }
    }

    /// The failure in one word, for counting (the record's `error_kind`, `/metrics`).
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::BadRequest { .. } | GatewayError::UnsupportedMedia(_) => "bad_request",
            GatewayError::Unauthorized(_) | GatewayError::Forbidden(_) => "refused",
            GatewayError::Unavailable(_) => "unavailable",
            GatewayError::TooLarge { .. } => "too_large",
            GatewayError::SlowBody { .. } => "slow_client",
            GatewayError::RateLimited { .. }
            | GatewayError::ProviderLimited { .. }
            | GatewayError::Busy { .. } => "rate_limited",
            GatewayError::NotFound(_) | GatewayError::Missing(_) => "not_found",
            GatewayError::Provider(e) => e.kind(),
            GatewayError::RouteFailed { last, .. } => last.kind(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::SlowBody { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::RateLimited { .. }
            | GatewayError::ProviderLimited { .. }
            | GatewayError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::NotFound(_) | GatewayError::Missing(_) => StatusCode::NOT_FOUND,
            GatewayError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::Provider(e) => e.status(),
            GatewayError::RouteFailed { last, .. } => last.status(),
        }
    }

    fn details(&self) -> Value {
        match self {
            GatewayError::BadRequest { details, .. } => details.clone(),
            GatewayError::TooLarge { limit } => json!({"limit_bytes": limit}),
            GatewayError::RateLimited { retry_after_s } => json!({"retry_after_s": retry_after_s}),
            GatewayError::ProviderLimited {
                provider,
                limit,
                retry_after_s,
                ..
            } => json!({"provider": provider, "limit": limit, "retry_after_s": retry_after_s}),
            GatewayError::Provider(e) => e.details(),
            GatewayError::RouteFailed { route, .. } => json!({"route": route}),
            _ => Value::Null,
        }
    }

    /// The error `type` both OpenAI's and Anthropic's formats carry.
    pub fn error_type(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => "invalid_request_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            StatusCode::GATEWAY_TIMEOUT => "timeout_error",
            _ => "api_error",
        }
    }

    /// The response in the client's shape, CORS headers added later by the layer stack.
    pub fn response(self, shape: ErrorShape) -> Response {
        let status = self.status();
        let message = self.to_string();
        let body = match shape {
            ErrorShape::Seed => json!({"error": message, "details": self.details()}),
            ErrorShape::OpenAi => json!({"error": {
                "message": message,
                "type": self.error_type(),
                "code": status.as_u16(),
                "details": self.details(),
            }}),
            ErrorShape::Anthropic => json!({"type": "error", "error": {
                "type": self.error_type(),
                "message": message,
            }}),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(value) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
            .extensions_mut()
            .insert(ErrorNote(message, self.kind()));
        response
    }
}

impl GatewayError {
    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            GatewayError::RateLimited { retry_after_s }
            | GatewayError::ProviderLimited { retry_after_s, .. } => {
                Some(HeaderValue::from(retry_after_s.max(&1).to_owned()))
            }
            GatewayError::Busy { .. } => Some(HeaderValue::from_static("1")),
            GatewayError::Provider(ProviderError::Status { retry_after, .. }) => {
                retry_after.clone()
            }
            GatewayError::RouteFailed { last, .. } => last.retry_after(),
            _ => None,
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.response(ErrorShape::Seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        let provider = || "p".to_string();
        let cases = [
            (GatewayError::bad_request("x"), 400),
            (GatewayError::TooLarge { limit: 1 }, 413),
            (GatewayError::RateLimited { retry_after_s: 3 }, 429),
            (
                ProviderError::MissingKey {
                    provider: provider(),
                    credential: "API key",
                    env_var: "E".into(),
                }
                .into(),
                401,
            ),
            (
                ProviderError::Connect {
                    provider: provider(),
                    message: "refused".into(),
                }
                .into(),
                502,
            ),
            (
                ProviderError::FirstByteTimeout {
                    provider: provider(),
                    after: Duration::from_secs(1),
                }
                .into(),
                504,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let response = GatewayError::RateLimited { retry_after_s: 7 }.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let limited = GatewayError::ProviderLimited {
            provider: "openai".into(),
            limit: "100 requests per minute".into(),
            why: "waited 30 s in the queue".into(),
            retry_after_s: 2,
        };
        assert_eq!(
            limited.to_string(),
            "openai's limit of 100 requests per minute: waited 30 s in the queue; try again in 2 s"
        );
        let response = limited.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
