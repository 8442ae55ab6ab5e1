//! Connections to a server on this machine (Ollama, LM Studio, a mock): kept alive and
//! reused, replaced when the server has closed them, and a request is never sent twice.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}]}"#;
const STREAM: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"pong\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

/// An OpenAI-compatible server on a raw socket, counting connections and requests.
/// With `one_per_connection` it closes each connection after one answer, without
/// saying so (no `Connection: close`), as a server whose keep-alive ran out does.
struct CountingServer {
    base_url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn counting_server(one_per_connection: bool) -> CountingServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut tcp = BufReader::new(tcp);
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if tcp.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    tcp.read_exact(&mut body).await.unwrap();
                    r.fetch_add(1, Ordering::SeqCst);
                    let stream = String::from_utf8_lossy(&body).contains("\"stream\":true");
                    let (kind, answer) = if stream {
                        ("text/event-stream", STREAM)
                    } else {
                        ("application/json", COMPLETION)
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n",
                        answer.len()
                    );
                    let out = tcp.get_mut();
                    out.write_all(head.as_bytes()).await.unwrap();
                    out.write_all(answer.as_bytes()).await.unwrap();
                    if one_per_connection {
                        let _ = out.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    CountingServer {
        base_url,
        connections,
        requests,
    }
}

async fn ask(gw: &TestGateway, client: &reqwest::Client, stream: bool) -> String {
    let res = client
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "ping"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn one_upstream_connection_serves_request_after_request() {
    let server = counting_server(false).await;
    let gw = spawn_with_openai("local", &server.base_url, json!({})).await;
    // One client connection: the gateway serves it on one worker, with one pool.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert!(ask(&gw, &client, false).await.contains("pong"));
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 20);
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "twenty answers in a row over one kept-alive connection"
    );
    for _ in 0..10 {
        let body = ask(&gw, &client, true).await;
        assert!(body.contains("pong") && body.contains("[DONE]"), "{body}");
    }
    // A stream stops reading at `[DONE]`; its connection still goes back to the pool.
    assert!(
        server.connections.load(Ordering::SeqCst) <= 2,
        "streams reuse the connection too: {} connections for 30 requests",
        server.connections.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced_and_no_request_is_sent_twice() {
    let server = counting_server(true).await;
    let gw = spawn_with_openai("local", &server.base_url, json!({})).await;
    let client = reqwest::Client::new();
    for i in 0..10 {
        let stream = i % 2 == 1;
        assert!(
            ask(&gw, &client, stream).await.contains("pong"),
            "request {i}"
        );
    }
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        10,
        "each request reached the server exactly once"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 10);
    let record = gw.record_for("/v1/chat/completions", "POST").await;
    assert_eq!(record.status, 200);
}
