//! `protogate check` and the window's Test: one cheap call for each thing a provider
//! does, so a key that works for chat but not for transcription (or a server that has
//! no speech model) shows up before a prototype finds it.

use std::time::Duration;

use super::search::SearchQuery;
use super::voice::{Audio, SPOKEN_SAMPLE};
use super::Provider;
use crate::chat::{ChatRequest, Message, Role};
use crate::config::Capability;
use crate::error::ProviderError;

/// How long one call of a check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

impl Provider {
    /// One token of chat, a one-word search, a spoken sentence to transcribe: each that
    /// the provider does. What each answered, or the first failure, in plain words.
    pub async fn check(&self) -> Result<String, String> {
        let capabilities = self.config().capabilities();
        let mut answers = Vec::with_capacity(capabilities.len());
        for capability in &capabilities {
            let answer =
                match tokio::time::timeout(CHECK_TIMEOUT, self.check_one(*capability)).await {
                    Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
                    Ok(result) => result.map_err(|e| e.to_string()),
                };
            let named = |text: String| match capabilities.len() {
                1 => text,
                _ => format!("{}: {text}", capability.name()),
            };
            answers.push(answer.map_err(named)?);
        }
        Ok(match capabilities.len() {
            1 => answers.remove(0),
            _ => capabilities
                .iter()
                .zip(answers)
                .map(|(c, a)| format!("{}: {a}", c.name()))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    async fn check_one(&self, capability: Capability) -> Result<String, ProviderError> {
        match capability {
            Capability::Chat => {
                let request = ChatRequest {
                    model: self.config().default_model.clone(),
                    messages: vec![Message::text(Role::User, "ping")],
                    max_tokens: Some(1),
                    ..ChatRequest::default()
                };
                self.complete(request).await.map(|c| c.text)
            }
            Capability::Search => {
                let query = SearchQuery {
                    query: "Protogate".into(),
                    max_results: 1,
                };
                let answer = self.search(query).await?;
                Ok(format!("{} result(s)", answer.results.len()))
            }
            Capability::Voice => {
                let audio = Audio {
                    bytes: bytes::Bytes::from_static(SPOKEN_SAMPLE),
                    content_type: "audio/wav".into(),
                    filename: "hello-from-protogate.wav".into(),
                    model: self.default_model_for(Capability::Voice),
                    language: None,
                    prompt: None,
                };
                let transcript = self.transcribe(audio).await?;
                Ok(format!("heard “{}”", transcript.text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::{Registry, Upstream};
    use crate::secrets::SecretStore;

    #[tokio::test]
    async fn the_demo_is_checked_in_all_it_does() {
        let config = crate::config::parse(
            r#"{"providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": 0}]}"#,
            "test",
        )
        .unwrap();
        let r = Registry::new(
            &config,
            &Upstream::new(config.limits.clone(), SecretStore::new()),
        );
        let said = r.get("demo").unwrap().check().await.unwrap();
        assert!(said.starts_with("chat: [Protogate demo]"), "{said}");
        assert!(
            said.contains("; voice: heard “[Protogate demo] heard 1.8 s of audio"),
            "{said}"
        );
        assert!(said.ends_with("; search: 1 result(s)"), "{said}");
    }

    #[tokio::test]
    async fn a_failing_capability_is_named() {
        let config = crate::config::parse(
            r#"{"providers": [{"id": "demo", "kind": "demo"},
                {"id": "oai", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "default_model": "m", "transcription_model": "whisper-1", "needs_key": false}]}"#,
            "test",
        )
        .unwrap();
        let r = Registry::new(
            &config,
            &Upstream::new(config.limits.clone(), SecretStore::new()),
        );
        let e = r.get("oai").unwrap().check().await.unwrap_err();
        assert!(e.starts_with("chat: could not reach provider 'oai'"), "{e}");
    }
}
