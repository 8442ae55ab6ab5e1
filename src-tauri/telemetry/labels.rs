//! The route label, bounded: every distinct value is a series Prometheus keeps, so a
//! path a client made up must not grow them without end (see `series.rs` for provider
//! and model names).

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
}
