//! The threads client connections are served on: one single-threaded tokio runtime per
//! core, each connection on one of them for its whole life (as actix-web does).
//!
//! Why not tokio's work-stealing runtime: a forwarded request is several tasks (the
//! client connection, the upstream connection) that wake one another several times per
//! request, and across worker threads those wakeups are futex calls and cache misses.
//! Measured with `scripts/bench.sh --quick` on 2 cores (2026-12-01): 24 % → 28 % of the
//! direct call's throughput at 64 connections, 0.037 → 0.033 ms CPU per request. Each
//! worker also keeps its own connections to local upstreams (`providers/client.rs`), so
//! a request never waits on a connection another thread drives.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::runtime::Handle;

struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

thread_local! {
    /// This thread's place among the workers, on worker threads only.
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// As many workers as cores (at least one, at most [`MAX_WORKERS`]): a designer's laptop
/// has more cores than one person's prototypes keep busy.
const MAX_WORKERS: usize = 8;

fn workers() -> &'static Workers {
    WORKERS.get_or_init(|| {
        let handles = (0..count()).map(start_worker).collect();
        Workers {
            handles,
            next: AtomicUsize::new(0),
        }
    })
}

fn start_worker(index: usize) -> Handle {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(format!("protogate-worker-{index}"))
        .build()
        .expect("a single-threaded runtime builds");
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("protogate-worker-{index}"))
        .spawn(move || {
            INDEX.with(|i| i.set(Some(index)));
            crate::deadline::install();
            // Lives as long as the process: gateways come and go (settings, stop and
            // start), the threads stay, idle in epoll when nothing is served.
            runtime.block_on(async {
                tokio::spawn(crate::deadline::drive());
                std::future::pending::<()>().await
            });
        })
        .expect("the OS starts a worker thread");
    handle
}

/// The worker the next connection goes to, round robin.
pub fn next() -> &'static Handle {
    let workers = workers();
    let i = workers.next.fetch_add(1, Ordering::Relaxed) % workers.handles.len();
    &workers.handles[i]
}

/// How many workers there are, or will be once a gateway serves (each gets its own
/// upstream pool); asking starts no thread.
pub fn count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
}

/// The worker this code runs on, or `None` off the workers (the CLI's own runtime, the
/// desktop app's, a test's).
pub fn current() -> Option<usize> {
    INDEX.with(Cell::get)
}
