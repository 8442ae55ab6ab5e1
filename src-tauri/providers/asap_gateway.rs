//! The seed's AI gateway: Bedrock-format Claude payloads, ASAP-signed. `base_url` is the
//! invoke URL; streaming goes to it with `/invoke` replaced by
//! `/invoke-with-response-stream`. A `{model}` in the URL is replaced by the model.
//! Stream events are Anthropic's, as `data:` lines (the seed reads `delta.text`).

use secrecy::ExposeSecret;

use super::asap::AsapSigner;
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

    fn url(&self, model: &str, stream: bool) -> String {
        let invoke = self
            .config
            .base_url
            .as_ref()
            .expect("validated: asap-gateway providers have a base_url")
            .as_str()
            .replace(MODEL_PLACEHOLDER, model);
        match (stream, invoke.rfind("/invoke")) {
            (true, Some(at)) => format!(
                "{}/invoke-with-response-stream{}",
                &invoke[..at],
                &invoke[at + "/invoke".len()..]
            ),
            _ => invoke,
        }
    }

    async fn request(
        &self,
        chat: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        let pem = http::credential(&self.upstream, self.id(), &FLAVOR, false)
            .await?
            .expect("a required credential is present");
        let token = self.signer.token(&pem).map_err(|e| ProviderError::BadKey {
            provider: self.id().into(),
            credential: FLAVOR.credential,
            message: e.to_string(),
        })?;
        let request = self
            .upstream
            .http
            .post(self.url(&chat.model, stream))
            .headers(self.config.headers.clone())
            .header(
                "accept",
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            // The seed's gateway takes the scheme in lower case.
            .header("authorization", format!("bearer {}", token.expose_secret()))
            .json(&wire::request_body(chat, Dialect::Bedrock));
        let result = http::send(&self.upstream, request, self.id(), &FLAVOR).await;
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

    #[test]
    fn streaming_url_replaces_invoke_and_fills_the_model() {
        let config = crate::config::parse(
            r#"{"default_provider": "gw", "providers": [{"id": "gw", "kind": "asap-gateway",
                "base_url": "https://ai.example/v1/bedrock/model/{model}/invoke", "default_model": "claude-x",
                "asap": {"issuer": "p", "key_id": "p/k", "audience": "ai"}}]}"#,
            "t",
        )
        .unwrap();
        let upstream = Upstream::new(config.limits.clone(), crate::secrets::SecretStore::new());
        let p = AsapGatewayProvider::new(config.provider("gw").unwrap(), upstream);
        assert_eq!(
            p.url("claude-x", false),
            "https://ai.example/v1/bedrock/model/claude-x/invoke"
        );
        assert_eq!(
            p.url("claude-x", true),
            "https://ai.example/v1/bedrock/model/claude-x/invoke-with-response-stream"
        );
    }
}
