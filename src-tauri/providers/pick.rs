//! Which provider serves a request, by capability, and the calls that are not chat:
//! transcription and search, dispatched to each kind's file.

use super::search::{SearchAnswer, SearchQuery};
use super::voice::{Audio, Transcript, TranscriptEvent, TranscriptStream};
use super::{Backend, Provider, Registry};
use crate::config::Capability;
use crate::dispatch::Route;
use crate::error::ProviderError;

impl Registry {
    /// The route a chat request names: by `model` (`"model": "fast"`), or by `provider`
    /// as `/api/agents` lists it (an agent whose one model is its own name).
    pub(super) fn named_route(
        &self,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<Option<&Route>, String> {
        let model = model.filter(|m| !m.is_empty());
        match provider.filter(|p| !p.is_empty()) {
            Some(id) => match self.routes().iter().find(|r| r.name() == id) {
                Some(route) if model.is_none_or(|m| m == id) => Ok(Some(route)),
                Some(_) => Err(format!(
                    "`{id}` is a route: its targets' models answer; leave `model` out, or \
                     send `\"model\": \"{id}\"`"
                )),
                None => Ok(None),
            },
            None => Ok(model.and_then(|m| self.routes().iter().find(|r| r.name() == m))),
        }
    }

    /// Picks the provider and upstream model that serve `capability` for a request.
    ///
    /// `model` may be `provider-id/model`; a prefix that is not a provider id is part of
    /// the model name (OpenRouter's `openai/gpt-4o`) and goes to the default provider.
    /// An explicit `provider` that does not exist is an error listing the known ones; one
    /// that cannot serve `capability`, an error listing those that can.
    pub fn pick(
        &self,
        capability: Capability,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<(&Provider, String), String> {
        let model = model.filter(|m| !m.is_empty());
        if let Some(id) = provider.filter(|p| !p.is_empty()) {
            let p = self.get(id).ok_or_else(|| self.unknown(id))?;
            self.check(p, capability)?;
            let model = model
                .map(|m| m.strip_prefix(&format!("{id}/")).unwrap_or(m).to_string())
                .unwrap_or_else(|| p.default_model_for(capability));
            return Ok((p, model));
        }
        if let Some((prefix, rest)) = model.and_then(|m| m.split_once('/')) {
            if let Some(p) = self.get(prefix) {
                self.check(p, capability)?;
                let model = if rest.is_empty() {
                    p.default_model_for(capability)
                } else {
                    rest.to_string()
                };
                return Ok((p, model));
            }
        }
        let default = match capability {
            Capability::Chat => Some(self.default_id.as_str()),
            Capability::Voice => self.default_voice.as_deref(),
            Capability::Search => self.default_search.as_deref(),
        };
        let Some(p) = default.and_then(|id| self.get(id)) else {
            return Err(format!(
                "no provider can {}: add one (see the README's Voice and search section)",
                capability.verb()
            ));
        };
        let model = model
            .map(String::from)
            .unwrap_or_else(|| p.default_model_for(capability));
        Ok((p, model))
    }

    fn check(&self, p: &Provider, capability: Capability) -> Result<(), String> {
        if p.config().can(capability) {
            return Ok(());
        }
        let able: Vec<&str> = self
            .all()
            .iter()
            .filter(|q| q.config().can(capability))
            .map(|q| q.id())
            .collect();
        Err(format!(
            "provider `{}` ({}) cannot {}; providers that can: {}",
            p.id(),
            p.kind(),
            capability.verb(),
            if able.is_empty() {
                "none".to_string()
            } else {
                able.join(", ")
            }
        ))
    }
}

impl Provider {
    /// The model a request gets when it names none: for voice on an `openai`-kind
    /// provider, its `transcription_model`.
    pub fn default_model_for(&self, capability: Capability) -> String {
        let c = self.config();
        match (capability, &c.transcription_model) {
            (Capability::Voice, Some(m)) => m.clone(),
            _ => c.default_model.clone(),
        }
    }

    pub(super) fn cannot(&self, capability: Capability) -> ProviderError {
        ProviderError::Untranslatable {
            provider: self.id().to_string(),
            message: format!("a {} provider cannot {}", self.kind(), capability.verb()),
        }
    }

    /// Speech to text.
    pub async fn transcribe(&self, audio: Audio) -> Result<Transcript, ProviderError> {
        match &self.backend {
            Backend::Demo(p) => Ok(p.transcribe(&audio)),
            Backend::OpenAi(p) if self.config().can(Capability::Voice) => p.transcribe(audio).await,
            Backend::Deepgram(p) => p.transcribe(audio).await,
            _ => Err(self.cannot(Capability::Voice)),
        }
    }

    /// Speech to text as it is heard: streamed by the servers that stream it, else one
    /// piece and the end.
    pub async fn transcribe_stream(&self, audio: Audio) -> Result<TranscriptStream, ProviderError> {
        if let Backend::OpenAi(p) = &self.backend {
            if self.config().can(Capability::Voice) {
                return p.transcribe_stream(audio).await;
            }
        }
        let whole = self.transcribe(audio).await?;
        Ok(Box::pin(futures_util::stream::iter([
            Ok(TranscriptEvent::Delta(whole.text.clone())),
            Ok(TranscriptEvent::Done(whole)),
        ])))
    }

    /// A web search.
    pub async fn search(&self, query: SearchQuery) -> Result<SearchAnswer, ProviderError> {
        match &self.backend {
            Backend::Demo(p) => Ok(p.search(&query)),
            Backend::Tavily(p) => p.search(&query).await,
            Backend::Brave(p) => p.search(&query).await,
            _ => Err(self.cannot(Capability::Search)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Capability;
    use crate::providers::{Registry, Upstream};
    use crate::secrets::SecretStore;

    fn registry() -> Registry {
        let config = crate::config::parse(
            r#"{"providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "oai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini", "transcription_model": "whisper-1"},
                {"id": "groq", "kind": "openai", "base_url": "https://api.groq.com/openai/v1", "default_model": "llama-3.1-8b-instant"},
                {"id": "dg", "kind": "deepgram", "base_url": "https://api.deepgram.com"},
                {"id": "tavily", "kind": "tavily", "base_url": "https://api.tavily.com"}
            ]}"#,
            "test",
        )
        .unwrap();
        Registry::new(
            &config,
            &Upstream::new(config.limits.clone(), SecretStore::new()),
        )
    }

    #[test]
    fn a_route_is_named_by_its_model_or_as_a_provider() {
        let config = crate::config::parse(
            r#"{"providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "oai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini"}
            ], "routes": [{"name": "fast", "targets": ["oai", "demo"]}]}"#,
            "test",
        )
        .unwrap();
        let r = Registry::new(
            &config,
            &Upstream::new(config.limits.clone(), SecretStore::new()),
        );
        for (provider, model) in [
            (None, Some("fast")),
            (Some("fast"), None),
            (Some("fast"), Some("fast")),
        ] {
            let (via, m) = r.route(provider, model).unwrap();
            assert!(
                matches!(via, crate::dispatch::Via::Route(_)),
                "{provider:?} {model:?}"
            );
            assert_eq!((via.id(), m.as_str()), ("fast", "fast"));
        }
        let e = r.route(Some("fast"), Some("gpt-4o")).unwrap_err();
        assert!(e.contains("`fast` is a route"), "{e}");
        // A provider named explicitly keeps the model as the upstream's name.
        let (via, m) = r.route(Some("oai"), Some("fast")).unwrap();
        assert_eq!((via.id(), m.as_str()), ("oai", "fast"));
    }

    #[test]
    fn each_capability_goes_to_a_provider_that_can() {
        let r = registry();
        let (p, m) = r.pick(Capability::Voice, None, None).unwrap();
        assert_eq!((p.id(), m.as_str()), ("demo", "protogate-demo"));
        let (p, m) = r.pick(Capability::Voice, Some("oai"), None).unwrap();
        assert_eq!((p.id(), m.as_str()), ("oai", "whisper-1"));
        let (p, m) = r.pick(Capability::Voice, None, Some("dg/nova-2")).unwrap();
        assert_eq!((p.id(), m.as_str()), ("dg", "nova-2"));
        let (p, _) = r.pick(Capability::Search, Some("tavily"), None).unwrap();
        assert_eq!(p.id(), "tavily");
        let e = r.pick(Capability::Chat, Some("tavily"), None).unwrap_err();
        assert!(
            e.contains("cannot chat") && e.contains("demo, oai, groq"),
            "{e}"
        );
        let e = r.pick(Capability::Voice, Some("groq"), None).unwrap_err();
        assert!(
            e.contains("cannot transcribe") && e.contains("demo, oai, dg"),
            "{e}"
        );
        let e = r
            .pick(Capability::Chat, None, Some("dg/nova-3"))
            .unwrap_err();
        assert!(e.contains("cannot chat"), "{e}");
        let e = r.pick(Capability::Search, Some("bing"), None).unwrap_err();
        assert!(e.contains("unknown provider `bing`"), "{e}");
    }
}
