//! Team mode's conversations (issue #26): the chat API's conversations and ChatKit's
//! threads live in Redis, so two real `protogate serve` replicas sharing one real
//! `redis-server` continue each other's; with Redis gone those routes answer 503 with
//! the reason while plain chat goes on, and both recover by themselves. Without the
//! binary the tests say so and pass; `scripts/install-deps.sh test` installs it.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::settings;
use common::team::{RedisServer, Replica, PASSWORD};
use serde_json::{json, Value};

const ORIGIN: &str = common::FRAMER_ORIGIN;
const OTHER_ORIGIN: &str = "http://localhost:5173";
const UNREACHABLE: &str = "conversations are kept in Redis, which is unreachable since ";

/// `method path` on `replica` from `origin`, with a JSON body if any; status and JSON.
async fn call(
    replica: &Replica,
    origin: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", replica.url);
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        _ => client.post(url),
    }
    .header("origin", origin);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let res = request.send().await.expect("the replica answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST /api/chat` with `message`, in `conversation` if given.
async fn chat(replica: &Replica, message: &str, conversation: Option<&str>) -> (u16, Value) {
    let mut body = json!({"message": message});
    if let Some(id) = conversation {
        body["conversation_id"] = json!(id);
    }
    call(replica, ORIGIN, "POST", "/api/chat", Some(body)).await
}

/// The conversation's messages as `role: content`, as `GET /api/conversations/{id}` lists
/// them.
async fn messages(replica: &Replica, id: &str) -> Vec<String> {
    let (status, body) = call(
        replica,
        ORIGIN,
        "GET",
        &format!("/api/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["role"].as_str().unwrap(),
                m["content"].as_str().unwrap()
            )
        })
        .collect()
}

/// A ChatKit request on `/api/chatkit`: the JSON answer, or a stream's events as JSON.
async fn chatkit(replica: &Replica, body: Value) -> (u16, Vec<Value>) {
    let res = common::post_json(&format!("{}/api/chatkit", replica.url), Some(ORIGIN), body).await;
    let status = res.status().as_u16();
    let streamed = res
        .headers()
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap().starts_with("text/event-stream"));
    let text = res.text().await.unwrap();
    let values = if streamed {
        common::sse_data(&text)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap_or(Value::String(text))]
    };
    (status, values)
}

/// `POST /api/upload` of a small image for `conversation`, as a browser's FormData sends
/// it; the status and JSON.
async fn upload(replica: &Replica, conversation: &str) -> (u16, Value) {
    let boundary = "----protogate-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"conversation_id\"\r\n\r\n\
         {conversation}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"dot.png\"\r\nContent-Type: image/png\r\n\r\nPNGBYTES\r\n--{boundary}--\r\n"
    );
    let res = reqwest::Client::new()
        .post(format!("{}/api/upload", replica.url))
        .header("origin", ORIGIN)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn user_input(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [],
        "inference_options": {}})
}

async fn two_replicas(redis: &RedisServer, prefix: &str) -> (Replica, Replica) {
    let settings = settings(json!({"redis": {"key_prefix": prefix}}));
    let a = Replica::start(&settings, &redis.url()).await;
    let b = Replica::start(&settings, &redis.url()).await;
    a.redis_health("ok").await;
    b.redis_health("ok").await;
    (a, b)
}

#[tokio::test]
async fn a_conversation_and_a_chatkit_thread_started_on_one_replica_continue_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_replicas(&redis, "conv-test").await;

    let (status, first) = chat(&a, "My name is Ada", None).await;
    assert_eq!(status, 200, "{first}");
    let id = first["conversation_id"].as_str().unwrap().to_string();
    let (status, second) = chat(&b, "What is my name?", Some(&id)).await;
    assert_eq!(status, 200, "B continues A's conversation: {second}");
    assert_eq!(second["conversation_id"], id.as_str());
    // Both turns, in order, on either replica: B answered with A's history.
    let on_a = messages(&a, &id).await;
    assert_eq!(on_a.len(), 4, "{on_a:?}");
    assert_eq!(on_a[0], "user: My name is Ada");
    assert_eq!(on_a[2], "user: What is my name?");
    assert_eq!(messages(&b, &id).await, on_a);
    // An image uploaded to A goes with the conversation's next message, sent to B.
    let (status, uploaded) = upload(&a, &id).await;
    assert_eq!(status, 200, "{uploaded}");
    let (status, third) = chat(&b, "What is in the picture?", Some(&id)).await;
    assert_eq!(status, 200, "{third}");
    let path = format!("/api/conversations/{id}");
    let (_, listed) = call(&a, ORIGIN, "GET", &path, None).await;
    assert_eq!(
        listed["messages"][4]["file_ids"],
        json!([uploaded["file_id"]])
    );
    assert!(
        redis.keys("conv-test:uploads:*").is_empty(),
        "sent, so no longer pending"
    );

    // Still another page's business on neither.
    let (status, _) = call(&b, OTHER_ORIGIN, "GET", &path, None).await;
    assert_eq!(status, 404);

    // A ChatKit thread started on A is listed on B, continued there, and read back on A.
    let create = json!({"type": "threads.create", "params": {"input": user_input("Plan a trip")}});
    let (status, events) = chatkit(&a, create).await;
    assert_eq!(status, 200);
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_string();
    let (_, listed) = chatkit(&b, json!({"type": "threads.list", "params": {}})).await;
    let titles: Vec<&Value> = listed[0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["id"] == thread.as_str())
        .map(|t| &t["title"])
        .collect();
    assert_eq!(titles, [&json!("Plan a trip")], "{listed:?}");
    let add = json!({"type": "threads.add_user_message",
        "params": {"thread_id": thread, "input": user_input("By train")}});
    let (status, events) = chatkit(&b, add).await;
    assert_eq!(status, 200);
    assert!(
        events.iter().all(|e| e["type"] != "error"),
        "B continues the thread: {events:?}"
    );
    let by_id = json!({"type": "threads.get_by_id", "params": {"thread_id": thread}});
    let (_, read) = chatkit(&a, by_id).await;
    let kinds: Vec<&str> = read[0]["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "user_message",
            "assistant_message",
            "user_message",
            "assistant_message"
        ]
    );

    // One hash for the page's threads in Redis, named without the origin's text.
    let keys = redis.keys("conv-test:threads:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains("framer"), "{keys:?}");
    for replica in [&a, &b] {
        let log = replica.log();
        assert!(!log.contains(PASSWORD), "the password leaked: {log}");
    }
}

#[tokio::test]
async fn without_redis_conversations_answer_503_while_chat_goes_on_and_both_recover() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_replicas(&redis, "conv-outage").await;
    let (_, first) = chat(&a, "Remember this", None).await;
    let id = first["conversation_id"].as_str().unwrap().to_string();

    redis.kill();
    for replica in [&a, &b] {
        for conversation in [Some(id.as_str()), None] {
            let (status, body) = chat(replica, "Still there?", conversation).await;
            assert_eq!(status, 503, "{body}");
            let reason = body["error"].as_str().unwrap();
            assert!(reason.starts_with(UNREACHABLE), "{reason}");
            assert!(reason.ends_with("Z; try again shortly"), "{reason}");
        }
        let path = format!("/api/conversations/{id}");
        let (status, body) = call(replica, ORIGIN, "GET", &path, None).await;
        assert_eq!(status, 503, "{body}");
        let (status, body) = chatkit(replica, json!({"type": "threads.list", "params": {}})).await;
        assert_eq!(status, 503, "{body:?}");
        let (status, body) = replica.chat().await;
        assert_eq!(status, 200, "plain chat goes on without Redis: {body}");
    }

    // Back, but empty: the old conversation is simply unknown; new ones are shared again.
    redis.restart();
    a.redis_health("ok").await;
    b.redis_health("ok").await;
    let (status, body) = until_not_503(|| chat(&b, "Still there?", Some(&id))).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("does not exist"),
        "{body}"
    );
    let (status, fresh) = until_not_503(|| chat(&a, "Start over", None)).await;
    assert_eq!(status, 200, "{fresh}");
    let fresh = fresh["conversation_id"].as_str().unwrap();
    let (status, body) = until_not_503(|| chat(&b, "And go on", Some(fresh))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(messages(&a, fresh).await.len(), 4);
    let (status, _) = chatkit(&b, json!({"type": "threads.list", "params": {}})).await;
    assert_eq!(status, 200);
    for replica in [&a, &b] {
        let log = replica.log();
        assert!(!log.contains(PASSWORD), "the password leaked: {log}");
    }
}

/// Asks again while the answer is 503 (a replica that has not yet noticed Redis is back),
/// for up to ten seconds; the first other answer.
async fn until_not_503<F, Fut>(ask: F) -> (u16, Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut answer = ask().await;
    for _ in 0..100 {
        if answer.0 != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = ask().await;
    }
    answer
}
