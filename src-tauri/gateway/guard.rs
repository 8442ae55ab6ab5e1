//! The checks that run before routing: `Host`, `Origin`, access token and rate limit.
//! Each refusal is an error response with a plain-words reason for the request log.
//! CORS headers themselves come from tower-http's `CorsLayer` (see `front.rs`), which
//! answers but never refuses; refusing is done here.

use axum::extract::Request;
use axum::http::{header, Extensions, HeaderMap, Method, Uri};
use axum::response::Response;
use secrecy::ExposeSecret;

use super::state::AppState;
use crate::error::{ErrorShape, GatewayError};
use crate::request_log::RecordHandle;
use crate::secrets::ACCESS_TOKEN_ACCOUNT;

/// A `Host` that is not ours, including an empty or missing one: a DNS-rebinding page
/// reaches us under its own name (compare Ollama CVE-2024-28224).
pub(super) fn host_refusal(state: &AppState, req: &Request) -> Option<GatewayError> {
    // Two of either is a request crafted for a checker and a router that read different
    // ones (RFC 9112 §3.2: a 400 for more than one Host).
    for name in [header::HOST, header::ORIGIN] {
        if req.headers().get_all(&name).iter().nth(1).is_some() {
            return Some(GatewayError::bad_request(format!(
                "more than one `{name}` header; send one"
            )));
        }
    }
    let host = match req.headers().get(header::HOST) {
        Some(h) => h.to_str().unwrap_or_default(),
        // HTTP/2 carries it in the `:authority` pseudo-header instead.
        None => req.uri().authority().map_or("", |a| a.as_str()),
    };
    if state.config.hosts.allows(host) {
        return None;
    }
    let shown = if host.is_empty() { "(empty)" } else { host };
    Some(GatewayError::Forbidden(format!(
        "Host `{shown}` refused: Protogate answers only to localhost, 127.0.0.1 and [::1] \
         (add other names under allowed_hosts in the settings)"
    )))
}

/// An origin outside the allowlist, preflights included, so a blocked page shows up in
/// the log with its reason instead of failing silently in the browser.
pub(super) fn origin_refusal(state: &AppState, req: &Request) -> Option<GatewayError> {
    // curl and scripts send none.
    let origin = req.headers().get(header::ORIGIN)?;
    let origin = String::from_utf8_lossy(origin.as_bytes());
    // The team's list (team mode) is a copy in memory, read only past the settings' own.
    if state.config.origins.allows(&origin)
        || state.redis.as_ref().is_some_and(|r| r.approves(&origin))
    {
        return None;
    }
    Some(GatewayError::Forbidden(format!(
        "origin `{origin}` is not allowed. If this is your own prototype, approve it once: \
         add \"{origin}\" to cors.allowed_origins in Protogate's settings (or approve it \
         in the Protogate window, or run `protogate origins add {origin}`). Only sites you \
         approve can use your providers"
    )))
}

/// With `require_access_token`, every request but a preflight carries the token from
/// the keychain, or a member's token (`protogate members`), as `Authorization: Bearer
/// <token>` or `X-API-Key: <token>`. A WebSocket upgrade may carry it in the URL or as
/// a subprotocol instead (see [`upgrade_tokens`]). A member's name goes in the record.
pub(super) async fn token_refusal(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Option<GatewayError> {
    if !state.config.require_access_token || method == Method::OPTIONS {
        return None;
    }
    // Every value of an upgrade is a candidate: one is the token, the others protocol names.
    let websocket = is_websocket_upgrade(headers);
    let given = || {
        let upgrade = websocket.then(|| upgrade_tokens(uri, headers));
        presented_token(headers)
            .into_iter()
            .chain(upgrade.into_iter().flatten())
    };
    if given().next().is_none() {
        return Some(GatewayError::Unauthorized(if websocket {
            "access token missing: a WebSocket sends it as `?token=<token>` in the URL or \
             as a subprotocol, `new WebSocket(url, [\"protogate\", token])`"
                .into()
        } else {
            "access token missing: send it as `Authorization: Bearer <token>` or `X-API-Key`".into()
        }));
    }
    // Member tokens carry a prefix, so the access token never costs a hash.
    let mut member_error = None;
    for token in given().filter(|t| t.starts_with(crate::members::TOKEN_PREFIX)) {
        match state.members.verify(token).await {
            Ok(Some(member)) => {
                if let Some(record) = extensions.get::<RecordHandle>() {
                    record.set_member(&member);
                }
                return None;
            }
            Ok(None) => {}
            Err(e) => member_error = Some(e),
        }
    }
    let member_unavailable = |e| {
        GatewayError::Unavailable(format!(
            "cannot check the member token: {e}. Unlock the keychain and try again"
        ))
    };
    let expected = match state.secrets.get(ACCESS_TOKEN_ACCOUNT).await {
        Ok(Some((token, _))) => token,
        Ok(None) => {
            if let Some(e) = member_error {
                return Some(member_unavailable(e));
            }
            return Some(match state.members.any().await {
                Ok(true) => GatewayError::Unauthorized("access token is wrong".into()),
                Ok(false) | Err(_) => GatewayError::Unauthorized(
                    "an access token is required but none is set in Protogate; set one, or \
                     add a member with `protogate members add NAME`"
                        .into(),
                ),
            });
        }
        Err(e) => {
            return Some(GatewayError::Unavailable(format!(
                "cannot check the access token: {e}. Unlock the keychain and try again"
            )))
        }
    };
    let expected = expected.expose_secret().as_bytes();
    // Every value is compared, so the time taken does not tell which one matched.
    let matched = given().fold(false, |ok, t| ok | constant_time_eq(t.as_bytes(), expected));
    match (matched, member_error) {
        (true, _) => None,
        (false, Some(e)) => Some(member_unavailable(e)),
        (false, None) => Some(GatewayError::Unauthorized("access token is wrong".into())),
    }
}

/// A browser cannot set headers on a WebSocket, so its upgrade request may carry the
/// token as `?token=` (never written to the request log, which records the path alone)
/// or as one of its `Sec-WebSocket-Protocol` values (the route then answers with the
/// `protogate` protocol, never with the token). Only upgrades are read this way: a URL
/// token on a plain request would end up in browser history and proxy logs for nothing.
fn upgrade_tokens<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> impl Iterator<Item = &'a str> {
    let query = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("token="));
    let protocols = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != super::ws::PROTOCOL);
    query.chain(protocols)
}

/// `Upgrade: websocket` (HTTP/1.1's handshake; RFC 6455 §4.1).
pub(super) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = auth.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim());
            }
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Requests per origin per minute, with a burst. Preflights are answered by the CORS
/// layer before this and do not count.
pub(super) fn limit_refusal(state: &AppState, req: &Request) -> Option<GatewayError> {
    origin_limit(state, origin_key(req))
}

/// Whose budget a request counts against: its `Origin`, or "" for none.
fn origin_key(req: &Request) -> String {
    let origin = req.headers().get(header::ORIGIN);
    origin.map_or_else(String::new, |o| {
        String::from_utf8_lossy(o.as_bytes()).into_owned()
    })
}

/// [`origin_key`], but a request without an `Origin` (curl, a script, an SDK) that a
/// member made counts against that member's budget, so in team mode one member's script
/// does not spend everyone's. Read after the token check, which names the member.
pub(super) fn limit_key(req: &Request) -> String {
    if req.headers().contains_key(header::ORIGIN) {
        return origin_key(req);
    }
    req.extensions()
        .get::<crate::request_log::RecordHandle>()
        .and_then(|record| record.member())
        .map_or_else(String::new, |member| format!("member:{member}"))
}

/// [`origin_limit`], through Redis for all replicas together when the settings name one
/// (one round trip); the local limiter without Redis or while it does not answer.
pub(super) async fn shared_origin_limit(state: &AppState, key: String) -> Option<GatewayError> {
    if let Some(redis) = &state.redis {
        let limits = &state.config.limits;
        let decided = redis
            .origin_pace(&key, limits.requests_per_minute, limits.burst)
            .await;
        if let Some(decided) = decided {
            return decided.err().map(|wait| GatewayError::RateLimited {
                retry_after_s: wait.as_secs_f64().ceil() as u64,
            });
        }
    }
    origin_limit(state, key)
}

/// One request of `origin` (empty for none) against its budget: what each chat on a
/// WebSocket costs, as a request does.
pub(super) fn origin_limit(state: &AppState, key: String) -> Option<GatewayError> {
    let checked = state.limiter.check_key(&key);
    state.sweep_idle_limits();
    let not_until = checked.err()?;
    let wait = not_until.wait_time_from(governor::clock::Clock::now(
        &governor::clock::DefaultClock::default(),
    ));
    Some(GatewayError::RateLimited {
        retry_after_s: wait.as_secs_f64().ceil() as u64,
    })
}

pub(super) fn refuse(req: &Request, error: GatewayError) -> Response {
    error.response(ErrorShape::for_path(req.uri().path()))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::super::{router, AppState};
    use crate::request_log::RequestLog;
    use crate::secrets::SecretStore;

    #[tokio::test]
    async fn idle_rate_limit_buckets_are_swept_so_many_origins_cannot_grow_memory() {
        // A bucket is idle again 10 µs after its one request.
        let config = crate::config::parse(
            r#"{"limits": {"requests_per_minute": 6000000, "burst": 1}}"#,
            "test",
        )
        .unwrap();
        let log = RequestLog::new(None, 1, 10, 100).unwrap();
        let state = AppState::new(config, log, SecretStore::new());
        let app = router(state.clone());
        for port in 1..=3000u32 {
            let request = Request::get("/v1/models")
                .header("host", "127.0.0.1")
                .header("origin", format!("http://localhost:{port}"))
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
        let tracked = state.limiter.len();
        assert!(
            tracked <= 1100,
            "3000 distinct origins leave at most about one sweep's worth of buckets, not {tracked}"
        );
    }
}
