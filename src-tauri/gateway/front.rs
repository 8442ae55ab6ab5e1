//! What runs around the routes, outermost first: the request log and the `Host`/`Origin`
//! gate ([`Front`]), CORS (tower-http), then the access token and the rate limit
//! ([`Admit`]). CORS sits inside the refusals, so a refused origin gets no
//! `Access-Control-Allow-*` header, and outside everything else, so every 4xx/5xx an
//! allowed origin gets (token, rate limit, body size, upstream errors) carries them.
//!
//! Plain tower services rather than axum's `from_fn` middlewares or `Router::layer`:
//! those clone the whole stack below them and box two futures per layer and request,
//! and the four layers cost about a quarter of Protogate's CPU per forwarded request
//! (measured by switching each off under `scripts/bench.sh`'s load). Their checks are
//! synchronous, so the inner service is called at once and nothing is cloned; only a
//! required access token (a keychain read) waits before the routes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::Router;
use tower::{Service, ServiceExt};
use tower_http::cors::Cors;

use super::conn::ClientStall;
use super::guard;
use super::state::AppState;
use crate::request_log::RequestRecord;

/// The whole gateway as one service: front, CORS, admit, routes.
pub type Gateway = Front<Cors<Admit<Router>>>;

const CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Opens each request's record, and refuses a `Host` or `Origin` that is not allowed.
#[derive(Clone)]
pub struct Front<S> {
    state: AppState,
    /// The connection's flag for a client that stopped reading, for the log.
    stall: Option<ClientStall>,
    inner: S,
}

impl<S> Front<S> {
    pub(super) fn new(state: AppState, inner: S) -> Self {
        Front {
            state,
            stall: None,
            inner,
        }
    }

    /// The same service for one connection, whose stall flag the log reads.
    pub fn for_connection(&self, stall: ClientStall) -> Self
    where
        S: Clone,
    {
        Front {
            state: self.state.clone(),
            stall: Some(stall),
            inner: self.inner.clone(),
        }
    }
}

impl<S> Service<Request> for Front<Cors<S>>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> BoxFuture {
        let record = RequestRecord::open(&self.state.log, &mut req, self.stall.clone());
        let refusal = guard::host_refusal(&self.state, &req)
            .or_else(|| guard::origin_refusal(&self.state, &req));
        if let Some(error) = refusal {
            let response = record.respond(guard::refuse(&req, error));
            return Box::pin(std::future::ready(Ok(response)));
        }
        // CORS is for cross-origin requests, which browsers always send with an `Origin`
        // (preflights included); SDKs, scripts and curl send none, and skip tower-http's
        // work (2.9 k instructions per forwarded request, callgrind: a sixteenth of the
        // gateway's own). `Vary` is still added below.
        if req.method() != Method::OPTIONS && !req.headers().contains_key(header::ORIGIN) {
            return respond(self.inner.get_mut().call(req), record);
        }
        respond(self.inner.call(req), record)
    }
}

/// The answer of the services inside, with `Vary` added and the record completed.
fn respond<F>(answer: F, record: RequestRecord) -> BoxFuture
where
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    Box::pin(async move {
        let mut response = answer.await?;
        // What CORS answers depends on these request headers (see `cors_layer`); a cache
        // must not give an answer to a request without `Origin` to one with it.
        response.headers_mut().append(header::VARY, CORS_VARY);
        Ok(record.respond(response))
    })
}

/// Checks the access token (when one is required) and the rate limit. Preflights are
/// answered by CORS before this and count for neither.
#[derive(Clone)]
pub struct Admit<S> {
    state: AppState,
    inner: S,
}

impl<S> Admit<S> {
    pub(super) fn new(state: AppState, inner: S) -> Self {
        Admit { state, inner }
    }
}

impl<S> Service<Request> for Admit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> BoxFuture {
        let token = self.state.config.require_access_token && req.method() != Method::OPTIONS;
        // In team mode the rate limit is Redis's answer, which is waited for too.
        if token || self.state.redis.is_some() {
            // The token is read from the keychain (cached): the routes wait for it, so
            // they get their own copy of the (ready) inner service.
            let ready = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, ready);
            let state = self.state.clone();
            return Box::pin(async move {
                let (method, uri, headers) = (req.method(), req.uri(), req.headers());
                let mut refusal = None;
                if token {
                    refusal =
                        guard::token_refusal(&state, method, uri, headers, req.extensions()).await;
                }
                if refusal.is_none() {
                    let key = guard::limit_key(&req);
                    refusal = guard::shared_origin_limit(&state, key).await;
                }
                if let Some(error) = refusal {
                    return Ok(guard::refuse(&req, error));
                }
                inner.oneshot(req).await
            });
        }
        if let Some(error) = guard::limit_refusal(&self.state, &req) {
            return Box::pin(std::future::ready(Ok(guard::refuse(&req, error))));
        }
        Box::pin(self.inner.call(req))
    }
}
