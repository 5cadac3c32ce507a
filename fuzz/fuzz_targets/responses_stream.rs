//! Responses stream decoding: each line is one event, decoded as `ResponseStreamEvent`,
//! folded by `ResponseAccumulator` and translated into chat chunks by `ChunkTranslator`
//! (what a chat caller on the Responses API sees); no sequence may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkit_types::{
    ChunkAccumulator, ChunkTranslator, ResponseAccumulator, ResponseStreamEvent, response_to_chat,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut acc = ResponseAccumulator::new();
    let mut translator = ChunkTranslator::new();
    let mut chunks = ChunkAccumulator::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<ResponseStreamEvent>(line) else {
            continue;
        };
        let _ = (
            event.kind(),
            event.is_terminal(),
            event.has_content(),
            event.response(),
        );
        acc.push(&event);
        for chunk in translator.push(&event) {
            chunks.push(&chunk);
        }
    }
    let response = acc.finish();
    let _ = (
        response.output_text(),
        response.reasoning_summary(),
        response.function_calls(),
    );
    let _ = serde_json::to_string(&response_to_chat(&response));
    let _ = serde_json::to_string(&chunks.finish());
});
