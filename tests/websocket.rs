//! The WebSocket routes on a real gateway: `/ws/chat` (the wiring spec's chat frames)
//! with tokio-tungstenite as the client and the mock OpenAI upstream behind it, the
//! Responses API's WebSocket mode checked by OpenAI's Python SDK types
//! (`tests/responses_ws.py`, in the venv `scripts/test.sh` makes). A real Chromium
//! `WebSocket` from a public page is in `tests/browser.rs`, with the other browser tests.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `url` as a page on `origin` would, offering `protocols` when given.
async fn connect(
    url: &str,
    origin: Option<&str>,
    protocols: Option<&str>,
) -> Result<
    (
        Socket,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        let origin = HeaderValue::from_str(origin).unwrap();
        request.headers_mut().insert("origin", origin);
    }
    if let Some(protocols) = protocols {
        let protocols = HeaderValue::from_str(protocols).unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocols);
    }
    tokio_tungstenite::connect_async(request).await
}

fn ws_url(gw: &TestGateway, path: &str) -> String {
    format!("ws://{}{path}", gw.addr)
}

async fn open(gw: &TestGateway) -> Socket {
    let (socket, _) = connect(&ws_url(gw, "/ws/chat"), Some(FRAMER_ORIGIN), None)
        .await
        .expect("the socket opens");
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next JSON frame from the gateway.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }
}

/// Reads frames until the close frame, which it returns.
async fn close_frame(socket: &mut Socket) -> (CloseCode, String) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("a close frame before the end")
            .expect("a readable frame");
        if let Message::Close(frame) = message {
            let frame = frame.expect("a close code");
            return (frame.code, frame.reason.to_string());
        }
    }
}

/// A chat as the client sees it: its text and its last frame.
#[derive(Debug, Default)]
struct Chat {
    start: Option<Value>,
    text: String,
    last: Option<Value>,
}

/// Reads frames until every chat in `ids` has had its last frame (`done` or `error`).
async fn finish(socket: &mut Socket, ids: &[&str]) -> HashMap<String, Chat> {
    let mut chats: HashMap<String, Chat> = HashMap::new();
    while ids
        .iter()
        .any(|id| chats.get(*id).is_none_or(|c| c.last.is_none()))
    {
        let frame = next(socket).await;
        let id = frame["id"].as_str().expect("every frame names its chat");
        let chat = chats.entry(id.to_string()).or_default();
        assert!(chat.last.is_none(), "a frame after the last: {frame}");
        match frame["type"].as_str().unwrap() {
            "start" => chat.start = Some(frame),
            "delta" => chat.text += frame["text"].as_str().unwrap(),
            "done" | "error" => chat.last = Some(frame),
            other => panic!("unknown frame type {other}"),
        }
    }
    chats
}

async fn records_of(
    gw: &TestGateway,
    path: &str,
    count: usize,
) -> Vec<protogate::request_log::Record> {
    for _ in 0..300 {
        let records: Vec<_> = gw
            .log
            .recent()
            .into_iter()
            .filter(|r| r.path == path && r.method == "WS")
            .collect();
        if records.len() >= count {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "fewer than {count} records of {path}: {:?}",
        gw.log.recent()
    );
}

async fn with_mock() -> (MockOpenAi, TestGateway) {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("mock", &mock.base_url, json!({})).await;
    (mock, gw)
}

#[tokio::test]
async fn a_refused_origin_gets_a_403_and_never_a_socket() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let url = ws_url(&gw, "/ws/chat");
    for origin in ["https://evil.example", "https://someone.framer.app"] {
        match connect(&url, Some(origin), None).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{origin}"),
            Ok(_) => panic!("{origin} got a socket"),
            Err(e) => panic!("{origin}: {e}"),
        }
    }
    let refused = gw.record_for("/ws/chat", "GET").await;
    assert_eq!(refused.status, 403);
    assert!(refused.error.unwrap().contains("is not allowed"));
    // The same Host check as every request: a rebinding page's name is refused.
    let raw = raw_request(
        gw.addr,
        "GET /ws/chat HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");

    // An allowed origin gets its socket; a plain GET is told what the route is.
    let (_socket, response) = connect(&url, Some(FRAMER_ORIGIN), None).await.unwrap();
    assert_eq!(response.status(), 101);
    let plain = reqwest::get(gw.url("/ws/chat")).await.unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("is a WebSocket"),
        "{body}"
    );
}

#[tokio::test]
async fn two_chats_interleave_on_one_socket_and_each_gets_its_own_text() {
    let (mock, gw) = with_mock().await;
    let mut socket = open(&gw).await;
    // `a` stops after its first word until released; `b` runs to its end meanwhile.
    send(
        &mut socket,
        json!({"type": "chat", "id": "a", "message": "first?", "model": "gated"}),
    )
    .await;
    send(
        &mut socket,
        json!({"type": "chat", "id": "b", "message": "second?"}),
    )
    .await;
    let mut a_text = String::new();
    let chats = loop {
        let frame = next(&mut socket).await;
        if frame["id"] == "a" && frame["type"] == "delta" {
            a_text += frame["text"].as_str().unwrap();
            continue;
        }
        if frame["id"] == "b" && frame["type"] == "start" {
            assert_eq!(frame["provider"], "mock");
            assert_eq!(frame["model"], "mock/gpt-test");
            assert!(frame["conversation_id"]
                .as_str()
                .is_some_and(|c| !c.is_empty()));
            let rest = finish(&mut socket, &["b"]).await;
            break rest;
        }
    };
    let b = &chats["b"];
    assert_eq!(b.text, "Hello world");
    let done = b.last.as_ref().unwrap();
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(done["finish_reason"], "stop");
    assert!(a_text.is_empty() || a_text == "first", "{a_text}");

    mock.release();
    let chats = finish(&mut socket, &["a"]).await;
    assert_eq!(a_text + &chats["a"].text, "first last");
    assert_eq!(chats["a"].last.as_ref().unwrap()["type"], "done");

    let records = records_of(&gw, "/ws/chat", 2).await;
    let ids: Vec<_> = records.iter().map(|r| r.chat_id.clone().unwrap()).collect();
    assert_eq!(ids, ["b", "a"], "one record per chat, as each ends");
    assert_eq!(records[0].answer.as_deref(), Some("Hello world"));
    assert_eq!(records[0].status, 200);
    assert_eq!(records[0].origin.as_deref(), Some(FRAMER_ORIGIN));
}

#[tokio::test]
async fn cancel_closes_the_upstream_call_and_the_socket_serves_the_next_chat() {
    let (mock, gw) = with_mock().await;
    let mut socket = open(&gw).await;
    send(
        &mut socket,
        json!({"type": "chat", "id": "long", "message": "go on", "model": "endless"}),
    )
    .await;
    loop {
        if next(&mut socket).await["type"] == "delta" {
            break;
        }
    }
    send(&mut socket, json!({"type": "cancel", "id": "long"})).await;
    // Deltas already on their way may come first; the `done` is the chat's last frame.
    loop {
        let frame = next(&mut socket).await;
        if frame["type"] == "done" {
            assert_eq!(frame["finish_reason"], "cancelled", "{frame}");
            break;
        }
        assert_eq!(frame["type"], "delta", "{frame}");
    }
    for _ in 0..500 {
        if mock.dropped_streams() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mock.dropped_streams(), 1, "the upstream saw its call close");

    send(
        &mut socket,
        json!({"type": "chat", "id": "next", "message": "still there?"}),
    )
    .await;
    let chats = finish(&mut socket, &["next"]).await;
    assert_eq!(chats["next"].text, "Hello world");
    // The id of a chat that ended may be used again.
    send(
        &mut socket,
        json!({"type": "chat", "id": "long", "message": "again"}),
    )
    .await;
    let chats = finish(&mut socket, &["long"]).await;
    assert_eq!(chats["long"].text, "Hello world");

    let records = records_of(&gw, "/ws/chat", 3).await;
    let cancelled = &records[0];
    assert_eq!(cancelled.chat_id.as_deref(), Some("long"));
    assert_eq!(cancelled.error.as_deref(), Some("cancelled by the client"));
    assert!(cancelled.answer.as_deref().unwrap().starts_with("more "));
}

#[tokio::test]
async fn closing_the_socket_cancels_its_chats_and_the_chats_in_flight_are_limited() {
    let (mock, gw) = with_mock().await;
    let mut socket = open(&gw).await;
    for id in 1..=5 {
        send(
            &mut socket,
            json!({"type": "chat", "id": id, "message": "go", "model": "endless"}),
        )
        .await;
    }
    // Each of the four is streaming (so its upstream call is open) before the socket goes.
    let (mut refused, mut streaming) = (None, std::collections::HashSet::new());
    while refused.is_none() || streaming.len() < 4 {
        let frame = next(&mut socket).await;
        match frame["type"].as_str().unwrap() {
            "error" => refused = Some(frame),
            "delta" => {
                streaming.insert(frame["id"].as_str().unwrap().to_string());
            }
            _ => {}
        }
    }
    let refused = refused.unwrap();
    assert_eq!(refused["id"], "5");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("too many chats in flight"),
        "{refused}"
    );
    // A chat id in flight cannot be used twice at once.
    send(
        &mut socket,
        json!({"type": "chat", "id": 1, "message": "again"}),
    )
    .await;
    let duplicate = loop {
        let frame = next(&mut socket).await;
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert!(
        duplicate["error"]
            .as_str()
            .unwrap()
            .contains("already in flight"),
        "{duplicate}"
    );

    socket.close(None).await.unwrap();
    drop(socket);
    for _ in 0..500 {
        if mock.dropped_streams() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        mock.dropped_streams(),
        4,
        "each upstream call closed with the socket"
    );
    // Four cut, one refused (the duplicate id never started a record).
    let records = records_of(&gw, "/ws/chat", 5).await;
    let cut = records.iter().filter(|r| {
        r.error
            .as_deref()
            .is_some_and(|e| e.starts_with("the socket closed before the answer"))
    });
    assert_eq!(cut.count(), 4, "{records:?}");
    assert!(records
        .iter()
        .any(|r| r.status == 429 && r.chat_id.as_deref() == Some("5")));
}

#[tokio::test]
async fn a_10_mb_frame_is_refused_with_close_code_1009_and_a_reason() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let (mut writer, mut reader) = open(&gw).await.split();
    let big = tokio::spawn(async move {
        let _ = writer.send(Message::text("x".repeat(10 << 20))).await;
        writer
    });
    let frame = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), reader.next())
            .await
            .expect("an answer within 10 s")
            .expect("a close frame before the end")
            .expect("a readable close frame");
        if let Message::Close(frame) = message {
            break frame.expect("a close code and reason");
        }
    };
    assert_eq!(frame.code, CloseCode::Size);
    assert!(
        frame.reason.contains("at most 1048576 bytes"),
        "the reason names the limit: {}",
        frame.reason
    );
    big.abort();
}

#[tokio::test]
async fn a_plain_text_frame_is_a_chat_message_with_an_id_made_up() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let mut socket = open(&gw).await;
    socket
        .send(Message::text("Hello from a plain socket"))
        .await
        .unwrap();
    let start = next(&mut socket).await;
    assert_eq!(start["type"], "start", "{start}");
    assert_eq!(start["provider"], "demo");
    let id = start["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("chat-"), "{id}");
    let chats = finish(&mut socket, &[&id]).await;
    let text = &chats[&id].text;
    assert!(
        text.starts_with("[Protogate demo]") && text.contains("Hello from a plain socket"),
        "{text}"
    );

    // Frames that are not chats are answered with what to send instead.
    send(&mut socket, json!({"type": "subscribe", "id": "x"})).await;
    let error = next(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["id"].as_str()),
        (Some("error"), Some("x"))
    );
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("unknown frame type `subscribe`"));
    send(&mut socket, json!({"type": "cancel", "id": "nothing"})).await;
    let error = next(&mut socket).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("no chat `nothing`"),
        "{error}"
    );
    send(
        &mut socket,
        json!({"type": "chat", "id": "p", "message": "hi", "provider": "nope"}),
    )
    .await;
    let error = next(&mut socket).await;
    assert_eq!(error["id"], "p");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("unknown provider `nope`"),
        "{error}"
    );
    socket.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let error = next(&mut socket).await;
    assert!(
        error["error"].as_str().unwrap().contains("binary frames"),
        "{error}"
    );
}

const TOKEN: &str = "pg_wsTokenNeverLogged0123456789";

#[tokio::test]
async fn the_token_comes_in_the_url_or_as_a_subprotocol_and_is_never_logged() {
    let gw = spawn_gateway_env(
        settings(json!({"require_access_token": true})),
        &[("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", TOKEN)],
    )
    .await;
    let url = ws_url(&gw, "/ws/chat");
    let refused = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(refused(connect(&url, Some(FRAMER_ORIGIN), None).await), 401);
    let wrong = format!("{url}?token=pg_wrong");
    assert_eq!(
        refused(connect(&wrong, Some(FRAMER_ORIGIN), None).await),
        401
    );
    // The token as a protocol without `protogate` beside it: the browser would get no
    // protocol it offered back, so the gateway says what to offer.
    assert_eq!(
        refused(connect(&url, Some(FRAMER_ORIGIN), Some(TOKEN)).await),
        400
    );
    // A token in the URL of a plain request is not read: only upgrades may carry it.
    let plain = reqwest::get(gw.url(&format!("/v1/models?token={TOKEN}")))
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);

    let with_query = format!("{url}?token={TOKEN}");
    let (mut socket, _) = connect(&with_query, Some(FRAMER_ORIGIN), None)
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"type": "chat", "id": "q", "message": "by query"}),
    )
    .await;
    assert_eq!(
        finish(&mut socket, &["q"]).await["q"]
            .last
            .as_ref()
            .unwrap()["type"],
        "done"
    );

    let offered = format!("protogate, {TOKEN}");
    let (mut socket, response) = connect(&url, Some(FRAMER_ORIGIN), Some(&offered))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "protogate",
        "never the token"
    );
    send(
        &mut socket,
        json!({"type": "chat", "id": "p", "message": "by protocol"}),
    )
    .await;
    assert_eq!(
        finish(&mut socket, &["p"]).await["p"]
            .last
            .as_ref()
            .unwrap()["type"],
        "done"
    );
    drop(socket);

    records_of(&gw, "/ws/chat", 2).await;
    for record in gw.log.recent() {
        let line = serde_json::to_string(&record).unwrap();
        assert!(!line.contains(TOKEN), "the token is in a record: {line}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = gw.log_files_text().await;
    assert!(
        files.contains("/ws/chat"),
        "the log files have the socket's records"
    );
    assert!(!files.contains(TOKEN), "the token is in the log files");
    assert!(!files.contains("token=pg_"), "no query is logged");
}

#[tokio::test]
async fn the_origins_rate_limit_applies_to_each_chat() {
    // The upgrade is one request of the burst of 3; two chats are the rest.
    let gw = spawn_gateway(settings(
        json!({"limits": {"requests_per_minute": 1, "burst": 3}}),
    ))
    .await;
    let mut socket = open(&gw).await;
    for id in ["1", "2"] {
        send(
            &mut socket,
            json!({"type": "chat", "id": id, "message": "hi"}),
        )
        .await;
        let chat = finish(&mut socket, &[id]).await;
        assert_eq!(chat[id].last.as_ref().unwrap()["type"], "done");
    }
    send(
        &mut socket,
        json!({"type": "chat", "id": "3", "message": "hi"}),
    )
    .await;
    let chat = finish(&mut socket, &["3"]).await;
    let error = chat["3"].last.as_ref().unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("too many requests from this origin"),
        "{error}"
    );
    assert!(chat["3"].start.is_none(), "a refused chat never starts");
    let records = records_of(&gw, "/ws/chat", 3).await;
    assert_eq!(records[2].status, 429);
    // The socket stays open for when the budget is back.
    socket.send(Message::Ping(vec![7].into())).await.unwrap();
    loop {
        let message = socket.next().await.unwrap().unwrap();
        if let Message::Pong(data) = message {
            assert_eq!(&data[..], [7]);
            break;
        }
    }
}

#[tokio::test]
async fn a_stopping_gateway_closes_its_sockets_with_1001() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let mut socket = open(&gw).await;
    drop(gw);
    let (code, reason) = close_frame(&mut socket).await;
    assert_eq!(code, CloseCode::Away);
    assert!(reason.contains("stopping"), "{reason}");
}

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chatkit/.venv/bin/python");
    assert!(
        python.exists(),
        "the OpenAI SDK's venv is missing: run the tests through scripts/test.sh, which makes it"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_websocket_mode_sends_what_the_openai_sdk_types_accept() {
    let (mock, gw) = with_mock().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/responses_ws.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .args([ws_url(&gw, "/v1/responses").as_str(), FRAMER_ORIGIN])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["texts"][0], "Hello world", "{report}");
    assert_eq!(report["texts"][1], "Hello world", "{report}");
    // The SDK's second response named its first: the upstream got the whole conversation.
    let bodies = mock.bodies();
    let second = &bodies[1];
    let contents: Vec<_> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].to_string()))
        .collect();
    assert_eq!(contents.len(), 3, "{second}");
    assert_eq!(contents[1].0, "assistant");
    assert!(contents[1].1.contains("Hello world"), "{second}");
    let records = records_of(&gw, "/v1/responses", 2).await;
    assert!(records[0].chat_id.as_deref().unwrap().starts_with("resp_"));
    assert_eq!(records[0].answer.as_deref(), Some("Hello world"));
    // The POST route is still there beside the upgrade.
    let post = post_json(
        &gw.url("/v1/responses"),
        None,
        json!({"model": "mock/gpt-test", "input": "hi"}),
    )
    .await;
    assert_eq!(post.status(), 200);
}
