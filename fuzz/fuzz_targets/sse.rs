//! The SSE parser: any body, split at any byte boundaries, gives the same events as the body
//! fed whole, and every event is interpreted as a chat stream event without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkit_client::sse::{SseEvent, SseParser, StreamItem, has_content, interpret_chat_event};

fn parse(pieces: &[&[u8]]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for p in pieces {
        parser.feed(p, &mut out);
    }
    parser.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = parse(&[body]);
    let split = parse(&llmkit_fuzz::pieces(seed, body));
    // A CR at the end of one piece and the LF at the start of the next are one line end,
    // so the split never changes what is parsed.
    assert_eq!(whole, split, "a byte split changed the events");
    for ev in &whole {
        if let StreamItem::Chunk(chunk) = interpret_chat_event(ev, 200) {
            let _ = has_content(&chunk);
        }
    }
});
