//! The upstream stream decoders alone: one 20-token answer, as OpenAI and as Anthropic
//! send it, decoded over and over on one thread. Timed here; for a count that does not
//! move with the machine, run it under callgrind at two sizes and divide the difference:
//!
//!   valgrind --tool=callgrind target/release/examples/bench_decode 100
//!   valgrind --tool=callgrind target/release/examples/bench_decode 1100
//!
//! Usage: bench_decode [answers per format, default 100000]

use std::time::Instant;

use protogate::wire::{anthropic, openai};

/// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: protogate::allocator::Allocator = protogate::allocator::Allocator;

const TOKENS: usize = 20;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let openai = openai_answer();
    let anthropic = anthropic_answer();
    let per_event = |name: &str, events: usize, start: Instant| {
        let ns = start.elapsed().as_nanos() as f64 / (n * events) as f64;
        println!("{name:<10} {ns:>7.0} ns per event ({events} events per answer)");
    };

    let start = Instant::now();
    for _ in 0..n {
        for data in &openai {
            let frame = openai::decode_chunk(data.clone()).expect("a valid chunk");
            std::hint::black_box(frame);
        }
    }
    per_event("openai", openai.len(), start);

    let start = Instant::now();
    for _ in 0..n {
        let mut decoder = anthropic::EventDecoder::default();
        for data in &anthropic {
            let frame = decoder.decode(None, data.clone()).expect("a valid event");
            std::hint::black_box(frame);
        }
    }
    per_event("anthropic", anthropic.len(), start);
}

/// As the mock upstreams send it (tests/common), in the documented shape.
fn openai_answer() -> Vec<String> {
    let chunk = |delta: &str, finish: &str| {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
        )
    };
    let mut events = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    events.extend((0..TOKENS).map(|i| chunk(&format!(r#"{{"content":"tok{i} "}}"#), "null")));
    events.push(chunk("{}", r#""stop""#));
    events.push("[DONE]".into());
    events
}

fn anthropic_answer() -> Vec<String> {
    let mut events = vec![
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#.to_string(),
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.into(),
    ];
    events.extend((0..TOKENS).map(|i| {
        format!(
            r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"tok{i} "}}}}"#
        )
    }));
    events.push(r#"{"type":"content_block_stop","index":0}"#.into());
    events.push(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20}}"#.into());
    events.push(r#"{"type":"message_stop"}"#.into());
    events
}
