//! The cache's unit tests: settings changes, and calls in flight (`coalesce.rs`).

use super::*;

fn config(extra: &str) -> Config {
    let text = format!(
        r#"{{"providers": [{{"id": "openai", "kind": "openai",
            "base_url": "https://api.openai.com/v1", "default_model": "m"}}],
            "default_provider": "openai", {extra}}}"#
    );
    crate::config::parse(&text, "test").unwrap()
}

fn same(a: &Cache, b: &Cache) -> bool {
    match (&a.0, &b.0) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

#[test]
fn the_answers_outlive_a_settings_change_that_leaves_them_right() {
    let before = config(r#""cache": {"enabled": true}"#);
    let previous = Cache::new(&before.cache);
    let carried = |after: &Config| {
        let mut cache = Cache::new(&after.cache);
        cache.carry_on(after, &previous, &before);
        same(&cache, &previous)
    };
    assert!(carried(&config(
        r#""cache": {"enabled": true}, "allowed_hosts": ["pc.local"]"#
    )));
    assert!(!carried(&config(
        r#""cache": {"enabled": true, "ttl_s": 60}"#
    )));
    let mut elsewhere = before.clone();
    elsewhere.providers[0].base_url = Some("http://127.0.0.1:1234/v1".parse().unwrap());
    assert!(
        !carried(&elsewhere),
        "the provider now calls another upstream"
    );
}

#[test]
fn an_off_cache_is_empty_and_consulted_for_nothing() {
    let cache = Cache::new(&CacheSection::default());
    assert!(cache.0.is_none());
    let record = RecordHandle::new(Default::default(), 10);
    assert!(cache
        .consult("openai", &ChatRequest::default(), &record, true)
        .is_none());
}

/// Calls in flight, driven by a test that sends the upstream's frames one by one.
mod flights {
    use std::future::Future;
    use std::time::Duration;

    use super::super::coalesce::{Flights, Joined};
    use super::*;
    use crate::chat::FinishReason;
    use crate::error::ProviderError;

    fn frame(text: &str) -> Frame {
        Frame::event(ChatEvent::Text(text.into()))
    }

    fn permit() -> tokio::sync::OwnedSemaphorePermit {
        Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap()
    }

    /// A streamed call whose frames the test sends one by one.
    fn gated_call() -> (
        tokio::sync::mpsc::UnboundedSender<Result<Frame, ProviderError>>,
        impl Future<Output = Result<Streaming, GatewayError>> + Send + 'static,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let frames = frames_from(rx);
        let call = async move {
            Ok(Streaming {
                frames,
                permit: permit(),
            })
        };
        (tx, call)
    }

    fn frames_from(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Result<Frame, ProviderError>>,
    ) -> FrameStream {
        Box::pin(async_stream::stream! {
            while let Some(item) = rx.recv().await {
                yield item;
            }
        })
    }

    async fn texts(stream: FrameStream) -> Vec<String> {
        stream
            .map(|f| match f {
                Ok(f) => format!("{:?}", f.events),
                Err(e) => format!("error: {e}"),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn followers_get_the_whole_answer_from_its_start() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join([1; 32]) else {
            panic!("the first is the leader")
        };
        let (tx, call) = gated_call();
        let (kept_tx, kept_rx) = std::sync::mpsc::channel();
        leader.drive_stream(call, move |frames| kept_tx.send(frames.len()).unwrap());
        tx.send(Ok(frame("a"))).unwrap();
        let leader = tokio::spawn(texts(leader.stream().await.unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Joined::Follower(late) = flights.join([1; 32]) else {
            panic!("the second follows")
        };
        let late = tokio::spawn(async move { texts(late.stream().await.unwrap()).await });
        tx.send(Ok(frame("b"))).unwrap();
        let mut end = Frame::event(ChatEvent::Finish(FinishReason::Stop));
        end.events.push(ChatEvent::End);
        tx.send(Ok(end)).unwrap();
        let (leader, late) = (leader.await.unwrap(), late.await.unwrap());
        assert_eq!(leader.len(), 3);
        assert_eq!(leader, late, "the late one got every frame from the first");
        assert_eq!(kept_rx.recv().unwrap(), 3, "the complete answer was kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(flights.len(), 0, "a finished flight is forgotten");
    }

    #[tokio::test]
    async fn the_call_stops_when_the_last_reader_leaves_and_not_before() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join([2; 32]) else {
            panic!()
        };
        let (tx, call) = gated_call();
        leader.drive_stream(call, |_| panic!("an unfinished answer is never kept"));
        tx.send(Ok(frame("a"))).unwrap();
        let Joined::Follower(follower) = flights.join([2; 32]) else {
            panic!()
        };
        let first = leader.stream().await.unwrap();
        let second = follower.stream().await.unwrap();
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !tx.is_closed(),
            "one reader left; the call goes on for the other"
        );
        drop(second);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(tx.is_closed(), "the last reader left; the call was dropped");
        assert!(
            matches!(flights.join([2; 32]), Joined::Leader(_)),
            "the next request starts afresh"
        );
    }

    #[tokio::test]
    async fn a_whole_answer_is_shared_and_kept_once() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join([5; 32]) else {
            panic!()
        };
        let Joined::Follower(follower) = flights.join([5; 32]) else {
            panic!()
        };
        let (go, gate) = tokio::sync::oneshot::channel::<()>();
        let call = async move {
            gate.await.unwrap();
            Ok(Completion {
                text: "hi".into(),
                ..Completion::default()
            })
        };
        let (kept_tx, kept_rx) = std::sync::mpsc::channel();
        leader.drive_whole(call, move |c| kept_tx.send(c.text.clone()).unwrap());
        go.send(()).unwrap();
        let (a, b) = tokio::join!(leader.whole(), follower.whole());
        assert_eq!(
            (a.unwrap().text, b.unwrap().text),
            ("hi".into(), "hi".into())
        );
        assert_eq!(kept_rx.try_iter().collect::<Vec<_>>(), ["hi"]);
    }

    #[tokio::test]
    async fn a_refusal_and_a_failure_reach_every_reader_and_nothing_is_kept() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join([3; 32]) else {
            panic!()
        };
        let Joined::Follower(follower) = flights.join([3; 32]) else {
            panic!()
        };
        leader.drive_stream(async { Err(GatewayError::Busy { limit: 1 }) }, |_| {
            panic!("never kept")
        });
        assert!(matches!(
            leader.stream().await,
            Err(GatewayError::Busy { .. })
        ));
        assert!(matches!(
            follower.stream().await,
            Err(GatewayError::Busy { .. })
        ));

        let Joined::Leader(leader) = flights.join([4; 32]) else {
            panic!()
        };
        let (tx, call) = gated_call();
        leader.drive_stream(call, |_| panic!("never kept"));
        tx.send(Ok(frame("a"))).unwrap();
        tx.send(Err(ProviderError::Cut {
            provider: "p".into(),
        }))
        .unwrap();
        let got = texts(leader.stream().await.unwrap()).await;
        assert!(got.last().unwrap().starts_with("error: "), "{got:?}");
    }
}
