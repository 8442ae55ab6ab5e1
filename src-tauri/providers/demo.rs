//! The built-in offline provider: a clearly labelled canned answer that echoes the
//! prompt, streamed at a realistic pace, so a prototype runs with no key and no network.

use futures_util::StreamExt;

use super::search::{SearchAnswer, SearchQuery, SearchResult};
use super::voice::{wav_duration_s, Audio, Transcript};
use super::FrameStream;
use crate::chat::{ChatEvent, ChatRequest, Completion, FinishReason, Frame, Usage};
use crate::config::ProviderConfig;

const ECHO_CHARS: usize = 200;

#[derive(Clone, Debug)]
pub struct DemoProvider {
    pub config: ProviderConfig,
}

impl DemoProvider {
    pub fn new(config: &ProviderConfig) -> Self {
        DemoProvider {
            config: config.clone(),
        }
    }

    pub fn stream(&self, request: ChatRequest) -> FrameStream {
        let answer = answer(&request.prompt(), !request.tools.is_empty());
        let usage = usage(&request, &answer);
        let delay = self.config.chunk_delay;
        let words: Vec<String> = answer.split_inclusive(' ').map(String::from).collect();
        let text = futures_util::stream::iter(words).then(move |word| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(Frame::event(ChatEvent::Text(word)))
        });
        let tail = futures_util::stream::iter([
            Ok(Frame::event(ChatEvent::Finish(FinishReason::Stop))),
            Ok(Frame::event(ChatEvent::Usage(usage))),
            Ok(Frame::event(ChatEvent::End)),
        ]);
        Box::pin(text.chain(tail))
    }

    pub fn complete(&self, request: &ChatRequest) -> Completion {
        let text = answer(&request.prompt(), !request.tools.is_empty());
        Completion {
            usage: Some(usage(request, &text)),
            text,
            tool_calls: vec![],
            finish: Some(FinishReason::Stop),
            raw: None,
        }
    }
}

impl DemoProvider {
    /// Hears nothing, and says so: how much audio arrived, so a prototype's voice flow
    /// can be built before any key.
    pub fn transcribe(&self, audio: &Audio) -> Transcript {
        let duration_s = wav_duration_s(&audio.bytes);
        let heard = match duration_s {
            Some(s) => format!("{s:.1} s of audio"),
            None => format!(
                "{} KB of {}",
                audio.bytes.len().div_ceil(1024),
                audio.content_type
            ),
        };
        Transcript {
            text: format!(
                "[Protogate demo] heard {heard} — add a voice provider for a real transcript"
            ),
            duration_s,
            language: audio.language.clone(),
            segments: vec![],
        }
    }

    /// Canned results, labelled as such, that echo the query.
    pub fn search(&self, query: &SearchQuery) -> SearchAnswer {
        let q = query.query.split_whitespace().collect::<Vec<_>>().join(" ");
        let results = (1..=query.max_results.min(3))
            .map(|n| SearchResult {
                title: format!("[Protogate demo] Result {n} for “{q}”"),
                url: format!("https://example.com/protogate-demo/{n}"),
                content: "A canned result from Protogate's offline demo provider, not the \
                          web. Add a search provider (Tavily or Brave) for real results."
                    .into(),
                score: Some(1.0 - n as f64 / 10.0),
            })
            .collect();
        SearchAnswer {
            answer: Some(format!(
                "[Protogate demo] No web search was made for “{q}”: these results are \
                 canned. Add a search provider for real ones."
            )),
            results,
        }
    }
}

/// The canned answer. It says what it is, so nobody mistakes it for a model's reply, and
/// that it calls no tools when it was offered some.
pub fn answer(prompt: &str, offered_tools: bool) -> String {
    let prompt = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    let echo: String = prompt.chars().take(ECHO_CHARS).collect();
    let ellipsis = if prompt.chars().count() > ECHO_CHARS {
        "…"
    } else {
        ""
    };
    let tools = if offered_tools {
        " It was offered tools and calls none: a real model may."
    } else {
        ""
    };
    format!(
        "[Protogate demo] This is the built-in demo provider answering offline, not an AI model. \
         You asked: \u{201c}{echo}{ellipsis}\u{201d}.{tools} Your prototype is wired up correctly: \
         add a provider and a key in Protogate to get real answers, with no change to your component."
    )
}

/// A rough count (four characters a token), labelled as usage so logs show something.
fn usage(request: &ChatRequest, answer: &str) -> Usage {
    let input: usize = request
        .messages
        .iter()
        .map(|m| m.text_content().len())
        .sum::<usize>()
        + request.system.as_deref().map_or(0, str::len);
    Usage {
        input_tokens: input.div_ceil(4) as u64,
        output_tokens: answer.len().div_ceil(4) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_is_labelled_and_echoes_the_prompt() {
        let a = answer("What is   a   prototype?", false);
        assert!(a.starts_with("[Protogate demo]"));
        assert!(a.contains("\u{201c}What is a prototype?\u{201d}"), "{a}");
    }

    #[test]
    fn long_prompts_are_cut_in_the_echo() {
        let a = answer(&"x".repeat(1000), false);
        assert!(a.contains('…') && a.len() < 600);
    }
}
