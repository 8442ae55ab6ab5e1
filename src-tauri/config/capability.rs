//! What a provider can do, decided by its kind: chat, voice (speech to text) and web
//! search. Routes ask for a capability, so a search provider is never sent a chat and a
//! request naming the wrong kind of provider is told which ones can.

use serde::Serialize;

use super::raw::ProviderKind;
use super::ProviderConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Chat,
    Voice,
    Search,
}

impl Capability {
    pub const ALL: [Capability; 3] = [Capability::Chat, Capability::Voice, Capability::Search];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Voice => "voice",
            Capability::Search => "search",
        }
    }

    /// "chat with", "transcribe with", "search with": for messages.
    pub fn verb(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Voice => "transcribe speech",
            Capability::Search => "search the web",
        }
    }
}

impl ProviderConfig {
    /// Whether this provider serves `capability`. The demo serves all three, labelled.
    pub fn can(&self, capability: Capability) -> bool {
        use Capability::*;
        use ProviderKind::*;
        match (self.kind, capability) {
            (Demo, _) => true,
            (OpenAi, Chat) | (Anthropic, Chat) | (AsapGateway, Chat) => true,
            (OpenAi, Voice) => self.transcription_model.is_some(),
            (Deepgram, Voice) => true,
            (Tavily, Search) | (Brave, Search) => true,
            _ => false,
        }
    }

    pub fn capabilities(&self) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.can(*c))
            .collect()
    }
}

impl super::Config {
    /// The capabilities provider `id` answers when a request names no provider.
    pub fn defaults_of(&self, id: &str) -> Vec<Capability> {
        [
            (Capability::Chat, Some(&self.default_provider)),
            (Capability::Voice, self.default_voice_provider.as_ref()),
            (Capability::Search, self.default_search_provider.as_ref()),
        ]
        .into_iter()
        .filter(|(_, d)| d.is_some_and(|d| d == id))
        .map(|(c, _)| c)
        .collect()
    }
}

/// The kinds that serve only what is not chat have a default "model" of their own: the
/// recognizer or the search mode a request gets when it names none.
pub(super) fn default_model(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Deepgram => Some("nova-3"),
        ProviderKind::Tavily => Some("basic"),
        ProviderKind::Brave => Some("web"),
        _ => None,
    }
}

/// The provider that serves `capability` when a request names none: the configured one,
/// which must exist and be able to, else the first that can (`None`: none can).
pub(super) fn default_for(
    providers: &[ProviderConfig],
    capability: Capability,
    configured: Option<String>,
) -> Result<Option<String>, String> {
    let able: Vec<&str> = providers
        .iter()
        .filter(|p| p.can(capability))
        .map(|p| p.id.as_str())
        .collect();
    let Some(id) = configured else {
        return Ok(able.first().map(|id| id.to_string()));
    };
    if able.contains(&id.as_str()) {
        return Ok(Some(id));
    }
    let known = providers.iter().any(|p| p.id == id);
    let able = if able.is_empty() {
        "none".to_string()
    } else {
        able.join(", ")
    };
    Err(if known {
        format!(
            "`{id}` cannot {}; providers that can: {able}",
            capability.verb()
        )
    } else {
        format!(
            "`{id}` is not one of the providers; providers that can {}: {able}",
            capability.verb()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<crate::Config, String> {
        crate::config::parse(json, "test").map_err(|e| e.to_string())
    }

    #[test]
    fn each_kind_serves_its_capabilities_and_defaults_follow() {
        let c = config(
            r#"{"providers": [
                {"id": "search", "kind": "tavily", "base_url": "https://api.tavily.com"},
                {"id": "oai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini", "transcription_model": "whisper-1"},
                {"id": "dg", "kind": "deepgram", "base_url": "https://api.deepgram.com"},
                {"id": "demo", "kind": "demo"}
            ]}"#,
        )
        .unwrap();
        // The first provider that can chat, not the first provider.
        assert_eq!(c.default_provider, "oai");
        assert_eq!(c.default_voice_provider.as_deref(), Some("oai"));
        assert_eq!(c.default_search_provider.as_deref(), Some("search"));
        let dg = c.providers.iter().find(|p| p.id == "dg").unwrap();
        assert_eq!(dg.capabilities(), [Capability::Voice]);
        assert_eq!(dg.default_model, "nova-3");
        let demo = c.providers.iter().find(|p| p.id == "demo").unwrap();
        assert_eq!(demo.capabilities(), Capability::ALL);
    }

    #[test]
    fn a_default_that_cannot_is_refused_with_the_ones_that_can() {
        let e = config(
            r#"{"default_voice_provider": "demo2", "providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "demo2", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "m"}
            ]}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("default_voice_provider")
                && e.contains("cannot transcribe speech")
                && e.contains("demo"),
            "{e}"
        );
        let e = config(r#"{"providers": [{"id": "s", "kind": "brave", "base_url": "https://api.search.brave.com"}]}"#)
            .unwrap_err();
        assert!(e.contains("no provider that can chat"), "{e}");
        let e = config(
            r#"{"providers": [{"id": "demo", "kind": "demo"}, {"id": "x", "kind": "anthropic", "base_url": "https://api.anthropic.com", "default_model": "m", "transcription_model": "whisper-1"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("transcription_model"), "{e}");
    }
}
