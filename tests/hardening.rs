//! Holding up: load with no error and flat memory, hundreds of streams at once, the
//! stream cap refusing and recovering, and origins and Hosts crafted to slip past the
//! allowlists. Bounded in count, loopback only; nothing here times anything.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

fn open_limits(streams: usize) -> Value {
    json!({"limits": {
        "requests_per_minute": 4_000_000_000u64, "burst": 4_000_000_000u64,
        "max_concurrent_streams": streams,
        "first_byte_timeout_ms": 30_000, "idle_timeout_ms": 30_000
    }})
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `n` non-streamed completions over `connections` keep-alive connections; the
/// count of answers that were not a 200 with the mock's text.
async fn load(url: &str, n: usize, connections: usize) -> usize {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, next, failed, url) = (
            client.clone(),
            next.clone(),
            failed.clone(),
            url.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let body = json!({"model": "up/gpt-test", "messages": [{"role": "user", "content": "hi"}]});
                let ok = match client.post(&url).json(&body).send().await {
                    Ok(res) if res.status() == 200 => res
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["choices"][0]["message"]["content"] == "Hello world"),
                    _ => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    failed.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_requests_at_64_connections_with_no_error_and_flat_memory() {
    let mock = MockOpenAi::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut s = settings(json!({
        "providers": [{"id": "up", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"}],
        "default_provider": "up",
    }));
    merge(&mut s, open_limits(64));
    let (gateway, base) = serve_process(home.path(), s).await;
    let pid = gateway.id().unwrap();
    let url = format!("{base}/v1/chat/completions");

    // Four quarters of 5,000; memory after the first and after the last.
    assert_eq!(
        load(&url, 5_000, 64).await,
        0,
        "errors in the first quarter"
    );
    let first = rss_kb(pid);
    for quarter in 2..=4 {
        assert_eq!(
            load(&url, 5_000, 64).await,
            0,
            "errors in quarter {quarter}"
        );
    }
    let last = rss_kb(pid);
    assert!(
        last <= first + first / 4,
        "memory grew under steady load: {first} kB after the first quarter, {last} kB after the last"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_streams_at_once_all_complete() {
    let home = tempfile::tempdir().unwrap();
    let mut s = settings(json!({}));
    merge(&mut s, open_limits(600));
    let (_gateway, base) = serve_process(home.path(), s).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for n in 0..500 {
        let (client, url) = (client.clone(), format!("{base}/api/ai-gateway/stream"));
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .json(&json!({"message": format!("stream {n}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body = res.text().await.unwrap();
            let text = seed_text(&body);
            (
                body.ends_with("data: [DONE]\n\n") && text.contains(&format!("stream {n}")),
                body,
            )
        }));
    }
    let mut incomplete = vec![];
    for task in tasks {
        let (complete, body) = task.await.unwrap();
        if !complete {
            incomplete.push(body);
        }
    }
    assert!(
        incomplete.is_empty(),
        "{} streams did not complete: {:?}",
        incomplete.len(),
        incomplete.first()
    );
}

#[tokio::test]
async fn the_stream_cap_answers_429_beyond_it_and_recovers() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("up", &mock.base_url, open_limits(3)).await;
    let client = reqwest::Client::new();
    let gated = json!({"model": "up/gated", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut open = vec![];
    for _ in 0..3 {
        let res = client
            .post(gw.url("/v1/chat/completions"))
            .json(&gated)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        open.push(res);
    }
    let beyond = post_json(&gw.url("/v1/chat/completions"), None, gated.clone()).await;
    assert_eq!(beyond.status(), 429);
    let why = beyond.text().await.unwrap();
    assert!(why.contains('3'), "the refusal names the cap: {why}");

    mock.release();
    for res in open {
        assert!(res.text().await.unwrap().contains("[DONE]"));
    }
    let again = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "up/gpt-test", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(again.status(), 200, "the slots are free again");
    assert!(again.text().await.unwrap().contains("Hello"));
}

/// The gateway still answers `/health`.
async fn assert_serves(addr: std::net::SocketAddr) {
    let ok = raw_request(
        addr,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&ok), "200", "{ok}");
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn origins_crafted_to_look_allowed_are_refused() {
    let gw = spawn_gateway(settings(json!({}))).await;
    for origin in [
        "https://framer.com.evil.example",
        "https://evilframer.com",
        "https://framer.com.",
        "https://user@framer.com",
        "https://framer.com:443@evil.example",
        "null",
        "HTTPS://EVIL.EXAMPLE",
        "https://x.framercanvas.com.evil.example",
        "https://framercanvas.com",
        "http://framer.com",
        "http://localhost.evil.example:3000",
        "http://127.0.0.1.nip.io:3000",
    ] {
        let res = raw_request(
            gw.addr,
            &format!(
                "POST /api/ai-gateway/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\n\
                 Content-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n\
                 {{\"message\":\"hi\"}}"
            ),
        )
        .await;
        assert_eq!(status(&res), "403", "origin {origin:?} got through: {res}");
        assert!(
            !res.to_ascii_lowercase()
                .contains("access-control-allow-origin"),
            "{origin:?}: {res}"
        );
    }
}

#[tokio::test]
async fn hosts_crafted_to_look_like_loopback_are_refused() {
    let gw = spawn_gateway(settings(json!({}))).await;
    for host in [
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "[::ffff:127.0.0.1]",
        "localhost:notaport",
        "evil.example@localhost",
    ] {
        let res = raw_request(
            gw.addr,
            &format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(
            matches!(status(&res), "403" | "400"),
            "Host {host:?} got through: {res}"
        );
    }
}

#[tokio::test]
async fn a_second_host_or_origin_header_is_refused() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let two_hosts = raw_request(
        gw.addr,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(matches!(status(&two_hosts), "400" | "403"), "{two_hosts}");
    let two_origins = raw_request(
        gw.addr,
        &format!(
            "POST /api/ai-gateway/stream HTTP/1.1\r\nHost: localhost\r\nOrigin: {FRAMER_ORIGIN}\r\n\
             Origin: https://evil.example\r\nContent-Type: application/json\r\n\
             Content-Length: 17\r\nConnection: close\r\n\r\n{{\"message\":\"hi\"}}"
        ),
    )
    .await;
    assert!(
        matches!(status(&two_origins), "400" | "403"),
        "{two_origins}"
    );
    // And the gateway serves on.
    assert_serves(gw.addr).await;
}

#[tokio::test]
async fn clients_that_trickle_a_request_are_cut_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The test settings' idle timeout is 1.5 s.
    let gw = spawn_gateway(settings(json!({}))).await;

    // A head that never ends.
    let mut head = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    head.write_all(b"POST /api/ai-gateway/stream HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // A body that never arrives whole.
    let mut body = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    body.write_all(
        b"POST /api/ai-gateway/stream HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"message\":",
    )
    .await
    .unwrap();

    // Meanwhile another client is served.
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200);

    // Both slow ones are cut (bounded wait: ten times the idle timeout).
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        head.read_to_end(&mut out),
    )
    .await;
    assert!(read.is_ok(), "the trickled head still holds its connection");
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        body.read_to_end(&mut out),
    )
    .await
    .expect("the trickled body still holds its connection")
    .unwrap();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive"), "{answer}");
}

/// The last record of `path`, once its response has ended.
async fn last_record(gw: &TestGateway, path: &str) -> protogate::request_log::Record {
    for _ in 0..200 {
        if let Some(r) = gw.log.recent().into_iter().rev().find(|r| r.path == path) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no record of {path}");
}

#[tokio::test]
async fn upstream_faults_are_reported_logged_and_survived() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("up", &mock.base_url, json!({})).await;
    let url = gw.url("/v1/chat/completions");
    let ask = |model: &str, stream: bool| json!({"model": format!("up/{model}"), "stream": stream, "messages": [{"role": "user", "content": "hi"}]});

    // Invalid JSON inside the stream: an error event after the partial text, never a
    // silent end; the log says why.
    let body = post_json(&url, None, ask("invalid-json", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("partial"), "{body}");
    let last = sse_data(&body)
        .into_iter()
        .rfind(|d| d != "[DONE]")
        .unwrap();
    assert!(
        last.contains("error") && last.contains("unreadable"),
        "the stream ends with an error event that says why: {body}"
    );
    let record = last_record(&gw, "/v1/chat/completions").await;
    assert!(record.error.is_some(), "{record:?}");
    gw.log.clear();

    // Invalid JSON as a whole answer: a 502 that names the provider.
    let res = post_json(&url, None, ask("invalid-json", false)).await;
    assert_eq!(res.status(), 502);
    let text = res.text().await.unwrap();
    assert!(text.contains("up"), "{text}");
    let record = last_record(&gw, "/v1/chat/completions").await;
    assert_eq!(record.status, 502);
    assert!(record.error.is_some(), "{record:?}");
    gw.log.clear();

    // An upstream that sends one byte at a time: the answer arrives whole.
    // And one whose stream opens with a byte-order mark (it used to panic the SSE
    // parser, eventsource-stream 0.2.3, and drop the connection).
    for model in ["trickle", "bom"] {
        let body = post_json(&url, None, ask(model, true))
            .await
            .text()
            .await
            .unwrap();
        let text: String = sse_data(&body)
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        assert_eq!(text, "Hello world", "{model}: {body}");
        assert!(body.ends_with("data: [DONE]\n\n"), "{model}: {body}");
    }

    // And the gateway serves on.
    let res = post_json(&url, None, ask("gpt-test", false)).await;
    assert_eq!(res.status(), 200);
}

/// A raw request's answer, as far as it came before the gateway closed the connection;
/// "cut: ..." when nothing came (a reset while the client still sends what the gateway
/// will not read).
async fn raw_or_cut(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    match stream.read_to_end(&mut out).await {
        Err(e) if out.is_empty() => format!("cut: {e}"),
        _ => String::from_utf8_lossy(&out).into_owned(),
    }
}

fn post(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{extra_headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// The JSON error of a raw answer.
fn error_of(response: &str) -> String {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"));
    // The seed route's `{"error": "..."}`, or OpenAI's `{"error": {"message": ...}}`.
    v["error"]["message"]
        .as_str()
        .or(v["error"].as_str())
        .unwrap_or_else(|| panic!("no error message: {response}"))
        .to_string()
}

#[tokio::test]
async fn hostile_bodies_and_heads_get_clear_errors_while_others_are_served() {
    const LIMIT: usize = 64 * 1024;
    let gw = spawn_gateway(settings(json!({
        "limits": {"max_body_bytes": LIMIT},
        "providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": 25}],
    })))
    .await;
    // Meanwhile another client's answer streams (for about a second), and must arrive
    // whole.
    let stream_url = gw.url("/api/ai-gateway/stream");
    let other = tokio::spawn(async move {
        let res = post_json(&stream_url, None, json!({"message": "steady"})).await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    });

    let seed = "/api/ai-gateway/stream";
    let openai = "/v1/chat/completions";
    let json_type = "Content-Type: application/json\r\n";
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let over_limit = format!(r#"{{"message":"{}"}}"#, "x".repeat(LIMIT));
    let mut chunked = format!(
        "POST {seed} HTTP/1.1\r\nHost: localhost\r\n{json_type}Transfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    for piece in over_limit.as_bytes().chunks(4096) {
        chunked.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            std::str::from_utf8(piece).unwrap()
        ));
    }
    chunked.push_str("0\r\n\r\n");

    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "over the limit, with Content-Length",
            post(seed, json_type, over_limit.as_bytes()),
            "413",
            "larger than the limit",
        ),
        (
            "over the limit, chunked (no Content-Length)",
            chunked.into_bytes(),
            "413",
            "larger than the limit",
        ),
        (
            // A typed field refuses the first array where it wants an object.
            "nested 20,000 deep (the seed route's history)",
            post(
                seed,
                json_type,
                format!(r#"{{"message":"hi","history":{}}}"#, deep(20_000)).as_bytes(),
            ),
            "400",
            "`history[0]",
        ),
        (
            "nested 20,000 deep (OpenAI's route)",
            post(
                openai,
                json_type,
                format!(
                    r#"{{"messages":[{{"role":"user","content":{}}}]}}"#,
                    deep(20_000)
                )
                .as_bytes(),
            ),
            "400",
            "nested too deeply",
        ),
        (
            "invalid UTF-8 in a string",
            post(seed, json_type, b"{\"message\":\"caf\xe9 \xff\xfe\"}"),
            "400",
            "not valid JSON",
        ),
        (
            "invalid UTF-8 (OpenAI's route)",
            post(
                openai,
                json_type,
                b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}",
            ),
            "400",
            "not valid JSON",
        ),
        (
            "a form instead of JSON",
            post(
                seed,
                "Content-Type: application/x-www-form-urlencoded\r\n",
                b"message=hi",
            ),
            "400",
            "not valid JSON",
        ),
        (
            "multipart instead of JSON",
            post(
                seed,
                "Content-Type: multipart/form-data; boundary=b\r\n",
                b"--b\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi\r\n--b--\r\n",
            ),
            "400",
            "not valid JSON",
        ),
        (
            "UTF-16 JSON",
            post(
                seed,
                "Content-Type: application/json; charset=utf-16\r\n",
                &"{\"message\":\"hi\"}"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect::<Vec<_>>(),
            ),
            "400",
            "not valid JSON",
        ),
    ];
    for (what, request, status_code, words) in cases {
        let res = raw_or_cut(gw.addr, &request).await;
        assert_eq!(status(&res), status_code, "{what}: {res}");
        let error = error_of(&res);
        assert!(error.contains(words), "{what}: {error}");
        assert!(
            res.to_ascii_lowercase().contains("x-protogate-request-id"),
            "{what}: logged like any request: {res}"
        );
    }
    // Each refusal is in the log with its status and reason.
    let records = gw.log.recent();
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.status == 413 || r.status == 400)
        .collect();
    assert_eq!(refused.len(), 9, "{records:#?}");
    assert!(refused.iter().all(|r| r.error.is_some()), "{refused:#?}");

    // Deep nesting where a field is ignored is skipped without recursion, and answered.
    let res = raw_request(
        gw.addr,
        post(
            seed,
            json_type,
            format!(r#"{{"message":"hi","extra":{}}}"#, deep(20_000)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(status(&res), "200", "{}", &res[..res.len().min(300)]);

    // A JSON body that is large but within the limit and well-formed is answered.
    let history: Vec<Value> = (0..1500)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "turn"}))
        .collect();
    let res = post_json(
        &gw.url(seed),
        None,
        json!({"message": "last", "history": history}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(seed_text(&res.text().await.unwrap()).contains("last"));

    // A flood of header lines, and one header larger than any real one: refused by the
    // HTTP layer before any handler runs (431), or the connection cut.
    let mut flood = String::from("GET /health HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..500 {
        flood.push_str(&format!("X-Flood-{i}: {i}\r\n"));
    }
    flood.push_str("Connection: close\r\n\r\n");
    let res = raw_or_cut(gw.addr, flood.as_bytes()).await;
    assert!(
        status(&res) == "431" || res.starts_with("cut:") || res.is_empty(),
        "{res}"
    );
    let huge = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Huge: {}\r\nConnection: close\r\n\r\n",
        "h".repeat(1024 * 1024)
    );
    let res = raw_or_cut(gw.addr, huge.as_bytes()).await;
    assert!(
        status(&res) == "431" || res.starts_with("cut:") || res.is_empty(),
        "{}",
        &res[..res.len().min(200)]
    );

    // The other client's stream came through whole, and the gateway serves on.
    let body = other.await.unwrap();
    assert!(seed_text(&body).contains("steady"), "{body}");
    assert!(
        body.ends_with("data: [DONE]\n\n") && !body.contains("\"error\""),
        "{body}"
    );
    assert_serves(gw.addr).await;
}
