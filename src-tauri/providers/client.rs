//! Sending a request upstream. A server on this machine (Ollama, LM Studio, vLLM, a mock)
//! is reached over hyper's own HTTP/1 connections, kept per gateway worker; everything
//! else goes through reqwest (TLS, HTTP/2, the system's proxy settings).
//!
//! Why two ways: a local server answers in tens of microseconds, so the gateway's own
//! cost is what a designer waits for. Measured with `scripts/bench.sh` (and the bare
//! proxy in `examples/bench_floor.rs`), reqwest's general client with its shared pool
//! cost ~12 µs of CPU per request on top of hyper's connection, about as much as all
//! of Protogate's other work; a remote provider's network time dwarfs that, and needs
//! what reqwest does.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body::{Body as _, Frame};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::header::{self, HeaderValue};
use reqwest::Url;
use tokio::net::TcpStream;

use crate::config::is_loopback;

/// An upstream's answer: status, headers, and a body read as it arrives.
pub type UpstreamResponse = Response<Body>;

/// Why a request did not reach the upstream.
#[derive(Debug)]
pub enum SendError {
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// Refused, reset, unreachable: the deepest cause, which a person can act on.
    Connect(String),
}

/// Idle connections to a local server are closed after this long.
const IDLE: Duration = Duration::from_secs(60);
/// At most this many idle connections per server and worker.
const MAX_IDLE: usize = 256;

const USER_AGENT: &str = concat!("protogate/", env!("CARGO_PKG_VERSION"));

/// The HTTP clients of one gateway: reqwest's, and idle connections to local servers,
/// one set per worker thread (`crate::workers`) so each is driven by the thread that
/// uses it. Dropped with the gateway's state, which closes them.
#[derive(Debug)]
pub struct Clients {
    remote: reqwest::Client,
    local: Vec<Mutex<LocalPool>>,
    connect_timeout: Duration,
}

/// A connection's request half: what a pool keeps.
type Sender = SendRequest<Full<Bytes>>;

#[derive(Debug, Default)]
struct LocalPool {
    /// By `host:port`, the most recently used last.
    idle: HashMap<Arc<str>, Vec<(Sender, Instant)>>,
}

/// Where a provider's requests go. For a server on this machine, what each request to
/// it needs is made once, with the provider, not per request: the pool's key, the
/// request's path and its `Host` header.
#[derive(Clone, Debug)]
pub struct Target {
    url: Url,
    local: Option<Local>,
}

#[derive(Clone, Debug)]
struct Local {
    /// `host:port`.
    key: Arc<str>,
    path: axum::http::Uri,
    host: HeaderValue,
}

impl Target {
    pub fn new(url: Url) -> Self {
        Target {
            local: Local::of(&url),
            url,
        }
    }
}

impl Local {
    /// `None` for a server elsewhere, which reqwest reaches.
    fn of(url: &Url) -> Option<Self> {
        if url.scheme() != "http" || !is_loopback(url) {
            return None;
        }
        let key = host_port(url);
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        Some(Local {
            path: path.parse().ok()?,
            host: HeaderValue::from_str(&key).ok()?,
            key: key.into(),
        })
    }
}

impl Clients {
    pub fn new(connect_timeout: Duration) -> Self {
        let remote = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(IDLE)
            // A redirect would re-send the key and the body to a host the settings
            // never named (reqwest strips only `Authorization`): it is reported, not
            // followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .expect("the HTTP client builds with static settings");
        Clients {
            remote,
            local: (0..crate::workers::count())
                .map(|_| Mutex::default())
                .collect(),
            connect_timeout,
        }
    }

    /// Sends `request` to `target` (the request's own URI is not used). Redirects are
    /// never followed.
    pub async fn send(
        self: &Arc<Self>,
        target: &Target,
        request: Request<Bytes>,
    ) -> Result<UpstreamResponse, SendError> {
        let worker = crate::workers::current().filter(|&i| i < self.local.len());
        match (worker, &target.local) {
            (Some(worker), Some(local)) => {
                self.send_local(worker, &target.url, local, request).await
            }
            _ => self.send_remote(&target.url, request).await,
        }
    }

    async fn send_remote(
        &self,
        url: &Url,
        mut request: Request<Bytes>,
    ) -> Result<UpstreamResponse, SendError> {
        *request.uri_mut() = url
            .as_str()
            .parse()
            .map_err(|_| SendError::Connect(format!("the URL {url} cannot be sent")))?;
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))
            .map_err(|e| SendError::Connect(deepest_cause(&e)))?;
        match self.remote.execute(request).await {
            Ok(response) => Ok(Response::from(response).map(Body::new)),
            Err(e) if e.is_timeout() => Err(SendError::ConnectTimeout),
            Err(e) => Err(SendError::Connect(format!(
                "{} ({})",
                deepest_cause(&e),
                host_port(url)
            ))),
        }
    }

    async fn send_local(
        self: &Arc<Self>,
        worker: usize,
        url: &Url,
        local: &Local,
        request: Request<Bytes>,
    ) -> Result<UpstreamResponse, SendError> {
        let key = &local.key;
        let (mut parts, body) = request.into_parts();
        parts.uri = local.path.clone();
        let headers = &mut parts.headers;
        headers.insert(header::HOST, local.host.clone());
        headers
            .entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        headers
            .entry(header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        let mut request = Request::from_parts(parts, Full::new(body));
        // An idle connection the server has just closed cannot take the request; hyper
        // hands it back unsent, and it goes on a new connection. A request that was
        // sent is never sent twice.
        loop {
            let (mut sender, reused) = match self.checkout(worker, key) {
                Some(sender) => (sender, true),
                None => (self.connect(url, key).await?, false),
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(SendError::Connect(format!("the connection closed ({key})")));
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, incoming) = response.into_parts();
                    let body = PooledBody {
                        incoming,
                        home: Some(Home {
                            sender,
                            clients: Arc::clone(self),
                            worker,
                            key: Arc::clone(key),
                        }),
                    };
                    return Ok(Response::from_parts(parts, Body::new(body)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => {
                        return Err(SendError::Connect(format!(
                            "{} ({key})",
                            deepest_cause(e.error())
                        )))
                    }
                },
            }
        }
    }

    fn checkout(&self, worker: usize, key: &str) -> Option<Sender> {
        let mut pool = self.local[worker].lock().expect("pool lock");
        let idle = pool.idle.get_mut(key)?;
        while let Some((sender, since)) = idle.pop() {
            if !sender.is_closed() && since.elapsed() < IDLE {
                return Some(sender);
            }
        }
        None
    }

    fn checkin(&self, worker: usize, key: Arc<str>, sender: Sender) {
        let mut pool = self.local[worker].lock().expect("pool lock");
        let idle = pool.idle.entry(key).or_default();
        // The oldest are first: those past the idle time go, and the pool stays bounded.
        let now = Instant::now();
        let stale = idle
            .iter()
            .take_while(|(s, since)| s.is_closed() || now - *since >= IDLE)
            .count()
            .max((idle.len() + 1).saturating_sub(MAX_IDLE));
        idle.drain(..stale);
        idle.push((sender, now));
    }

    async fn connect(&self, url: &Url, key: &str) -> Result<Sender, SendError> {
        let port = url.port_or_known_default().unwrap_or(80);
        // `localhost` without a resolver call, which would block the worker.
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![(ip, port).into()],
            Some(url::Host::Ipv6(ip)) => vec![(ip, port).into()],
            _ => vec![
                (Ipv4Addr::LOCALHOST, port).into(),
                (Ipv6Addr::LOCALHOST, port).into(),
            ],
        };
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&*addrs))
            .await
            .map_err(|_| SendError::ConnectTimeout)?
            .map_err(|e| SendError::Connect(format!("{e} ({key})")))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| SendError::Connect(format!("{} ({key})", deepest_cause(&e))))?;
        // Ends when the server closes it, or once the pool (with the gateway's state)
        // and the last response body using it are gone.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("a local upstream connection ended: {e}");
            }
        });
        Ok(sender)
    }
}

/// A local server's response body. Its connection goes back to the pool once the body
/// has been read to the end (its last byte, when it has a length), or once hyper has
/// read the rest when it is dropped early (a stream stops reading at its end marker); a
/// body dropped half-way closes it.
struct PooledBody {
    incoming: hyper::body::Incoming,
    /// Until the connection has gone back.
    home: Option<Home>,
}

/// A connection and the pool it goes back to.
struct Home {
    sender: Sender,
    clients: Arc<Clients>,
    worker: usize,
    key: Arc<str>,
}

impl Home {
    fn check_in(self) {
        self.clients.checkin(self.worker, self.key, self.sender);
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.incoming).poll_frame(cx);
        // A body with a length is done with its last byte: a reader that knows the
        // length (hyper's server does) will not poll again to hear so.
        if matches!(polled, Poll::Ready(None)) || polled.is_ready() && this.incoming.is_end_stream()
        {
            if let Some(home) = this.home.take() {
                home.check_in();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        let Some(mut home) = self.home.take() else {
            return;
        };
        if self.incoming.is_end_stream() {
            return home.check_in();
        }
        // Ready again once the response has been read to its end; an error once hyper
        // closes a connection whose answer nobody reads any more.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if home.sender.ready().await.is_ok() {
                    home.check_in();
                }
            });
        }
    }
}

fn host_port(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn deepest_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
