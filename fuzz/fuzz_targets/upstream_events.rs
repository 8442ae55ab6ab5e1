//! An upstream's event stream, cut into network reads wherever the input says: framed by
//! the same SSE parser the gateway uses, then decoded as OpenAI chunks, Anthropic events
//! (named, as the Messages API sends them) and Bedrock events (unnamed), and the
//! non-streaming bodies of both. Whatever arrives, decoding answers or errs; it never
//! panics.
#![no_main]

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;
use protogate::wire::{anthropic, openai};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    // Network reads of 1 to 16 bytes, so events and UTF-8 sequences split across reads.
    let size = usize::from(cut % 16) + 1;
    let reads: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut events = futures_util::stream::iter(reads).eventsource();
    let mut named = anthropic::EventDecoder::default();
    let mut bedrock = anthropic::EventDecoder::default();
    futures_executor::block_on(async {
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            let _ = openai::decode_chunk(event.data.clone());
            let _ = named.decode(Some(&event.event), event.data.clone());
            let _ = bedrock.decode(None, event.data);
        }
    });
    let _ = openai::decode_completion(Bytes::copy_from_slice(body));
    let _ = anthropic::decode_message(Bytes::copy_from_slice(body));
});
