//! Deepgram (being written: answers an error until its upstream call is in).

use super::voice::{Audio, Transcript};
use super::Upstream;
use crate::config::ProviderConfig;
use crate::error::ProviderError;

#[derive(Clone, Debug)]
pub struct DeepgramProvider {
    pub config: ProviderConfig,
    #[allow(dead_code)]
    upstream: Upstream,
}

impl DeepgramProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        DeepgramProvider {
            config: config.clone(),
            upstream,
        }
    }

    pub async fn transcribe(&self, _audio: Audio) -> Result<Transcript, ProviderError> {
        Err(ProviderError::Untranslatable {
            provider: self.config.id.clone(),
            message: "not built yet".into(),
        })
    }
}
