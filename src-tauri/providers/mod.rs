//! Upstream providers. Each turns a [`ChatRequest`] into a stream of [`Frame`]s or one
//! [`Completion`]; the routes turn those into whatever format the client speaks.
//!
//! Every stream ends with [`ChatEvent::End`] or an error: a provider that stops
//! without its end marker reports [`ProviderError::Cut`], never a silent clean end.

mod anthropic;
mod asap;
mod asap_gateway;
mod brave;
mod check;
mod client;
mod deepgram;
mod demo;
mod form;
mod http;
mod openai;
mod openai_voice;
mod pick;
mod queue;
pub mod search;
mod tavily;
pub mod voice;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;

use crate::chat::{ChatRequest, Completion, Frame};
use crate::config::{Capability, Config, KeyUse, Limits, ProviderConfig, ProviderKind};
use crate::dispatch::{Route, Via};
use crate::error::{GatewayError, ProviderError};
use crate::request_log::RecordHandle;
use crate::secrets::{SecretStatus, SecretStore};

pub use anthropic::AnthropicProvider;
pub use asap::{AsapError, AsapSigner};
pub use asap_gateway::AsapGatewayProvider;
pub use demo::DemoProvider;
pub use openai::OpenAiProvider;
pub use queue::ProviderQueue;

pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, ProviderError>> + Send>>;

/// What every upstream call needs: the HTTP clients, the secrets, the timeouts.
#[derive(Clone, Debug)]
pub struct Upstream {
    clients: Arc<client::Clients>,
    pub secrets: SecretStore,
    pub limits: Limits,
}

impl Upstream {
    pub fn new(limits: Limits, secrets: SecretStore) -> Self {
        Upstream {
            clients: Arc::new(client::Clients::new(limits.connect_timeout)),
            secrets,
            limits,
        }
    }
}

/// A configured provider: how it is called, and its own budget when it has one.
#[derive(Clone, Debug)]
pub struct Provider {
    backend: Backend,
    /// `None` when the provider has no `limits`: nothing to wait for.
    queue: Option<Arc<ProviderQueue>>,
    /// Today's spend, when the provider has a daily budget (`usage.budgets`).
    budget: Option<crate::usage::BudgetMeter>,
}

/// The provider kinds, one file each.
#[derive(Clone, Debug)]
enum Backend {
    Demo(DemoProvider),
    OpenAi(OpenAiProvider),
    Anthropic(AnthropicProvider),
    AsapGateway(AsapGatewayProvider),
    Deepgram(deepgram::DeepgramProvider),
    Tavily(tavily::TavilyProvider),
    Brave(brave::BraveProvider),
}

impl Provider {
    pub fn new(config: &ProviderConfig, upstream: &Upstream) -> Self {
        let backend = match config.kind {
            ProviderKind::Demo => Backend::Demo(DemoProvider::new(config)),
            ProviderKind::OpenAi => Backend::OpenAi(OpenAiProvider::new(config, upstream.clone())),
            ProviderKind::Anthropic => {
                Backend::Anthropic(AnthropicProvider::new(config, upstream.clone()))
            }
            ProviderKind::AsapGateway => {
                Backend::AsapGateway(AsapGatewayProvider::new(config, upstream.clone()))
            }
            ProviderKind::Deepgram => {
                Backend::Deepgram(deepgram::DeepgramProvider::new(config, upstream.clone()))
            }
            ProviderKind::Tavily => {
                Backend::Tavily(tavily::TavilyProvider::new(config, upstream.clone()))
            }
            ProviderKind::Brave => {
                Backend::Brave(brave::BraveProvider::new(config, upstream.clone()))
            }
        };
        let queue = config
            .limits
            .clone()
            .map(|limits| Arc::new(ProviderQueue::new(&config.id, limits)));
        Provider {
            backend,
            queue,
            budget: None,
        }
    }

    pub fn config(&self) -> &ProviderConfig {
        match &self.backend {
            Backend::Demo(p) => &p.config,
            Backend::OpenAi(p) => &p.config,
            Backend::Anthropic(p) => &p.config,
            Backend::AsapGateway(p) => &p.config,
            Backend::Deepgram(p) => &p.config,
            Backend::Tavily(p) => &p.config,
            Backend::Brave(p) => &p.config,
        }
    }

    /// What every route awaits before it sends a request upstream: returns at once when
    /// the provider has no `limits` (no allocation, no lock) or its budget has room;
    /// otherwise waits in the provider's FIFO queue, or fails with a 429 that names the
    /// provider and its limit (queue full, or no turn within `queue_timeout_ms`). A wait
    /// is written on `record`. Dropping the future (the client went away) leaves the
    /// queue and uses none of the budget.
    /// A provider whose daily budget is spent (with `stop_at_budget`) refuses first.
    pub async fn wait_turn(&self, record: &RecordHandle) -> Result<(), GatewayError> {
        if let Some(budget) = &self.budget {
            budget.admit(self.id())?;
        }
        match &self.queue {
            None => Ok(()),
            // Boxed: a provider without `limits` should not carry the queue's future.
            Some(queue) => Box::pin(queue.wait_turn(record)).await,
        }
    }

    /// Today's spend against the provider's daily budget, when it has one.
    pub fn budget(&self) -> Option<&crate::usage::BudgetMeter> {
        self.budget.as_ref()
    }

    /// The provider's budget and its line, when it has `limits`.
    pub fn queue(&self) -> Option<&ProviderQueue> {
        self.queue.as_deref()
    }

    pub fn id(&self) -> &str {
        &self.config().id
    }

    pub fn kind(&self) -> ProviderKind {
        self.config().kind
    }

    /// Whether the upstream gets a stored key.
    pub fn key_use(&self) -> KeyUse {
        self.config().key
    }

    /// The key's state in plain words, never the key: read within the keychain cache's
    /// time-to-live, so a key deleted elsewhere shows as missing within seconds.
    pub async fn key_state(&self, secrets: &SecretStore) -> String {
        match self.key_use() {
            KeyUse::Never => "not needed".into(),
            KeyUse::Required => secrets.status(self.id()).await.describe(),
            KeyUse::IfStored => match secrets.status(self.id()).await {
                SecretStatus::Missing => "not needed (a server on this machine)".into(),
                status => format!("{}; sent to this machine's server", status.describe()),
            },
        }
    }

    /// Starts a streamed answer. Returns once the upstream has accepted the request, so
    /// errors up to that point can still be answered with a status code.
    pub async fn stream(&self, request: ChatRequest) -> Result<FrameStream, ProviderError> {
        match &self.backend {
            Backend::Demo(p) => Ok(p.stream(request)),
            Backend::OpenAi(p) => p.stream(request).await,
            Backend::Anthropic(p) => p.stream(request).await,
            Backend::AsapGateway(p) => p.stream(request).await,
            Backend::Deepgram(_) | Backend::Tavily(_) | Backend::Brave(_) => {
                Err(self.cannot(Capability::Chat))
            }
        }
    }

    /// A whole answer, for clients that did not ask to stream.
    pub async fn complete(&self, request: ChatRequest) -> Result<Completion, ProviderError> {
        match &self.backend {
            Backend::Demo(p) => Ok(p.complete(&request)),
            Backend::OpenAi(p) => p.complete(request).await,
            Backend::Anthropic(p) => p.complete(request).await,
            Backend::AsapGateway(p) => p.complete(request).await,
            Backend::Deepgram(_) | Backend::Tavily(_) | Backend::Brave(_) => {
                Err(self.cannot(Capability::Chat))
            }
        }
    }
}

/// The configured providers, looked up by id.
#[derive(Clone, Debug)]
pub struct Registry {
    providers: Arc<Vec<Provider>>,
    /// `routes[]`: names that stand for several providers' models.
    routes: Arc<Vec<Route>>,
    default_id: String,
    default_voice: Option<String>,
    default_search: Option<String>,
}

impl Registry {
    pub fn new(config: &Config, upstream: &Upstream) -> Self {
        Registry {
            providers: Arc::new(
                config
                    .providers
                    .iter()
                    .map(|p| Provider::new(p, upstream))
                    .collect(),
            ),
            routes: Arc::new(
                config
                    .routes
                    .iter()
                    .map(|r| Route::new(r, &config.providers))
                    .collect(),
            ),
            default_id: config.default_provider.clone(),
            default_voice: config.default_voice_provider.clone(),
            default_search: config.default_search_provider.clone(),
        }
    }

    /// Takes over `previous`'s queue for each provider whose id and limits are the same,
    /// so a settings change (an origin approved, say) neither resets a provider's budget
    /// nor splits its line in two; and each unchanged route's targets' health. Only for
    /// a registry not yet shared.
    pub fn keep_queues(&mut self, previous: &Registry) {
        if let Some(routes) = Arc::get_mut(&mut self.routes) {
            for route in routes.iter_mut() {
                if let Some(old) = previous.routes.iter().find(|r| r.name() == route.name()) {
                    *route = route.clone().keeping(old);
                }
            }
        }
        let Some(providers) = Arc::get_mut(&mut self.providers) else {
            return;
        };
        for p in providers.iter_mut() {
            let old = previous.get(p.id()).and_then(|old| old.queue.as_ref());
            if let (Some(new), Some(old)) = (&p.queue, old) {
                if new.limits() == old.limits() {
                    p.queue = Some(old.clone());
                }
            }
        }
    }

    /// Gives each provider with a daily budget in `meter` that meter, checked before
    /// every request. Only for a registry not yet shared.
    pub fn attach_budgets(&mut self, meter: &crate::usage::BudgetMeter) {
        let Some(providers) = Arc::get_mut(&mut self.providers) else {
            return;
        };
        for p in providers.iter_mut() {
            if meter.covers(p.id()) {
                p.budget = Some(meter.clone());
            }
        }
    }

    /// Paces every provider with limits through `redis`, with all replicas sharing it.
    /// Only for a registry not yet shared.
    pub fn share_limits(&mut self, redis: &Arc<crate::team::Redis>) {
        let Some(providers) = Arc::get_mut(&mut self.providers) else {
            return;
        };
        for queue in providers.iter_mut().filter_map(|p| p.queue.as_mut()) {
            if let Some(queue) = Arc::get_mut(queue) {
                queue.share(redis.clone());
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id() == id)
    }

    pub fn default_provider(&self) -> &Provider {
        self.get(&self.default_id)
            .expect("config validation guarantees the default provider exists")
    }

    pub fn all(&self) -> &[Provider] {
        &self.providers
    }

    /// The configured routes, in the settings' order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Picks where a chat goes: the route that `model` (or `provider`) names, with its
    /// name as the model; else the chat provider and upstream model (see
    /// [`Registry::pick`]).
    pub fn route(
        &self,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<(Via<'_>, String), String> {
        if let Some(route) = self.named_route(provider, model)? {
            return Ok((Via::Route(route), route.name().to_string()));
        }
        let (provider, model) = self.pick(Capability::Chat, provider, model)?;
        Ok((Via::Provider(provider), model))
    }

    fn unknown(&self, id: &str) -> String {
        let ids: Vec<_> = self.providers.iter().map(|p| p.id()).collect();
        format!(
            "unknown provider `{id}`; configured providers: {}",
            ids.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretStore;

    fn registry() -> Registry {
        let config = crate::config::parse(
            r#"{"default_provider": "demo", "providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "openai", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "default_model": "gpt-4o-mini"}
            ]}"#,
            "test",
        )
        .unwrap();
        let upstream = Upstream::new(config.limits.clone(), SecretStore::new());
        Registry::new(&config, &upstream)
    }

    #[test]
    fn routes_by_prefix_explicit_provider_or_default() {
        let r = registry();
        let (p, m) = r.route(None, Some("openai/gpt-4o")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("openai", "gpt-4o"));
        let (p, m) = r.route(None, None).unwrap();
        assert_eq!((p.id(), m.as_str()), ("demo", "protogate-demo"));
        let (p, m) = r.route(Some("openai"), None).unwrap();
        assert_eq!((p.id(), m.as_str()), ("openai", "gpt-4o-mini"));
        let (p, m) = r.route(None, Some("meta-llama/llama-3")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("demo", "meta-llama/llama-3"));
    }

    #[test]
    fn a_model_with_a_slash_routes_to_the_provider_named_first() {
        let config = crate::config::parse(
            r#"{"providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "github", "kind": "openai", "base_url": "https://models.github.ai/inference", "default_model": "openai/gpt-4.1-mini"},
                {"id": "huggingface", "kind": "openai", "base_url": "https://router.huggingface.co/v1", "default_model": "openai/gpt-oss-120b:fastest"}
            ]}"#,
            "test",
        )
        .unwrap();
        let r = Registry::new(
            &config,
            &Upstream::new(config.limits.clone(), SecretStore::new()),
        );
        let (p, m) = r.route(None, Some("github/openai/gpt-4.1")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("github", "openai/gpt-4.1"));
        let (p, m) = r.route(Some("github"), Some("openai/gpt-4.1")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("github", "openai/gpt-4.1"));
        let (p, m) = r
            .route(Some("github"), Some("github/openai/gpt-4.1"))
            .unwrap();
        assert_eq!((p.id(), m.as_str()), ("github", "openai/gpt-4.1"));
        let (p, m) = r.route(None, Some("github/")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("github", "openai/gpt-4.1-mini"));
        // Hugging Face's routing suffixes are part of the model name.
        let (p, m) = r
            .route(None, Some("huggingface/deepseek-ai/DeepSeek-R1:fastest"))
            .unwrap();
        assert_eq!(
            (p.id(), m.as_str()),
            ("huggingface", "deepseek-ai/DeepSeek-R1:fastest")
        );
        // A publisher that is not a provider id stays part of the model, for the default.
        let (p, m) = r.route(None, Some("openai/gpt-4.1")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("demo", "openai/gpt-4.1"));
    }

    #[test]
    fn only_a_provider_with_limits_has_a_queue() {
        let config = crate::config::parse(
            r#"{"providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "m", "limits": {"requests_per_minute": 100}}
            ]}"#,
            "test",
        )
        .unwrap();
        let r = Registry::new(
            &config,
            &Upstream::new(config.limits.clone(), SecretStore::new()),
        );
        assert!(r.get("demo").unwrap().queue().is_none());
        let queue = r.get("openai").unwrap().queue().unwrap();
        assert_eq!(queue.limits().to_string(), "100 requests per minute");
        assert_eq!(queue.limits().burst.get(), 200);
    }

    #[test]
    fn unknown_explicit_provider_lists_the_configured_ones() {
        let e = registry().route(Some("claude"), None).unwrap_err();
        assert!(e.contains("claude") && e.contains("demo, openai"), "{e}");
    }
}
