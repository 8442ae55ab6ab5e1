//! Label values for the metrics, bounded: every distinct value is a series Prometheus
//! keeps, so a path or a model name a client made up must not grow them without end.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The gateway's routes, as their label. Anything else is `other`.
const ROUTES: &[&str] = &[
    "/api/ai-gateway/stream",
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/ws/chat",
    "/v1/models",
    "/api/chatkit",
    "/api/chatkit/upload",
    "/api/chat",
    "/api/chat/stream",
    "/api/upload",
    "/api/agents",
    "/api/voice/process",
    "/v1/audio/transcriptions",
    "/api/search",
    "/health",
    "/api/health",
    "/metrics",
];

const CONVERSATION: &str = "/api/conversations/{id}";

/// What stands for everything past the bounds.
pub const OTHER: &str = "other";

/// The route a request's path is counted under: a known route, its pattern when it
/// carries an id, or `other` (a scanner's thousand paths are one series).
pub fn route(path: &str) -> &'static str {
    if let Some(known) = ROUTES.iter().find(|r| **r == path) {
        return known;
    }
    if path.starts_with("/api/conversations/") {
        return CONVERSATION;
    }
    OTHER
}

/// Distinct provider and model names seen as labels, at most this many; later ones
/// are counted as `other`.
pub const MAX_NAMES: usize = 200;

/// Provider and model names, each kept once as a shared string, so a label set is built
/// without copying them: two reference counts per finished request.
#[derive(Debug)]
pub struct Names {
    known: RwLock<HashMap<Box<str>, Arc<str>>>,
    none: Arc<str>,
    other: Arc<str>,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            known: RwLock::default(),
            none: Arc::from(""),
            other: Arc::from(OTHER),
        }
    }
}

impl Names {
    /// The label for `name`: empty for none (Prometheus drops an empty label).
    pub fn of(&self, name: Option<&str>) -> Arc<str> {
        let Some(name) = name else {
            return self.none.clone();
        };
        if let Some(known) = self.known.read().expect("names lock").get(name) {
            return known.clone();
        }
        let mut known = self.known.write().expect("names lock");
        if let Some(kept) = known.get(name) {
            return kept.clone();
        }
        if known.len() >= MAX_NAMES {
            return self.other.clone();
        }
        let kept: Arc<str> = Arc::from(name);
        known.insert(name.into(), kept.clone());
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_are_one_label() {
        assert_eq!(route("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(route("/api/conversations/c_123"), CONVERSATION);
        assert_eq!(route("/wp-login.php"), OTHER);
        assert_eq!(route("/v1/chat/completions/"), OTHER);
    }

    #[test]
    fn names_past_the_bound_are_other() {
        let names = Names::default();
        assert_eq!(&*names.of(None), "");
        for i in 0..MAX_NAMES {
            assert_eq!(
                &*names.of(Some(&format!("model-{i}"))),
                format!("model-{i}")
            );
        }
        assert_eq!(&*names.of(Some("one-too-many")), OTHER);
        assert_eq!(&*names.of(Some("model-7")), "model-7", "known names stay");
    }
}
