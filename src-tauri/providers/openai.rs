//! OpenAI and every OpenAI-compatible server (OpenRouter, Groq, Together, Mistral,
//! DeepSeek, Ollama, LM Studio, vLLM) by base URL. The URL comes from the config only:
//! a client never chooses where a stored key is sent.

use bytes::Bytes;
use reqwest::header;
use secrecy::{ExposeSecret, SecretString};

use super::client::{Target, UpstreamResponse};
use super::http::{self, Flavor};
use super::{FrameStream, Upstream};
use crate::chat::{ChatRequest, Completion, NativeBody};
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::wire::openai as wire;

const FLAVOR: Flavor = Flavor {
    upstream: "The OpenAI-compatible server",
    credential: "API key",
    error_message: |v| v.get("error").map(wire::error_message),
};

#[derive(Clone, Debug)]
pub struct OpenAiProvider {
    pub config: ProviderConfig,
    /// Also used by speech to text (`openai_voice.rs`).
    pub(super) upstream: Upstream,
    target: Target,
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
        OpenAiProvider {
            config: config.clone(),
            upstream,
            target: Target::new(url),
        }
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    async fn request(&self, body: Bytes) -> Result<UpstreamResponse, ProviderError> {
        let key = http::credential(&self.upstream, &self.config, &FLAVOR).await?;
        let mut request = http::json_post(&self.config.headers, body);
        if let Some(key) = key {
            let bearer = SecretString::from(format!("Bearer {}", key.expose_secret()));
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, http::sensitive(self.id(), &bearer)?);
        }
        http::send(&self.upstream, &self.target, request, self.id(), &FLAVOR).await
    }

    /// The client's own body when it is OpenAI's (taken, not copied), else a new one.
    fn body(request: &mut ChatRequest, stream: bool) -> Bytes {
        match request.native.take() {
            Some(NativeBody::OpenAi(body)) => body.into_body(&request.model, stream),
            _ => http::json_bytes(&wire::request_body(request, stream)),
        }
    }

    pub async fn stream(&self, mut request: ChatRequest) -> Result<FrameStream, ProviderError> {
        let response = self.request(Self::body(&mut request, true)).await?;
        Ok(http::frames(
            &self.upstream,
            response,
            self.id(),
            true,
            |event| wire::decode_chunk(event.data),
        ))
    }

    pub async fn complete(&self, mut request: ChatRequest) -> Result<Completion, ProviderError> {
        let response = self.request(Self::body(&mut request, false)).await?;
        http::read_body(&self.upstream, response, self.id(), wire::decode_completion).await
    }
}
