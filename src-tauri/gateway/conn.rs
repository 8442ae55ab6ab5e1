//! Client connections, accepted with a write deadline. A client that stops reading (a tab
//! left in the background, a stuck script) would otherwise hold its stream, its upstream
//! call and a stream slot forever: hyper waits on a full socket with no timeout of its
//! own, and while it waits the response body is never polled, so nothing in the body can
//! notice. A write that makes no progress for the deadline fails instead, hyper closes
//! the connection, and the request log says why.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Accepts connections whose writes fail after `deadline` without progress.
pub struct DeadlineListener {
    pub inner: TcpListener,
    pub deadline: Duration,
}

impl DeadlineListener {
    /// The next connection, not yet tied to a runtime: it is served on a worker thread
    /// (see `crate::workers`), whose own reactor must watch the socket.
    pub async fn accept(&mut self) -> Accepted {
        loop {
            let (tcp, _addr) = Listener::accept(&mut self.inner).await;
            // Small SSE writes must leave at once, not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            match tcp.into_std() {
                Ok(tcp) => {
                    return Accepted {
                        tcp,
                        deadline: self.deadline,
                        stalled: ClientStall::default(),
                    }
                }
                Err(e) => tracing::debug!("an accepted connection was lost: {e}"),
            }
        }
    }
}

/// A connection accepted on the listener's thread, to be served on another.
pub struct Accepted {
    tcp: std::net::TcpStream,
    deadline: Duration,
    stalled: ClientStall,
}

impl Accepted {
    /// The flag the request log reads for this connection.
    pub fn stall(&self) -> ClientStall {
        self.stalled.clone()
    }

    /// The stream, watched by the reactor of the runtime this is called on.
    pub fn into_stream(self) -> io::Result<DeadlineStream> {
        Ok(DeadlineStream {
            tcp: TcpStream::from_std(self.tcp)?,
            deadline: self.deadline,
            timer: None,
            stalled: self.stalled,
        })
    }
}

/// Set when a connection was closed because its client stopped reading; the connection's
/// copy of the gateway hands it to each request's record (see `server.rs` and
/// `front.rs`), so the request log can say so.
#[derive(Clone, Debug, Default)]
pub struct ClientStall(Arc<AtomicBool>);

impl ClientStall {
    pub fn stalled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A TCP stream whose writes time out when the peer takes no bytes.
pub struct DeadlineStream {
    tcp: TcpStream,
    deadline: Duration,
    /// Armed while a write waits on a full socket; dropped as soon as one goes through.
    timer: Option<Pin<Box<Sleep>>>,
    stalled: ClientStall,
}

impl DeadlineStream {
    /// Runs one write attempt: a success disarms the timer, a wait arms it, and a wait
    /// past the deadline becomes an error.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        attempt: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(result) = attempt(Pin::new(&mut self.tcp), cx) {
            self.timer = None;
            return Poll::Ready(result);
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(deadline)));
        ready!(timer.as_mut().poll(cx));
        self.stalled.0.store(true, Ordering::Relaxed);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no bytes within the deadline",
        )))
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guard(cx, |tcp, cx| tcp.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard(cx, |tcp, cx| tcp.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |tcp, cx| tcp.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
