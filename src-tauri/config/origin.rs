//! Which browser origins may call the gateway, and which `Host` names it answers to.
//!
//! Origins follow the [Fetch standard's serialization](https://html.spec.whatwg.org/multipage/browsers.html#ascii-serialisation-of-an-origin):
//! `scheme://host[:port]`, no path. A pattern may start its host with `*.`, which stands
//! for one or more whole labels, and may end with `:*` for any port.

/// One allowed origin, e.g. `https://*.framercanvas.com` or `http://localhost:*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// Holds `.suffix`, leading dot included, so a match always ends on a label boundary.
    Subdomains(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortPattern {
    Default,
    Any,
    Exact(u16),
}

impl OriginPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{pattern}` {why}");
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| bad("needs a scheme, like https://"))?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
        {
            return Err(bad("has a bad scheme"));
        }
        if rest.contains('/') {
            return Err(bad("must not have a path"));
        }
        let (host, port) = split_port(rest).ok_or_else(|| bad("has a bad port"))?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(p.parse().map_err(|_| bad("has a bad port"))?),
        };
        let host = host.to_ascii_lowercase();
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            if !valid_host(suffix) {
                return Err(bad("has a bad host after `*.`"));
            }
            HostPattern::Subdomains(format!(".{suffix}"))
        } else if valid_host(&host) {
            HostPattern::Exact(host)
        } else {
            return Err(bad("has a bad host (a `*` may only stand for whole labels, as in https://*.example.com)"));
        };
        Ok(OriginPattern {
            scheme: scheme.to_ascii_lowercase(),
            host,
            port,
        })
    }

    fn matches(&self, scheme: &str, host: &str, port: Option<&str>) -> bool {
        if !self.scheme.eq_ignore_ascii_case(scheme) {
            return false;
        }
        let port_ok = match (&self.port, port) {
            (PortPattern::Any, _) => true,
            (PortPattern::Default, None) => true,
            (PortPattern::Exact(want), Some(got)) => got.parse() == Ok(*want),
            _ => false,
        };
        port_ok
            && match &self.host {
                HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
                HostPattern::Subdomains(suffix) => {
                    host.len() > suffix.len()
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                        && !host[..host.len() - suffix.len()].ends_with('.')
                }
            }
    }
}

/// Splits `host[:port]`, keeping IPv6 brackets with the host.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => Some((host, Some(port))),
            None => Some((authority, None)),
        }
    }
}

/// A port as browsers write it: digits only, at most 65535. `u16::from_str` alone would
/// take a `+`; and a pattern's `:*` must not wave through whatever follows the last colon
/// (found by the `origin_patterns` fuzz target: `http://localhost:x@evil` was allowed).
fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

fn valid_host(host: &str) -> bool {
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The origin allowlist. A newtype so the "any origin" switch cannot be confused with a
/// list that happens to be empty.
#[derive(Clone, Debug)]
pub struct OriginPolicy(OriginInner);

#[derive(Clone, Debug)]
enum OriginInner {
    Any,
    List(Vec<OriginPattern>),
}

impl OriginPolicy {
    /// Every origin is allowed (the explicit switch in settings).
    #[must_use]
    pub fn any() -> Self {
        OriginPolicy(OriginInner::Any)
    }

    /// Only origins matching one of `patterns`.
    #[must_use]
    pub fn list(patterns: Vec<OriginPattern>) -> Self {
        OriginPolicy(OriginInner::List(patterns))
    }

    /// Whether a request carrying `Origin: origin` may be answered.
    pub fn allows(&self, origin: &str) -> bool {
        match &self.0 {
            OriginInner::Any => true,
            OriginInner::List(patterns) => {
                let Some((scheme, rest)) = origin.split_once("://") else {
                    return false; // includes the opaque origin `null`
                };
                let Some((host, port)) = split_port(rest) else {
                    return false;
                };
                if rest.contains('/')
                    || !valid_host(&host.to_ascii_lowercase())
                    || port.is_some_and(|p| !valid_port(p))
                {
                    return false;
                }
                patterns.iter().any(|p| p.matches(scheme, host, port))
            }
        }
    }
}

/// Names the gateway answers to in the `Host` header. Anything else is refused before
/// routing: a DNS-rebinding page reaches us with its own name in `Host`.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    extra: Vec<String>,
    /// Serving on the network: devices call this machine by its address, whatever it is
    /// today. An IP address in `Host` cannot come from DNS rebinding, which needs a name.
    ip_addresses: bool,
}

impl HostPolicy {
    pub fn new(extra: Vec<String>) -> Self {
        HostPolicy {
            extra: extra.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            ip_addresses: false,
        }
    }

    /// Also answers to any IP address in `Host`, for a gateway serving on the network.
    pub fn with_ip_addresses(mut self, allowed: bool) -> Self {
        self.ip_addresses = allowed;
        self
    }

    /// Whether a `Host` header value (with or without port) is ours. Empty is not.
    pub fn allows(&self, host_header: &str) -> bool {
        let Some((host, port)) = split_port(host_header) else {
            return false;
        };
        if port.is_some_and(|p| !valid_port(p)) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let ip_address = || {
            let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            bare.unwrap_or(&host).parse::<std::net::IpAddr>().is_ok()
        };
        matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
            || self.extra.contains(&host)
            || (self.ip_addresses && ip_address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::DEFAULT_ORIGINS;

    fn defaults() -> OriginPolicy {
        OriginPolicy::list(
            DEFAULT_ORIGINS
                .iter()
                .map(|p| OriginPattern::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn what_the_designer_controls_is_allowed_by_default() {
        let policy = defaults();
        for origin in [
            "https://framer.com",
            "https://project-x1y2.framercanvas.com",
            "https://abc.plugins.framercdn.com",
            "http://localhost:5173",
            "http://127.0.0.1:3000",
            "tauri://localhost",
        ] {
            assert!(policy.allows(origin), "{origin} should be allowed");
        }
    }

    #[test]
    fn an_origin_whose_port_is_not_a_number_is_refused_even_by_a_port_wildcard() {
        let policy = defaults();
        assert!(policy.allows("http://localhost:5173"));
        for origin in [
            "http://localhost:abc",
            "http://localhost:5173@evil.example",
            "http://localhost:\0\0@x",
            "http://localhost:",
            "http://localhost:+80",
            "http://127.0.0.1:99999",
        ] {
            assert!(!policy.allows(origin), "{origin:?} must be refused");
        }
        let hosts = HostPolicy::new(vec![]);
        assert!(hosts.allows("localhost:5711"));
        assert!(!hosts.allows("localhost:+5711"));
        assert!(!hosts.allows("localhost:"));
    }

    #[test]
    fn published_sites_anyone_can_make_need_approval() {
        let policy = defaults();
        for origin in [
            "https://my-site.framer.app",
            "https://a.b.framer.website",
            "https://staging-x.framer.app",
        ] {
            assert!(!policy.allows(origin), "{origin} is refused until approved");
        }
        let approved = OriginPolicy::list(vec![
            OriginPattern::parse("https://my-site.framer.app").unwrap()
        ]);
        assert!(approved.allows("https://my-site.framer.app"));
        assert!(
            !approved.allows("https://other-site.framer.app"),
            "approving one site approves only that origin"
        );
    }

    #[test]
    fn lookalikes_and_other_schemes_are_refused() {
        let policy = defaults();
        for origin in [
            "https://framer.com.evil.example",
            "https://evilframer.com",
            "https://framercanvas.com.attacker.io",
            "https://x.evilframer.app",
            "http://framer.com",
            "https://framer.com:8443",
            "https://evil.example",
            "null",
            "",
            "https://.framer.app",
            "https://a..framer.app",
        ] {
            assert!(!policy.allows(origin), "{origin:?} must be refused");
        }
    }

    #[test]
    fn any_origin_switch_allows_everything() {
        assert!(OriginPolicy::any().allows("https://evil.example"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for pattern in [
            "framer.com",
            "https://fr*mer.com",
            "https://*framer.com",
            "https://a.com/path",
            "https://a.com:port",
        ] {
            assert!(
                OriginPattern::parse(pattern).is_err(),
                "{pattern} should be rejected"
            );
        }
    }

    #[test]
    fn host_allowlist_refuses_foreign_and_empty_hosts() {
        let on_the_network = HostPolicy::new(vec![]).with_ip_addresses(true);
        for host in ["192.168.1.20:5711", "10.0.0.7", "[fe80::1]:5711"] {
            assert!(on_the_network.allows(host), "{host}");
            assert!(!HostPolicy::new(vec![]).allows(host), "{host}");
        }
        for host in [
            "evil.example:5711",
            "192.168.1.20.evil.example",
            "0x7f.1:5711",
        ] {
            assert!(!on_the_network.allows(host), "{host}");
        }
        let hosts = HostPolicy::new(vec!["my-mac.local".into()]);
        for ok in [
            "localhost",
            "localhost:5711",
            "127.0.0.1:5711",
            "[::1]:5711",
            "MY-MAC.local:5711",
        ] {
            assert!(hosts.allows(ok), "{ok} should be allowed");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:5711",
            "127.0.0.1.nip.io",
            "localhost:abc",
            "localhost.evil.example",
        ] {
            assert!(!hosts.allows(bad), "{bad:?} must be refused");
        }
    }
}
