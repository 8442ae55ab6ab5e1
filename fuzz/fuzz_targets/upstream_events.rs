//! An upstream's event stream, cut into network reads wherever the input says: framed by
//! the gateway's SSE parser (`wire::sse`), checked against `eventsource-stream` on the
//! same bytes read whole, then decoded as OpenAI chunks, Anthropic events (named, as the
//! Messages API sends them) and Bedrock events (unnamed), and the non-streaming bodies
//! of both. Whatever arrives, framing agrees and decoding answers or errs; it never
//! panics.
#![no_main]

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;
use protogate::wire::{anthropic, openai, sse};

/// Each event's name and data, and whether the stream ended in an error.
type Framed = (Vec<(String, String)>, bool);

fn framed<T, E>(items: Vec<Result<T, E>>, each: impl Fn(T) -> (String, String)) -> Framed {
    let mut events = vec![];
    for item in items {
        match item {
            Ok(event) => events.push(each(event)),
            Err(_) => return (events, true),
        }
    }
    (events, false)
}

/// What `eventsource-stream` makes of `body`, or `None` where it cannot be asked: it
/// panics on a leading byte-order mark, so it is given the body without one (and not
/// asked when a second follows, which it would strip too).
fn reference(body: &[u8]) -> Option<Framed> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let body = body.strip_prefix(BOM).unwrap_or(body);
    if body.starts_with(BOM) {
        return None;
    }
    let reads: Vec<Result<Vec<u8>, ()>> = vec![Ok(body.to_vec())];
    let items = futures_executor::block_on(
        futures_util::stream::iter(reads)
            .eventsource()
            .collect::<Vec<_>>(),
    );
    Some(framed(items, |e| (e.event, e.data)))
}

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
    let items = futures_executor::block_on(
        sse::events(futures_util::stream::iter(reads)).collect::<Vec<_>>(),
    );
    let events: Vec<sse::Event> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .cloned()
        .collect();
    let ours = framed(items, |e| (e.event.into_owned(), e.data));

    if let Some(theirs) = reference(body) {
        if std::str::from_utf8(body).is_ok() {
            assert_eq!(ours, theirs, "framing differs from eventsource-stream");
        } else {
            // Both stop with an error. eventsource-stream stalls at the first bad byte, so
            // a blank line ended by a lone CR just before it never completes there; here it
            // does: its events are ours, or ours less the last.
            assert!(
                ours.1 && theirs.1,
                "text that is not UTF-8 must end in an error"
            );
            assert!(
                ours.0.starts_with(&theirs.0) && ours.0.len() <= theirs.0.len() + 1,
                "ours {:?}, theirs {:?}",
                ours.0,
                theirs.0
            );
        }
    }

    let mut named = anthropic::EventDecoder::default();
    let mut bedrock = anthropic::EventDecoder::default();
    for event in events {
        let _ = openai::decode_chunk(event.data.clone());
        let _ = named.decode(Some(&*event.event), event.data.clone());
        let _ = bedrock.decode(None, event.data);
    }
    let _ = openai::decode_completion(Bytes::copy_from_slice(body));
    let _ = anthropic::decode_message(Bytes::copy_from_slice(body));
});
