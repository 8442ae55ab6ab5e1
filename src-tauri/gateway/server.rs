//! The accept loop: each connection served by hyper with the router that is current when
//! a request arrives, so settings can change under a running gateway. Connections are
//! tracked, so a stop really stops: once the drain time is over, every connection still
//! open (a long stream and its upstream call) is ended, not left running in the
//! background of a long-lived app.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use super::conn::{ClientStall, DeadlineListener};
use super::probes::{self, Probes};
use super::{router, AppState, Gateway};
use crate::deadline::WorkerTimer;

/// How long open requests may run on after a stop is asked for, unless the gateway is
/// given its own time ([`LiveRouter::with_drain`]).
pub const DRAIN: Duration = Duration::from_secs(5);

/// The state and router a gateway serves, replaceable while it runs: requests already
/// under way finish with what they started with, the next ones get the new settings.
/// With them, what outlives a settings change: the health probes and the drain time.
#[derive(Clone)]
pub struct LiveRouter {
    current: Arc<ArcSwap<Live>>,
    probes: Probes,
    drain: Duration,
}

struct Live {
    state: AppState,
    gateway: Gateway,
}

impl LiveRouter {
    pub fn new(state: AppState) -> Self {
        LiveRouter {
            current: Arc::new(ArcSwap::from_pointee(Live {
                gateway: router(state.clone()),
                state,
            })),
            probes: Probes::default(),
            drain: DRAIN,
        }
    }

    /// The same, answering `/livez` and `/readyz` from `probes`.
    #[must_use]
    pub fn with_probes(mut self, probes: Probes) -> Self {
        self.probes = probes;
        self
    }

    /// The same, letting open requests run on for `drain` after a stop is asked for.
    #[must_use]
    pub fn with_drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// Serves `state` from the next request on.
    pub fn replace(&self, state: AppState) {
        self.current.store(Arc::new(Live {
            gateway: router(state.clone()),
            state,
        }));
    }

    /// The state requests are served with now.
    pub fn state(&self) -> AppState {
        self.current.load().state.clone()
    }
}

/// A browser that does not trust the CA yet drops the handshake; one that never finishes
/// it must not hold a connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then stops listening, lets open requests finish
/// for the drain time ([`DRAIN`] unless set) and ends the connections still open.
pub async fn serve_live(
    listener: TcpListener,
    live: LiveRouter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, live, None, shutdown).await
}

/// [`serve_live`] over TLS (`https://localhost`), with the same router and limits.
pub async fn serve_live_tls(
    listener: TcpListener,
    live: LiveRouter,
    tls: TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, live, Some(tls), shutdown).await
}

async fn serve_with(
    listener: TcpListener,
    live: LiveRouter,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut listener = DeadlineListener {
        inner: listener,
        deadline: live.state().config.limits.idle_timeout,
    };
    // A client that trickles its request head (slowloris) is cut after the idle timeout.
    let head_timeout = live.state().config.limits.idle_timeout;
    // Plain HTTP is HTTP/1 only: browsers speak HTTP/2 only over TLS, and telling the two
    // apart on every connection reads through a rewind buffer for its whole life
    // (about 1 % of a forwarded request's instructions, `scripts/bench/instructions.sh`).
    let mut plain = http1::Builder::new();
    plain.timer(WorkerTimer).header_read_timeout(head_timeout);
    // Over TLS, HTTP/2 when the browser offers it (ALPN).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(WorkerTimer)
        .header_read_timeout(head_timeout);
    let graceful = GracefulShutdown::new();
    // Plain connections are drained by hand, see below.
    let draining = tokio_util::sync::CancellationToken::new();
    // WebSockets leave hyper's connection once upgraded: they watch this instead.
    let stopping = super::ws::Stopping::default();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let service = PerConnection::new(live.clone(), accepted.stall(), stopping.clone());
                let (builder, plain) = (builder.clone(), plain.clone());
                let (watcher, tls, draining) = (graceful.watcher(), tls.clone(), draining.clone());
                connections.spawn_on(async move {
                    let io = match accepted.into_stream() {
                        Ok(io) => io,
                        Err(e) => return tracing::debug!("an accepted connection was lost: {e}"),
                    };
                    let Some(tls) = tls else {
                        // With upgrades (`/ws/chat`, `/v1/responses`), which hyper-util's
                        // watcher cannot take (no `GracefulConnection` for hyper's
                        // `UpgradeableConnection`): drained by hand, the watcher held until
                        // the connection ends so that `graceful.shutdown()` still waits.
                        let connection = plain.serve_connection(TokioIo::new(io), service).with_upgrades();
                        let mut connection = std::pin::pin!(connection);
                        tokio::select! {
                            _ = connection.as_mut() => return,
                            _ = draining.cancelled() => connection.as_mut().graceful_shutdown(),
                        }
                        let _ = connection.await;
                        drop(watcher);
                        return;
                    };
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(io)).await {
                        Ok(Ok(stream)) => {
                            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                            let _ = watcher.watch(connection.into_owned()).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake refused: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }, crate::workers::next());
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    live.probes.set_draining(true);
    drop(listener);
    draining.cancel();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(live.drain) => {}
    }
    stopping.stop();
    connections.shutdown().await;
    Ok(())
}

/// One connection's copy of the gateway, so that a request does not clone the whole
/// service stack; replaced when the settings change under a running gateway.
struct PerConnection {
    live: LiveRouter,
    stall: ClientStall,
    stopping: super::ws::Stopping,
    current: RefCell<(Arc<Live>, Gateway)>,
}

impl PerConnection {
    fn new(live: LiveRouter, stall: ClientStall, stopping: super::ws::Stopping) -> Self {
        let now = live.current.load_full();
        let gateway = now.gateway.for_connection(stall.clone());
        PerConnection {
            live,
            stall,
            stopping,
            current: RefCell::new((now, gateway)),
        }
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for PerConnection {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> ResponseFuture {
        if let Some(answer) = probes::answer(&self.live.probes, || self.live.state(), &request) {
            return answer;
        }
        let mut request = request.map(Body::new);
        if request.headers().contains_key(hyper::header::UPGRADE) {
            request.extensions_mut().insert(self.stopping.clone());
        }
        let now = self.live.current.load();
        let mut current = self.current.borrow_mut();
        if !Arc::ptr_eq(&current.0, &now) {
            *current = (
                Arc::clone(&now),
                now.gateway.for_connection(self.stall.clone()),
            );
        }
        let gateway = &mut current.1;
        // Every layer passes the routes' readiness on, and axum's router is always ready.
        match gateway.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => gateway.call(request),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Box::pin(gateway.clone().oneshot(request)),
        }
    }
}
