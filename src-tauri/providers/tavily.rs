//! Tavily (being written: answers an error until its upstream call is in).

use super::search::{SearchAnswer, SearchQuery};
use super::Upstream;
use crate::config::ProviderConfig;
use crate::error::ProviderError;

#[derive(Clone, Debug)]
pub struct TavilyProvider {
    pub config: ProviderConfig,
    #[allow(dead_code)]
    upstream: Upstream,
}

impl TavilyProvider {
    pub fn new(config: &ProviderConfig, upstream: Upstream) -> Self {
        TavilyProvider {
            config: config.clone(),
            upstream,
        }
    }

    pub async fn search(&self, _query: &SearchQuery) -> Result<SearchAnswer, ProviderError> {
        Err(ProviderError::Untranslatable {
            provider: self.config.id.clone(),
            message: "not built yet".into(),
        })
    }
}
