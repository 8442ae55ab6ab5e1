//! A fast OpenAI-compatible upstream for `scripts/bench.sh`: answers at once, so the
//! benchmark measures the gateway, not the model. `model: "slow"` streams 50 chunks 20 ms
//! apart (for memory under many open streams); otherwise `max_tokens` chunks at once.
//!
//! Usage: bench_upstream <port>

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

fn chunk(content: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

async fn completions(Json(body): Json<Value>) -> Response {
    if !body["stream"].as_bool().unwrap_or(false) {
        return ([("content-type", "application/json")], COMPLETION).into_response();
    }
    let slow = body["model"] == "slow";
    let n = if slow {
        50
    } else {
        body["max_tokens"].as_u64().unwrap_or(20)
    };
    let stream = async_stream::stream! {
        for i in 0..n {
            if slow {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            yield Ok::<_, std::convert::Infallible>(chunk(&format!("tok{i} ")));
        }
        yield Ok(format!("data: {}\n\ndata: [DONE]\n\n", json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let app = Router::new().route("/v1/chat/completions", post(completions));
    // Each chunk leaves at once: without TCP_NODELAY, Nagle's algorithm holds the second
    // small write until the client's delayed ACK (40 ms) and every stream measures that.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.unwrap();
}
