//! Deadlines for the waits every forwarded request has (hyper's wait for a request head,
//! the wait for the client's body and for an upstream's answer): on a gateway worker
//! (`crate::workers`) each is a slot in that thread's own list, watched by one task on
//! the same thread; anywhere else it is tokio's timer.
//!
//! Why not tokio's timer everywhere: each one armed goes through the runtime's timer wheel
//! under its lock, and again when it is dropped, and one armed earlier than the runtime's
//! next wake-up writes to the runtime's eventfd (a syscall) even on the runtime's own
//! thread: under load `perf stat` counted an eventfd write every four forwarded requests.
//! Here a slot is a slab entry, put in and taken out in O(1) with no lock and no syscall;
//! the watching task sleeps until the earliest deadline it knows of and looks through the
//! slots only when it wakes (about once per timeout while requests come and go, since
//! they take their slots out long before), so an early wake-up costs a look, never a
//! missed deadline. tokio-util's `DelayQueue` was tried first and cost more than tokio's
//! timers: taking an entry out looks for the next expiry through its wheel and moves its
//! timer. Counted with callgrind (`scripts/bench/instructions.sh`): 74.3 k instructions
//! per forwarded request with tokio's timers, 73.3 k with these, 70.1 k with none at all.
//!
//! A deadline arms nothing until it is first polled, so a wait that ends at once (a body
//! already read, a head already arrived) costs a clock read.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

thread_local! {
    /// This thread's deadlines, on worker threads only.
    static QUEUE: RefCell<Option<Queue>> = const { RefCell::new(None) };
}

static QUEUES: AtomicU64 = AtomicU64::new(0);

/// Deadlines further off than this (a timeout set to years in the settings) are left to
/// the runtime's timer, so the watcher never sleeps toward the end of time.
const QUEUE_SPAN: Duration = Duration::from_secs(365 * 86_400);

struct Queue {
    /// Told apart from other threads' queues, so a deadline moved to another thread
    /// never takes out a slot of the wrong one.
    id: u64,
    slots: Slab<(Instant, Waker)>,
    /// When the watcher wakes next, if it sleeps; a slot due earlier wakes it now.
    armed: Option<Instant>,
    watcher: Option<Waker>,
}

impl Queue {
    fn insert(&mut self, when: Instant, waker: Waker) -> usize {
        if self.armed.is_none_or(|armed| when < armed) {
            // Woken on this thread: a push onto the runtime's local queue, no syscall.
            if let Some(watcher) = &self.watcher {
                watcher.wake_by_ref();
            }
        }
        self.slots.insert((when, waker))
    }
}

/// Gives this thread a queue, which [`drive`] must then run on a task of this thread's
/// single-threaded runtime (as a spawned task: waking `block_on`'s own future writes to
/// the runtime's eventfd, waking a task of the same thread does not).
pub(crate) fn install() {
    let id = QUEUES.fetch_add(1, Ordering::Relaxed);
    QUEUE.with_borrow_mut(|q| {
        *q = Some(Queue {
            id,
            slots: Slab::new(),
            armed: None,
            watcher: None,
        })
    });
}

/// Wakes each deadline of this thread's queue once it has passed, for as long as the
/// thread lives.
pub(crate) async fn drive() {
    let mut sleep: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut due = Vec::new();
    std::future::poll_fn(|cx| loop {
        let earliest = QUEUE.with_borrow_mut(|q| {
            let q = q.as_mut()?;
            if !q.watcher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                q.watcher = Some(cx.waker().clone());
            }
            let now = Instant::now();
            q.slots.retain(|_, (when, waker)| {
                let passed = *when <= now;
                if passed {
                    due.push(waker.clone());
                }
                !passed
            });
            q.armed = q.slots.iter().map(|(_, (when, _))| *when).min();
            q.armed
        });
        // Woken outside the borrow: dropping a waker may drop a task, and with it a
        // deadline, which borrows the queue again.
        due.drain(..).for_each(Waker::wake);
        let Some(earliest) = earliest else {
            // Nothing to watch: the next slot wakes this task.
            sleep = None;
            return Poll::<()>::Pending;
        };
        let timer =
            sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(earliest.into())));
        timer.as_mut().reset(earliest.into());
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
    })
    .await
}

/// A point in time to wait for: a future that is ready once it has passed.
#[derive(Debug)]
pub struct Deadline {
    when: Instant,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Not waited for yet.
    Idle,
    /// In slot `key` of the queue numbered `queue`.
    Queued {
        queue: u64,
        key: usize,
    },
    /// Off the workers, or polled on another thread than the one it was queued on.
    Runtime(Pin<Box<tokio::time::Sleep>>),
    Passed,
}

impl Deadline {
    pub fn at(when: Instant) -> Self {
        Deadline {
            when,
            state: State::Idle,
        }
    }

    /// `after` from now (a duration too long to add is as good as never).
    pub fn after(after: Duration) -> Self {
        let now = Instant::now();
        Deadline::at(
            now.checked_add(after)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400)),
        )
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match &mut this.state {
            State::Passed => return Poll::Ready(()),
            State::Runtime(sleep) => return sleep.as_mut().poll(cx),
            State::Queued { .. } | State::Idle => {}
        }
        let now = Instant::now();
        if now >= this.when {
            // A slot still queued is due: the watcher takes it out.
            this.state = State::Passed;
            return Poll::Ready(());
        }
        if let State::Queued { queue, key } = this.state {
            // Polled again (woken early, or moved to another task): the slot stays, with
            // this task's waker. Ahead of its time, the slot is still this deadline's.
            let kept = QUEUE.try_with(|q| {
                let mut q = q.try_borrow_mut().ok()?;
                let q = q.as_mut().filter(|q| q.id == queue)?;
                let (_, waker) = q.slots.get_mut(key)?;
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
                Some(())
            });
            if let Ok(Some(())) = kept {
                return Poll::Pending;
            }
            // Queued on another thread: that slot wakes a task no longer waiting on it,
            // once, when it is due.
        }
        // Into this thread's queue, unless the deadline is further off than `QUEUE_SPAN`.
        let near = this.when - now < QUEUE_SPAN;
        let queued = QUEUE
            .try_with(|q| {
                if !near {
                    return None;
                }
                let mut q = q.try_borrow_mut().ok()?;
                let q = q.as_mut()?;
                Some((q.id, q.insert(this.when, cx.waker().clone())))
            })
            .ok()
            .flatten();
        this.state = match queued {
            Some((queue, key)) => State::Queued { queue, key },
            None => {
                let mut sleep = Box::pin(tokio::time::sleep_until(this.when.into()));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.state = State::Passed;
                    return Poll::Ready(());
                }
                State::Runtime(sleep)
            }
        };
        Poll::Pending
    }
}

impl Drop for Deadline {
    /// Takes the slot out, while the deadline is still ahead: once it has passed, the
    /// watcher may have taken the slot already and given its key to another deadline.
    fn drop(&mut self) {
        let State::Queued { queue, key } = self.state else {
            return;
        };
        if Instant::now() < self.when {
            let _ = QUEUE.try_with(|q| {
                if let Ok(mut q) = q.try_borrow_mut() {
                    if let Some(q) = q.as_mut().filter(|q| q.id == queue) {
                        q.slots.try_remove(key);
                    }
                }
            });
        }
    }
}

impl hyper::rt::Sleep for Deadline {}

/// hyper's timer (its wait for a request head) as [`Deadline`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerTimer;

impl hyper::rt::Timer for WorkerTimer {
    fn sleep(&self, after: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline::after(after))
    }

    fn sleep_until(&self, at: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline::at(at))
    }
}

/// A wait that ran out.
#[derive(Debug, PartialEq, Eq)]
pub struct Elapsed;

pin_project_lite::pin_project! {
    /// `future`'s output, or [`Elapsed`] once its deadline has passed first. A struct
    /// rather than an `async fn`: an async fn keeps its argument and its pinned copy side
    /// by side, and the upstream call this wraps is the largest future a request has (its
    /// size is copied whenever the request's future moves).
    #[must_use = "a timeout does nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        deadline: Deadline,
    }
}

/// `future`'s output, or [`Elapsed`] once `after` has passed first.
pub fn timeout<F: Future>(after: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        deadline: Deadline::after(after),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(this.deadline).poll(cx).map(|()| Err(Elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` as a gateway worker would: a single-threaded runtime with a queue.
    fn on_a_worker(test: impl Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        install();
        runtime.block_on(async {
            tokio::spawn(drive());
            test.await
        });
        QUEUE.with_borrow_mut(|q| *q = None);
    }

    fn queued() -> usize {
        QUEUE.with_borrow(|q| q.as_ref().map_or(0, |q| q.slots.len()))
    }

    /// A timeout on a future that never ends fires, and not before its time.
    async fn times_out_after_30_ms() {
        let start = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(
            timeout(Duration::from_millis(30), never).await,
            Err(Elapsed)
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_deadline_on_a_worker_passes_when_it_is_due_and_leaves_the_queue() {
        on_a_worker(async {
            let start = Instant::now();
            let mut waits = Vec::new();
            for ms in [60, 20, 40] {
                waits.push(tokio::spawn(async move {
                    Deadline::after(Duration::from_millis(ms)).await;
                    start.elapsed()
                }));
            }
            tokio::task::yield_now().await;
            assert_eq!(queued(), 3, "each waiting deadline is one entry");
            for (wait, ms) in waits.into_iter().zip([60, 20, 40]) {
                let waited = wait.await.unwrap();
                assert!(waited >= Duration::from_millis(ms), "{waited:?} < {ms} ms");
                assert!(waited < Duration::from_secs(5), "{waited:?}");
            }
            assert_eq!(queued(), 0);
        });
    }

    #[test]
    fn a_wait_that_ends_first_takes_its_deadline_out_of_the_queue() {
        on_a_worker(async {
            for _ in 0..1000 {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let waiting = tokio::spawn(timeout(Duration::from_secs(60), rx));
                tokio::task::yield_now().await;
                tx.send(7).unwrap();
                assert_eq!(waiting.await.unwrap(), Ok(Ok(7)));
            }
            assert_eq!(queued(), 0, "no entry is left behind");
            // A wait that is over before it is polled arms nothing.
            assert_eq!(timeout(Duration::from_secs(60), async { 1 }).await, Ok(1));
            assert_eq!(queued(), 0);
        });
    }

    #[test]
    fn a_timeout_on_a_worker_fires_while_the_future_still_waits() {
        on_a_worker(async {
            times_out_after_30_ms().await;
            assert_eq!(queued(), 0);
        });
    }

    #[test]
    fn a_deadline_polled_by_another_task_wakes_that_task() {
        on_a_worker(async {
            let deadline = Deadline::after(Duration::from_millis(30));
            let mut deadline = Box::pin(deadline);
            // First polled by one task (a waker that wakes nothing), then moved to another
            // that waits for it.
            {
                let mut cx = Context::from_waker(Waker::noop());
                assert!(deadline.as_mut().poll(&mut cx).is_pending());
            }
            let other = tokio::spawn(deadline);
            tokio::time::timeout(Duration::from_secs(5), other)
                .await
                .expect("the second task is woken")
                .unwrap();
            assert_eq!(queued(), 0);
        });
    }

    #[test]
    fn a_deadline_moved_to_another_worker_is_queued_there() {
        let (tx, rx) = std::sync::mpsc::channel();
        on_a_worker(async move {
            let mut deadline = Box::pin(Deadline::after(Duration::from_millis(30)));
            {
                let mut cx = Context::from_waker(Waker::noop());
                assert!(deadline.as_mut().poll(&mut cx).is_pending());
            }
            assert_eq!(queued(), 1);
            tx.send(deadline).unwrap();
        });
        std::thread::spawn(move || {
            let deadline = rx.recv().unwrap();
            on_a_worker(async move {
                tokio::time::timeout(Duration::from_secs(5), deadline)
                    .await
                    .expect("woken on the thread it moved to");
                assert_eq!(queued(), 0);
            });
        })
        .join()
        .unwrap();
    }

    #[tokio::test]
    async fn off_the_workers_a_deadline_is_the_runtime_timer() {
        assert_eq!(queued(), 0);
        times_out_after_30_ms().await;
        assert_eq!(timeout(Duration::from_secs(60), async { 2 }).await, Ok(2));
    }

    #[test]
    fn a_deadline_too_far_for_the_queue_waits_on_the_runtime_timer() {
        on_a_worker(async {
            // Past the queue's span (its wheel would panic), and too long to add at all.
            for after in [QUEUE_SPAN * 3, Duration::MAX] {
                let waiting = timeout(after, tokio::time::sleep(Duration::from_millis(10)));
                assert_eq!(waiting.await, Ok(()));
                let mut deadline = Box::pin(Deadline::after(after));
                let mut cx = Context::from_waker(Waker::noop());
                assert!(deadline.as_mut().poll(&mut cx).is_pending());
                assert!(matches!(deadline.state, State::Runtime(_)));
            }
            assert_eq!(queued(), 0);
        });
    }
}
