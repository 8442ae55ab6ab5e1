//! The seed's AI gateway: Bedrock-format Claude payloads, ASAP-signed. `base_url` is the
//! invoke URL; streaming goes to it with `/invoke` replaced by
//! `/invoke-with-response-stream`. A `{model}` path segment in the URL is replaced by the
//! model, percent-encoded as that one segment, so a client's model name can never add
//! segments, a query or a fragment to the signed call: the request goes to the configured
//! route or nowhere. Stream events are Anthropic's, as `data:` lines (the seed reads
//! `delta.text`).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{self, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::asap::AsapSigner;
use super::client::{Target, UpstreamResponse};
use super::http::{self, Flavor};
use super::{FrameStream, Upstream};
use crate::chat::{ChatRequest, Completion};
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::wire::anthropic::{self as wire, Dialect, EventDecoder};

const FLAVOR: Flavor = Flavor {
    upstream: "The AI gateway",
    credential: "ASAP private key",
    error_message: wire::error_message,
};

const MODEL_PLACEHOLDER: &str = "%7Bmodel%7D"; // `{model}` as the URL parser keeps it

/// Everything but RFC 3986's unreserved characters is encoded in the model segment, so
/// `/`, `?`, `#` and `%` cannot change the path (Bedrock's own clients encode `:` too).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Clone, Debug)]
pub struct AsapGatewayProvider {
    pub config: ProviderConfig,
    upstream: Upstream,
    signer: AsapSigner,
}

impl AsapGatewayProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        let settings = config
            .asap
            .clone()
            .expect("validated: asap-gateway providers have asap settings");
        AsapGatewayProvider {
            config: config.clone(),
            upstream,
            signer: AsapSigner::new(settings),
        }
    }

    fn id(&self) -> &str {
        &self.config.id
    }

    /// The configured URL with the model as one encoded segment, and the last `invoke`
    /// segment made `invoke-with-response-stream` for a stream.
    fn url(&self, model: &str, stream: bool) -> Result<reqwest::Url, ProviderError> {
        let bad = |reason| ProviderError::BadModel {
            provider: self.id().into(),
            model: model.chars().take(100).collect(),
            reason,
        };
        if model.is_empty() || model == "." || model == ".." {
            return Err(bad("it is empty or a path step (`.`, `..`)"));
        }
        if model.chars().any(char::is_control) {
            return Err(bad("it holds control characters"));
        }
        let mut url = self
            .config
            .base_url
            .clone()
            .expect("validated: asap-gateway providers have a base_url");
        let segments: Vec<&str> = url.path().split('/').collect();
        let last = segments.len() - 1;
        let path: Vec<String> = segments
            .iter()
            .enumerate()
            .map(|(i, segment)| match *segment {
                MODEL_PLACEHOLDER => utf8_percent_encode(model, SEGMENT).to_string(),
                "invoke" if stream && i == last => "invoke-with-response-stream".into(),
                other => other.to_string(),
            })
            .collect();
        url.set_path(&path.join("/"));
        Ok(url)
    }

    async fn request(
        &self,
        chat: &ChatRequest,
        stream: bool,
    ) -> Result<UpstreamResponse, ProviderError> {
        let url = self.url(&chat.model, stream)?;
        let body = wire::request_body(chat, Dialect::Bedrock).map_err(|message| {
            ProviderError::Untranslatable {
                provider: self.id().into(),
                message,
            }
        })?;
        let pem = http::credential(&self.upstream, &self.config, &FLAVOR)
            .await?
            .expect("a required credential is present");
        let token = self.signer.token(&pem).map_err(|e| ProviderError::BadKey {
            provider: self.id().into(),
            credential: FLAVOR.credential,
            message: e.to_string(),
        })?;
        // The seed's gateway takes the scheme in lower case.
        let bearer = SecretString::from(format!("bearer {}", token.expose_secret()));
        let authorization = http::sensitive(self.id(), &bearer)?;
        let mut request = http::json_post(&self.config.headers, http::json_bytes(&body));
        let headers = request.headers_mut();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        headers.insert(header::AUTHORIZATION, authorization);
        let target = Target::new(url);
        let result = http::send(&self.upstream, &target, request, self.id(), &FLAVOR).await;
        if let Err(ProviderError::KeyRejected { .. }) = result {
            self.signer.forget();
        }
        result
    }

    pub async fn stream(&self, chat: ChatRequest) -> Result<FrameStream, ProviderError> {
        let response = self.request(&chat, true).await?;
        let mut decoder = EventDecoder::default();
        Ok(http::frames(
            &self.upstream,
            response,
            self.id(),
            false,
            move |event| decoder.decode(None, event.data),
        ))
    }

    pub async fn complete(&self, chat: ChatRequest) -> Result<Completion, ProviderError> {
        let response = self.request(&chat, false).await?;
        let mut completion =
            http::read_body(&self.upstream, response, self.id(), wire::decode_message).await?;
        completion.raw = None; // a Bedrock body is no client's format
        Ok(completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider whose URL has the model as a path segment, as the seed's gateway does.
    fn provider() -> AsapGatewayProvider {
        let config = crate::config::parse(
            r#"{"default_provider": "gw", "providers": [{"id": "gw", "kind": "asap-gateway",
                "base_url": "https://ai.example/v1/bedrock/model/{model}/invoke", "default_model": "claude-x",
                "asap": {"issuer": "p", "key_id": "p/k", "audience": "ai"}}]}"#,
            "t",
        )
        .unwrap();
        let upstream = Upstream::new(config.limits.clone(), crate::secrets::SecretStore::new());
        AsapGatewayProvider::new(config.provider("gw").unwrap(), upstream)
    }

    #[test]
    fn streaming_url_replaces_invoke_and_fills_the_model() {
        let p = provider();
        let url = |model: &str, stream| p.url(model, stream).map(|u| u.to_string());
        assert_eq!(
            url("claude-x", false).unwrap(),
            "https://ai.example/v1/bedrock/model/claude-x/invoke"
        );
        assert_eq!(
            url("claude-x", true).unwrap(),
            "https://ai.example/v1/bedrock/model/claude-x/invoke-with-response-stream"
        );
        assert_eq!(
            url("anthropic.claude-3-5-sonnet-20240620-v1:0", false).unwrap(),
            "https://ai.example/v1/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke"
        );
    }

    #[test]
    fn a_model_name_cannot_leave_its_segment() {
        let p = provider();
        for (model, path) in [
            (
                "ai-gateway/../../../admin/x?",
                "/v1/bedrock/model/ai-gateway%2F..%2F..%2F..%2Fadmin%2Fx%3F/invoke",
            ),
            ("a#frag", "/v1/bedrock/model/a%23frag/invoke"),
            ("a/b", "/v1/bedrock/model/a%2Fb/invoke"),
            ("%2e%2e", "/v1/bedrock/model/%252e%252e/invoke"),
        ] {
            let url = p.url(model, false).unwrap();
            assert_eq!(url.path(), path, "{model} stays one segment");
            assert_eq!((url.query(), url.fragment()), (None, None), "{model}");
        }
        for model in ["..", ".", "", "a\nb"] {
            assert!(
                matches!(p.url(model, true), Err(ProviderError::BadModel { .. })),
                "{model:?} is refused"
            );
        }
    }
}
