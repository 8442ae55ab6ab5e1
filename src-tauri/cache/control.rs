//! What a request's `Cache-Control` asks of the cache
//! (<https://www.rfc-editor.org/rfc/rfc9111#section-5.2.1>).

use axum::http::{header, HeaderMap};

/// A request's wish about stored answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheControl {
    /// Answer from memory when possible; store what the upstream answers.
    #[default]
    Normal,
    /// `no-cache` (or `max-age=0`, what `fetch(url, {cache: "no-cache"})` sends): a fresh
    /// answer from the upstream, stored for the next request.
    Refresh,
    /// `no-store`: the cache stays out of it, neither reading nor storing.
    Bypass,
}

impl CacheControl {
    /// Reads `Cache-Control`; `no-store` wins over `no-cache`.
    pub fn of(headers: &HeaderMap) -> Self {
        let mut wish = CacheControl::Normal;
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',').map(str::trim) {
                if directive.eq_ignore_ascii_case("no-store") {
                    return CacheControl::Bypass;
                }
                if directive.eq_ignore_ascii_case("no-cache")
                    || directive.eq_ignore_ascii_case("max-age=0")
                {
                    wish = CacheControl::Refresh;
                }
            }
        }
        wish
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[&str]) -> CacheControl {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::CACHE_CONTROL, v.parse().unwrap());
        }
        CacheControl::of(&headers)
    }

    #[test]
    fn directives_are_read_in_any_case_and_any_order() {
        assert_eq!(of(&[]), CacheControl::Normal);
        assert_eq!(of(&["max-age=60"]), CacheControl::Normal);
        assert_eq!(of(&["No-Cache"]), CacheControl::Refresh);
        assert_eq!(of(&["max-age=0"]), CacheControl::Refresh);
        assert_eq!(of(&["no-cache, no-store"]), CacheControl::Bypass);
        assert_eq!(of(&["no-cache", "NO-STORE"]), CacheControl::Bypass);
    }
}
