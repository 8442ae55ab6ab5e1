//! The least a forwarding proxy costs on this machine, for `scripts/bench.sh`: hyper's
//! server and hyper's client and nothing else, one single-threaded runtime per core, each
//! with its own keep-alive connections to the upstream. No routing, no checks, no JSON,
//! no log: bodies are passed through as bytes, a streamed answer chunk by chunk as it
//! arrives (so its time to first token is the floor's too). What Protogate adds over this
//! floor is what its own work costs; the floor over direct is the second TCP hop itself.
//!
//! Usage: bench_floor <upstream-port> [port]   (prints the port it listens on)

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

thread_local! {
    /// This thread's idle upstream connections.
    static POOL: RefCell<Vec<SendRequest<Full<Bytes>>>> = const { RefCell::new(Vec::new()) };
}

async fn upstream_connection(upstream: SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(upstream).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::task::spawn_local(connection);
    sender
}

/// The upstream's answer as it arrives; its connection goes back to this thread's pool
/// once the answer has been read to the end.
struct Passed {
    incoming: Incoming,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Body for Passed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.incoming).poll_frame(cx);
        // The end of a chunked body, or the last byte of one with a length (after which
        // hyper's server polls no more).
        if matches!(polled, Poll::Ready(None)) || polled.is_ready() && self.incoming.is_end_stream()
        {
            if let Some(sender) = self.sender.take() {
                POOL.with(|p| p.borrow_mut().push(sender));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
) -> Result<Response<Passed>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut sender = match POOL.with(|p| p.borrow_mut().pop()) {
        Some(sender) if !sender.is_closed() => sender,
        _ => upstream_connection(upstream).await,
    };
    sender.ready().await.unwrap();
    let mut out = Request::post(parts.uri.path())
        .header("host", upstream.to_string())
        .body(Full::new(body))
        .unwrap();
    if let Some(ct) = parts.headers.get("content-type") {
        out.headers_mut().insert("content-type", ct.clone());
    }
    let response = sender.send_request(out).await.unwrap();
    Ok(response.map(|incoming| Passed {
        incoming,
        sender: Some(sender),
    }))
}

fn main() {
    let port = |n: usize| std::env::args().nth(n).and_then(|p| p.parse::<u16>().ok());
    let upstream = SocketAddr::from((
        [127, 0, 0, 1],
        port(1).expect("usage: bench_floor <upstream-port> [port]"),
    ));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port(2).unwrap_or(0))).unwrap();
    listener.set_nonblocking(true).unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let threads: Vec<_> = (0..std::thread::available_parallelism().map_or(1, |n| n.get()))
        .map(|_| {
            let listener = listener.try_clone().unwrap();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let listener = TcpListener::from_std(listener).unwrap();
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        tcp.set_nodelay(true).unwrap();
                        tokio::task::spawn_local(async move {
                            let service = hyper::service::service_fn(move |r| forward(r, upstream));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tcp), service)
                                .await;
                        });
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
