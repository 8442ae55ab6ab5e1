//! Anthropic's Messages API (`x-api-key`, `anthropic-version`), streaming and not.
//! `base_url` is the API root, e.g. `https://api.anthropic.com`.

use bytes::Bytes;
use reqwest::header::HeaderValue;

use super::client::{Target, UpstreamResponse};
use super::http::{self, Flavor};
use super::{FrameStream, Upstream};
use crate::chat::{ChatRequest, Completion, NativeBody};
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::wire::anthropic::{self as wire, Dialect, EventDecoder, API_VERSION};

const FLAVOR: Flavor = Flavor {
    upstream: "Anthropic",
    credential: "API key",
    error_message: wire::error_message,
};

#[derive(Clone, Debug)]
pub struct AnthropicProvider {
    pub config: ProviderConfig,
    upstream: Upstream,
    target: Target,
}

impl AnthropicProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        let base = config
            .base_url
            .clone()
            .expect("validated: anthropic providers have a base_url");
        let root = base.as_str().trim_end_matches('/');
        let path = if root.ends_with("/v1") {
            "/messages"
        } else {
            "/v1/messages"
        };
        let url = reqwest::Url::parse(&format!("{root}{path}"))
            .expect("a valid base URL plus a path is valid");
        AnthropicProvider {
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
        let headers = request.headers_mut();
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        if let Some(key) = key {
            headers.insert("x-api-key", http::sensitive(self.id(), &key)?);
        }
        http::send(&self.upstream, &self.target, request, self.id(), &FLAVOR).await
    }

    /// The client's own body when it is Anthropic's (taken, not copied), else a new one.
    fn body(&self, request: &mut ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        match request.native.take() {
            Some(NativeBody::Anthropic(body)) => Ok(body.into_body(&request.model, stream)),
            _ => wire::request_body(request, Dialect::Api { stream })
                .map(|body| http::json_bytes(&body))
                .map_err(|message| ProviderError::Untranslatable {
                    provider: self.id().into(),
                    message,
                }),
        }
    }

    pub async fn stream(&self, mut request: ChatRequest) -> Result<FrameStream, ProviderError> {
        let response = self.request(self.body(&mut request, true)?).await?;
        let mut decoder = EventDecoder::default();
        Ok(http::frames(
            &self.upstream,
            response,
            self.id(),
            false,
            move |event| decoder.decode(Some(&*event.event), event.data),
        ))
    }

    pub async fn complete(&self, mut request: ChatRequest) -> Result<Completion, ProviderError> {
        let response = self.request(self.body(&mut request, false)?).await?;
        http::read_body(&self.upstream, response, self.id(), wire::decode_message).await
    }
}
