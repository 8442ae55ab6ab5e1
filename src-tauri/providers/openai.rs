//! OpenAI and every OpenAI-compatible server (OpenRouter, Groq, Together, Mistral,
//! DeepSeek, Ollama, LM Studio, vLLM) by base URL. The URL comes from the config only:
//! a client never chooses where a stored key is sent.

use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{http, FrameStream, Upstream};
use crate::chat::{ChatEvent, ChatRequest, Completion, Frame, NativeBody};
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::secrets::env_var_name;
use crate::wire::openai::{self as wire, DecodeError};

#[derive(Clone, Debug)]
pub struct OpenAiProvider {
    pub config: ProviderConfig,
    upstream: Upstream,
    url: reqwest::Url,
    /// Local servers (Ollama, LM Studio) take no key.
    key_optional: bool,
}

impl OpenAiProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        let base = config
            .base_url
            .clone()
            .expect("validated: openai providers have a base_url");
        let url = reqwest::Url::parse(&format!(
            "{}/chat/completions",
            base.as_str().trim_end_matches('/')
        ))
        .expect("a valid base URL plus a path is valid");
        let key_optional = match base.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        OpenAiProvider {
            config: config.clone(),
            upstream,
            url,
            key_optional,
        }
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    async fn request(&self, body: &Value) -> Result<reqwest::Response, ProviderError> {
        let mut request = self.upstream.http.post(self.url.clone()).json(body);
        match self.upstream.secrets.get(self.id()).await {
            Ok(Some((key, _))) => request = request.bearer_auth(key.expose_secret()),
            Ok(None) if self.key_optional => {}
            Ok(None) => {
                return Err(ProviderError::MissingKey {
                    provider: self.id().into(),
                    env_var: env_var_name(self.id()),
                })
            }
            Err(source) if !self.key_optional => {
                return Err(ProviderError::Secret {
                    provider: self.id().into(),
                    env_var: env_var_name(self.id()),
                    source,
                })
            }
            Err(_) => {}
        }
        http::send(
            request,
            self.id(),
            self.upstream.limits.first_byte_timeout,
            &self.upstream.secrets,
            |v| v.get("error").map(wire::error_message),
        )
        .await
    }

    fn body(request: &ChatRequest, stream: bool) -> Value {
        match &request.native {
            Some(NativeBody::OpenAi(body)) => {
                let mut body = body.clone();
                body.insert("model".into(), request.model.clone().into());
                body.insert("stream".into(), stream.into());
                Value::Object(body)
            }
            None => wire::request_body(request, stream),
        }
    }

    pub async fn stream(&self, request: ChatRequest) -> Result<FrameStream, ProviderError> {
        let response = self.request(&Self::body(&request, true)).await?;
        let provider = self.id().to_string();
        let mut events = Box::pin(http::events(
            response,
            provider.clone(),
            self.upstream.limits.idle_timeout,
        ));
        Ok(Box::pin(async_stream::stream! {
            let mut finished = false;
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => { yield Err(e); return; }
                };
                match wire::decode_chunk(&event.data) {
                    Ok(frame) => {
                        let end = frame.events.contains(&ChatEvent::End);
                        finished |= frame.events.iter().any(|e| matches!(e, ChatEvent::Finish(_)));
                        yield Ok(frame);
                        if end { return; }
                    }
                    Err(DecodeError::Upstream(message)) => {
                        yield Err(ProviderError::InStream { provider: provider.clone(), message });
                        return;
                    }
                    Err(DecodeError::Malformed(message)) => {
                        yield Err(ProviderError::Decode { provider: provider.clone(), message });
                        return;
                    }
                }
            }
            // Some servers end after the finish reason without `[DONE]`: complete, not cut.
            if finished {
                yield Ok(Frame::event(ChatEvent::End));
            } else {
                yield Err(ProviderError::Cut { provider });
            }
        }))
    }

    pub async fn complete(&self, request: ChatRequest) -> Result<Completion, ProviderError> {
        let response = self.request(&Self::body(&request, false)).await?;
        let deadline = self.upstream.limits.idle_timeout;
        let body = match tokio::time::timeout(deadline, response.bytes()).await {
            Err(_) => {
                return Err(ProviderError::IdleTimeout {
                    provider: self.id().into(),
                    after: deadline,
                })
            }
            Ok(Err(_)) => {
                return Err(ProviderError::Cut {
                    provider: self.id().into(),
                })
            }
            Ok(Ok(body)) => body,
        };
        let json: Value = serde_json::from_slice(&body).map_err(|e| ProviderError::Decode {
            provider: self.id().into(),
            message: e.to_string(),
        })?;
        Ok(wire::decode_completion(json))
    }
}
