//! Chat stream decoding: each line is one event's data, decoded as the client decodes a
//! chunk and folded by `ChunkAccumulator`; no sequence of events may panic or make the
//! accumulator allocate beyond reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkit_client::sse::{SseEvent, StreamItem, interpret_chat_event};
use llmkit_types::ChunkAccumulator;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut acc = ChunkAccumulator::new();
    for line in text.lines() {
        let ev = SseEvent {
            event: None,
            data: line.to_string(),
        };
        match interpret_chat_event(&ev, 200) {
            StreamItem::Chunk(chunk) => {
                acc.push(&chunk);
                let _ = chunk.delta_text();
            }
            StreamItem::Done => break,
            StreamItem::Error(e) => {
                let _ = (e.to_string(), e.hint());
            }
        }
    }
    let _ = acc.text(0);
    let response = acc.finish();
    let _ = (response.text(), response.finish_reason());
    let _ = serde_json::to_string(&response);
});
