//! The SSE parser gives the same chunks however the byte stream is split (issue: parse events split at any byte boundary).

use llmkit_client::sse::{SseParser, StreamItem, interpret_chat_event};
use proptest::prelude::*;

/// A stream as OpenAI and compatible servers send it: a comment, keep-alives, CRLF and LF
/// line endings, a chunk spread over two `data:` lines, multi-byte text, a usage chunk, [DONE].
const RECORDED: &str = concat!(
    ": OPENROUTER PROCESSING\r\n\r\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"chatcmpl-1\",\n",
    "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\", 世界 🙂\"}}]}\n\n",
    "event: message\r\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" line\\nbreak\"}}]}\r\n\r\n",
    ":\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,\"total_tokens\":13}}\r\n\r\n",
    "data: [DONE]\n\n",
);

/// Parses `pieces` in order and renders what each event means, for comparison.
fn parse(pieces: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for p in pieces {
        parser.feed(p, &mut events);
    }
    parser.finish(&mut events);
    events
        .iter()
        .map(|ev| match interpret_chat_event(ev, 200) {
            StreamItem::Chunk(c) => serde_json::to_string(&*c).unwrap_or_default(),
            StreamItem::Done => "[DONE]".to_string(),
            StreamItem::Error(e) => format!("error: {e}"),
        })
        .collect()
}

fn split_at(input: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for c in cuts {
        let c = c.min(input.len());
        pieces.push(&input[start..c]);
        start = c;
    }
    pieces.push(&input[start..]);
    pieces
}

#[test]
fn reference_parse_is_what_the_server_sent() {
    let all = parse(&[RECORDED.as_bytes()]);
    assert_eq!(all.len(), 7, "{all:#?}");
    assert_eq!(all.last().map(String::as_str), Some("[DONE]"));
    assert!(all[2].contains("世界 🙂"));
    assert!(all[5].contains("\"total_tokens\":13"));
    assert!(all.iter().all(|s| !s.starts_with("error")), "{all:#?}");
}

#[test]
fn every_single_split_gives_the_same_chunks() {
    let input = RECORDED.as_bytes();
    let reference = parse(&[input]);
    for i in 0..=input.len() {
        assert_eq!(
            parse(&split_at(input, vec![i])),
            reference,
            "split at byte {i}"
        );
    }
}

#[test]
fn byte_by_byte_gives_the_same_chunks() {
    let input = RECORDED.as_bytes();
    let pieces: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse(&pieces), parse(&[input]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_multi_splits_give_the_same_chunks(cuts in prop::collection::vec(0..RECORDED.len(), 0..40)) {
        let input = RECORDED.as_bytes();
        prop_assert_eq!(parse(&split_at(input, cuts)), parse(&[input]));
    }
}
