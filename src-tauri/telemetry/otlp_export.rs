//! Spans to the collector: a bounded queue the request's task pushes to without waiting,
//! and a task that posts what is queued, as OTLP/HTTP protobuf, every second or at 512.
//!
//! Not the OpenTelemetry SDK's `BatchSpanProcessor`: it exports from a thread of its own
//! through `futures_executor::block_on`, where our reqwest 0.12 client (tokio) needs a
//! bridge; it keeps the count of spans it drops to itself (a log line at shutdown), and
//! does not count the spans a failed export loses. Here both are counted for
//! `/metrics`, and a collector that is down costs one log line per outage.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::{mpsc, oneshot, Notify};

use super::otlp_config::{shown_url, Target};
use super::otlp_proto::rejected_spans;
use super::otlp_span::{export_request, Finished};
use crate::secrets::{SecretStore, LANGFUSE_ACCOUNT};

/// Spans waiting at most; more are dropped (OpenTelemetry's default queue size).
pub const QUEUE_SIZE: usize = 2048;
/// Spans per export (OpenTelemetry's default batch size); a full batch is sent at once.
const BATCH: usize = 512;
/// What is queued is sent at least this often.
const EXPORT_EVERY: Duration = Duration::from_secs(1);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The handle the observers push to; the task stops, after a last export, once every
/// handle is gone.
pub struct Exporter {
    queue: Arc<Queue>,
    flushes: mpsc::Sender<oneshot::Sender<()>>,
}

struct Queue {
    spans: Mutex<Vec<Finished>>,
    /// A full batch is waiting.
    batch_ready: Notify,
    dropped: Arc<AtomicU64>,
    /// Spans a full queue turned away since the last export.
    turned_away: AtomicU64,
    /// The queue overflows (it turned spans away at the last export or since): said
    /// once when it starts and once when it ends, not at every export.
    overflowing: AtomicBool,
}

impl Exporter {
    /// Starts the export task on the current tokio runtime; `None` outside one.
    pub fn start(
        target: Arc<Target>,
        secrets: SecretStore,
        dropped: Arc<AtomicU64>,
    ) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(EXPORT_TIMEOUT)
            // A redirect would carry the collector's credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("protogate/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()?;
        let queue = Arc::new(Queue {
            spans: Mutex::new(Vec::new()),
            batch_ready: Notify::new(),
            dropped,
            turned_away: AtomicU64::new(0),
            overflowing: AtomicBool::new(false),
        });
        let (flushes, asked) = mpsc::channel(4);
        let poster = Poster {
            client,
            target,
            secrets,
            down: None,
        };
        runtime.spawn(run(Arc::clone(&queue), asked, poster));
        Some(Exporter { queue, flushes })
    }

    /// Queues a span, or drops and counts it when the queue is full; never waits.
    pub fn push(&self, span: Finished) {
        let mut spans = self.queue.spans.lock().expect("span queue lock");
        if spans.len() >= QUEUE_SIZE {
            drop(spans);
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            self.queue.turned_away.fetch_add(1, Ordering::Relaxed);
            if !self.queue.overflowing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "traces: {QUEUE_SIZE} spans are waiting for the collector; new ones are \
                     dropped until they are sent (requests are not affected)"
                );
            }
            return;
        }
        spans.push(span);
        if spans.len() == BATCH {
            self.queue.batch_ready.notify_one();
        }
    }

    /// Sends what is queued now, and returns when it is sent (or lost).
    pub async fn flush(&self) {
        let (done, sent) = oneshot::channel();
        if self.flushes.send(done).await.is_ok() {
            let _ = sent.await;
        }
    }
}

/// An error and its causes, in one line: reqwest's own words alone ("error sending
/// request") do not say that the connection was refused.
fn causes(error: reqwest::Error) -> String {
    let mut line = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

async fn run(
    queue: Arc<Queue>,
    mut asked: mpsc::Receiver<oneshot::Sender<()>>,
    mut poster: Poster,
) {
    loop {
        let flush = tokio::select! {
            _ = tokio::time::sleep(EXPORT_EVERY) => None,
            _ = queue.batch_ready.notified() => None,
            flush = asked.recv() => match flush {
                Some(done) => Some(done),
                None => {
                    poster.send_all(&queue).await;
                    return;
                }
            },
        };
        poster.send_all(&queue).await;
        if let Some(done) = flush {
            let _ = done.send(());
        }
    }
}

/// Posts batches, and says when the collector stops and starts answering.
struct Poster {
    client: reqwest::Client,
    target: Arc<Target>,
    secrets: SecretStore,
    /// Spans lost since the collector stopped answering, while it does not.
    down: Option<u64>,
}

impl Poster {
    async fn send_all(&mut self, queue: &Queue) {
        let fresh = Vec::with_capacity(BATCH);
        let mut spans =
            std::mem::replace(&mut *queue.spans.lock().expect("span queue lock"), fresh);
        if queue.turned_away.swap(0, Ordering::Relaxed) == 0
            && queue.overflowing.swap(false, Ordering::Relaxed)
        {
            tracing::info!("traces: the span queue keeps up again");
        }
        while !spans.is_empty() {
            let rest = spans.split_off(spans.len().min(BATCH));
            let n = spans.len() as u64;
            let lost = match self.send(std::mem::replace(&mut spans, rest)).await {
                Ok(rejected) => {
                    if let Some(lost) = self.down.take() {
                        tracing::info!(
                            "traces: the collector at {} answers again; {lost} spans were \
                             dropped while it did not",
                            shown_url(&self.target.url)
                        );
                    }
                    rejected
                }
                Err(why) => {
                    match &mut self.down {
                        Some(lost) => *lost += n,
                        None => {
                            tracing::warn!(
                                "traces: {n} spans dropped: {why} ({}). Spans are dropped \
                                 until it answers; requests are not affected",
                                shown_url(&self.target.url)
                            );
                            self.down = Some(n);
                        }
                    }
                    n
                }
            };
            queue.dropped.fetch_add(lost, Ordering::Relaxed);
        }
    }

    /// Posts one batch; the spans the collector says it rejected, or why it failed.
    async fn send(&self, spans: Vec<Finished>) -> Result<u64, String> {
        let target = &self.target;
        let langfuse = target.langfuse_public_key.as_deref();
        let body = export_request(&target.service_name, langfuse.is_some(), &spans);
        drop(spans);
        let mut request = self
            .client
            .post(target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body);
        for (name, value) in &target.headers {
            request = request.header(name, value);
        }
        if let Some(public_key) = langfuse {
            let secret = match self.secrets.get(LANGFUSE_ACCOUNT).await {
                Ok(Some((secret, _))) => secret,
                Ok(None) => {
                    return Err(
                        "the Langfuse secret key is not set (`protogate secrets set \
                                langfuse`, or Settings in the window)"
                            .into(),
                    )
                }
                Err(e) => return Err(format!("the Langfuse secret key cannot be read: {e}")),
            };
            // reqwest marks the header sensitive.
            request = request.basic_auth(public_key, Some(secret.expose_secret()));
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "the collector cannot be reached ({})",
                causes(e.without_url())
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the collector answered {status}"));
        }
        // A partial success names the spans it refused; an empty body is full success.
        let body = response.bytes().await.unwrap_or_default();
        Ok(rejected_spans(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let target = Target {
            url: "http://127.0.0.1:9/v1/traces".parse().unwrap(),
            headers: vec![],
            service_name: "protogate".into(),
            capture_content: false,
            langfuse_public_key: None,
        };
        let dropped = Arc::new(AtomicU64::new(0));
        let exporter =
            Exporter::start(Arc::new(target), SecretStore::new(), Arc::clone(&dropped)).unwrap();
        // The export task cannot run between these pushes (one thread, no await).
        for _ in 0..QUEUE_SIZE + 3 {
            exporter.push(crate::telemetry::otlp_span::example());
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
    }
}
