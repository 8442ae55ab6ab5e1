//! The allowlists a hostile page tries to get around: an origin pattern from the settings
//! (the first line) against an `Origin` header (the second), the default origins, and the
//! `Host` policy (the third line). Beyond never panicking: case never changes an answer,
//! and nothing with a path, userinfo or whitespace is ever allowed.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use protogate::config::{HostPolicy, OriginPattern, OriginPolicy, DEFAULT_ORIGINS};

/// The default allowlist, parsed once rather than per input.
static DEFAULTS: LazyLock<OriginPolicy> = LazyLock::new(|| {
    OriginPolicy::list(
        DEFAULT_ORIGINS
            .iter()
            .map(|p| OriginPattern::parse(p).expect("the defaults parse"))
            .collect(),
    )
});

fn check(policy: &OriginPolicy, origin: &str) {
    let allowed = policy.allows(origin);
    assert_eq!(
        allowed,
        policy.allows(&origin.to_ascii_uppercase()),
        "case changed the answer for {origin:?}"
    );
    if allowed {
        let rest = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        assert!(
            !rest.contains(['/', '@', '?', '#']) && !origin.chars().any(char::is_whitespace),
            "allowed {origin:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (pattern, origin, host) = (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    );
    if let Ok(pattern) = OriginPattern::parse(pattern) {
        check(&OriginPolicy::list(vec![pattern]), origin);
    }
    check(&DEFAULTS, origin);
    let hosts = HostPolicy::new(vec![]);
    assert_eq!(
        hosts.allows(host),
        hosts.allows(&host.to_ascii_uppercase()),
        "case changed the answer for Host {host:?}"
    );
    let _ = HostPolicy::new(vec![]).with_ip_addresses(true).allows(host);
});
