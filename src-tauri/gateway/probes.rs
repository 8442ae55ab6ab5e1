//! `GET /livez` and `GET /readyz`, for a platform's health checks (Kubernetes' kubelet, a
//! load balancer). They are answered before the `Host`, origin, token and rate-limit
//! checks, and are not logged: the kubelet calls the pod's IP every few seconds, with
//! that IP as `Host` and no token, and its calls would crowd the request log. That is safe
//! because they tell nothing a stranger could use: "up", and "ready" or why not in a few
//! plain words. Every other route keeps every check, in team mode the token included.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::state::AppState;
use crate::secrets::{SecretStatus, ACCESS_TOKEN_ACCOUNT};

/// The process is up (and its runtime answers).
pub const LIVEZ: &str = "/livez";
/// It should get traffic: listening, not draining, and every readiness check passes.
pub const READYZ: &str = "/readyz";

/// One more condition for `/readyz`, e.g. "Redis answers" in team mode. Called on every
/// probe, from every kubelet, every few seconds: read a state kept up to date elsewhere
/// (the connection's last ping), never wait on I/O here. The reason is shown to anyone
/// who asks, without a token, so it says what is wrong in plain words and nothing more
/// (no address, no credential).
pub trait ReadinessCheck: Send + Sync {
    /// `None` when ready; otherwise why not.
    fn not_ready(&self) -> Option<String>;
}

impl<F: Fn() -> Option<String> + Send + Sync> ReadinessCheck for F {
    fn not_ready(&self) -> Option<String> {
        self()
    }
}

/// What the probes answer from, shared by every listener of a gateway and kept across
/// settings changes (the app state is replaced then, this is not).
#[derive(Clone, Default)]
pub struct Probes(Arc<Inner>);

#[derive(Default)]
struct Inner {
    draining: AtomicBool,
    checks: RwLock<Vec<Arc<dyn ReadinessCheck>>>,
}

impl Probes {
    /// Adds a condition `/readyz` checks from now on.
    pub fn add_check(&self, check: impl ReadinessCheck + 'static) {
        let mut checks = self.0.checks.write().expect("readiness checks lock");
        checks.push(Arc::new(check));
    }

    /// Marks the gateway as stopping (`/readyz` answers 503), or as serving again.
    pub fn set_draining(&self, draining: bool) {
        self.0.draining.store(draining, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    /// Why the gateway should not get traffic now, or `None`. Settings are not checked
    /// here: a gateway only ever runs with valid ones, and a broken file on disk (shared
    /// by every replica through one ConfigMap) leaves them running; making that unready
    /// would take every replica out at once.
    pub async fn not_ready(&self, state: &AppState) -> Option<String> {
        if self.is_draining() {
            return Some("shutting down: open requests are finishing".into());
        }
        if state.config.require_access_token {
            let var = crate::secrets::env_var_name(ACCESS_TOKEN_ACCOUNT);
            match state.secrets.status(ACCESS_TOKEN_ACCOUNT).await {
                SecretStatus::Environment | SecretStatus::Keychain => {}
                // Members' tokens open the gateway as the access token does.
                SecretStatus::Missing if state.members.any().await == Ok(true) => {}
                SecretStatus::Missing => {
                    return Some(format!(
                        "an access token is required but none is set; give it as {var} or \
                         in the keychain"
                    ))
                }
                SecretStatus::Unreadable(e) => {
                    return Some(format!(
                        "an access token is required but none is set in {var}, and the \
                         keychain cannot be read ({e})"
                    ))
                }
            }
        }
        if let Some(reason) = state.redis.as_ref().and_then(|r| r.not_ready()) {
            return Some(reason);
        }
        let checks = self.0.checks.read().expect("readiness checks lock").clone();
        checks.iter().find_map(|check| check.not_ready())
    }
}

type ProbeAnswer = Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

/// The answer to `request` when it is a probe (`GET` or `HEAD` of [`LIVEZ`] or
/// [`READYZ`]); `state` is read only for `/readyz`.
pub(super) fn answer<B>(
    probes: &Probes,
    state: impl FnOnce() -> AppState,
    request: &Request<B>,
) -> Option<ProbeAnswer> {
    let path = request.uri().path();
    if path != LIVEZ && path != READYZ {
        return None;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    if path == LIVEZ {
        let ok = reply(StatusCode::OK, json!({"status": "ok"}));
        return Some(Box::pin(std::future::ready(Ok(ok))));
    }
    let (probes, state) = (probes.clone(), state());
    Some(Box::pin(async move {
        Ok(match probes.not_ready(&state).await {
            None => reply(StatusCode::OK, json!({"status": "ready"})),
            Some(reason) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "not ready", "reason": reason}),
            ),
        })
    }))
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use http_body_util::BodyExt;

    use super::*;
    use crate::request_log::RequestLog;
    use crate::secrets::SecretStore;

    fn state(settings: &str, env: &[(&str, &str)]) -> AppState {
        let config = crate::config::parse(settings, "test").unwrap();
        let env: HashMap<_, _> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = RequestLog::new(None, 1, 10, 100).unwrap();
        AppState::new(config, log, SecretStore::with_environment(env))
    }

    async fn ask(probes: &Probes, state: &AppState, method: Method, path: &str) -> (u16, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        let answer = answer(probes, || state.clone(), &request).expect("a probe");
        let response = answer.await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_says_why_not_while_draining_or_a_check_fails_and_livez_stays_ok() {
        let state = state("{}", &[]);
        let probes = Probes::default();
        assert_eq!(
            ask(&probes, &state, Method::GET, READYZ).await,
            (200, r#"{"status":"ready"}"#.into())
        );
        probes.add_check(|| Some("Redis does not answer".to_string()));
        let (status, body) = ask(&probes, &state, Method::GET, READYZ).await;
        assert_eq!(status, 503);
        assert!(body.contains("Redis does not answer"), "{body}");

        let probes = Probes::default();
        probes.set_draining(true);
        let (status, body) = ask(&probes, &state, Method::GET, READYZ).await;
        assert_eq!(status, 503);
        assert!(body.contains("shutting down"), "{body}");
        assert_eq!(
            ask(&probes, &state, Method::HEAD, LIVEZ).await.0,
            200,
            "a draining process is still alive"
        );
    }

    #[tokio::test]
    async fn a_required_access_token_that_is_not_set_makes_it_unready() {
        let settings = r#"{"host": "0.0.0.0", "require_access_token": true}"#;
        let probes = Probes::default();
        let var = "PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN";
        let with_token = state(settings, &[(var, "pg-probe-token-0123456789")]);
        let (status, body) = ask(&probes, &with_token, Method::GET, READYZ).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("pg-probe-token"), "{body}");

        let without = state(settings, &[]);
        let (status, body) = ask(&probes, &without, Method::GET, READYZ).await;
        assert_eq!(status, 503);
        assert!(body.contains(var), "{body}");
    }

    #[test]
    fn only_get_and_head_of_the_two_paths_are_probes() {
        let probes = Probes::default();
        let state = || -> AppState { panic!("no state is read for a request that is not a probe") };
        for (method, path) in [
            (Method::POST, LIVEZ),
            (Method::DELETE, READYZ),
            (Method::GET, "/livez/x"),
            (Method::GET, "/health"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap();
            assert!(answer(&probes, state, &request).is_none(), "{path}");
        }
    }
}
