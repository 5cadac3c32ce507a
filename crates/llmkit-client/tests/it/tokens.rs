//! Token counts match OpenAI's tokenizer: reference values from js-tiktoken (fixture) and the OpenAI cookbook.

use llmkit_client::{Encoding, count_chat_tokens, count_tokens};
use llmkit_types::ChatMessage;
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/token_counts.json");

#[test]
fn counts_match_js_tiktoken_in_both_encodings() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    let mut wrong = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("text");
        for (enc, key) in [
            (Encoding::O200kBase, "o200k_base"),
            (Encoding::Cl100kBase, "cl100k_base"),
        ] {
            let want = case[key].as_u64().expect("count") as usize;
            let got = count_tokens(enc, text);
            if got != want {
                wrong.push(format!("{key} {text:?}: got {got}, want {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The example of OpenAI's cookbook "How to count tokens with tiktoken": its
/// `num_tokens_from_messages` and the API's `usage.prompt_tokens` both give 129 for
/// gpt-4-0613 (cl100k_base) and 124 for gpt-4o (o200k_base); js-tiktoken agrees.
#[test]
fn chat_count_matches_the_cookbook_example() {
    let named = |text: &str, name: &str| ChatMessage {
        name: Some(name.to_string()),
        ..ChatMessage::system(text)
    };
    let messages = vec![
        ChatMessage::system(
            "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
        ),
        named(
            "New synergies will help drive top-line growth.",
            "example_user",
        ),
        named(
            "Things working well together will increase revenue.",
            "example_assistant",
        ),
        named(
            "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
            "example_user",
        ),
        named(
            "Let's talk later when we're less busy about how to do better.",
            "example_assistant",
        ),
        ChatMessage::user(
            "This late pivot means we don't have time to boil the ocean for the client deliverable.",
        ),
    ];
    assert_eq!(count_chat_tokens("gpt-4-0613", &messages), 129);
    assert_eq!(count_chat_tokens("gpt-4", &messages), 129);
    assert_eq!(count_chat_tokens("gpt-4o", &messages), 124);
    assert_eq!(count_chat_tokens("gpt-4o-mini", &messages), 124);
}
