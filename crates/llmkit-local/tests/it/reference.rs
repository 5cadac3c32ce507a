//! Compares tokenization and greedy output with llama.cpp's, recorded in
//! `tests/fixtures/llamacpp_reference.json` by `benches/local/record_reference.mjs`.

use std::path::PathBuf;

use llmkit_local::{ChatTurn, GenerateRequest};
use serde_json::Value;

use crate::support::shared_model;

fn reference(test: &str) -> Option<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llamacpp_reference.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("the reference file is valid JSON")),
        Err(_) => {
            eprintln!("SKIP {test}: {} not found", path.display());
            None
        }
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id array")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

#[test]
fn token_ids_match_llama_cpp() {
    let (Some(model), Some(reference)) = (
        shared_model("token_ids_match_llama_cpp"),
        reference("token_ids_match_llama_cpp"),
    ) else {
        return;
    };
    let cases = reference["tokenize"].as_array().expect("tokenize cases");
    assert!(!cases.is_empty());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        // `encode` parses special-token text, like llama.cpp's tokenize(text, special = true).
        assert_eq!(
            model.encode(text).unwrap(),
            ids(&case["ids_special"]),
            "case {}",
            case["name"]
        );
    }
}

#[test]
fn chat_prompts_match_llama_cpp() {
    let (Some(model), Some(reference)) = (
        shared_model("chat_prompts_match_llama_cpp"),
        reference("chat_prompts_match_llama_cpp"),
    ) else {
        return;
    };
    for case in reference["generations"]
        .as_array()
        .expect("generation cases")
    {
        let messages = [ChatTurn::user(case["user"].as_str().unwrap())];
        let prompt = model.render_chat(&messages).unwrap();
        assert_eq!(prompt, case["prompt"].as_str().unwrap());
        assert_eq!(model.encode(&prompt).unwrap(), ids(&case["prompt_ids"]));
        assert_eq!(
            model.count_chat_tokens(&messages).unwrap(),
            ids(&case["prompt_ids"]).len()
        );
    }
}

/// Greedy decoding is sensitive to tiny numeric differences wherever two tokens are nearly
/// tied, and our weights are the Q8_0 conversion of llama.cpp's Q4_1 (even the unconverted Q4_1
/// path differs, since candle and ggml round activations differently). So the outputs are
/// compared on a common prefix: measured, the first answer matches exactly, and the others
/// agree on their first 20+ characters before diverging into equally plausible text.
#[test]
fn greedy_outputs_match_llama_cpp() {
    let (Some(model), Some(reference)) = (
        shared_model("greedy_outputs_match_llama_cpp"),
        reference("greedy_outputs_match_llama_cpp"),
    ) else {
        return;
    };
    let cases = reference["generations"]
        .as_array()
        .expect("generation cases");
    for (i, case) in cases.iter().enumerate() {
        let expected_ids = ids(&case["output_ids"]);
        let expected = case["output_text"].as_str().unwrap();
        let req = GenerateRequest {
            messages: vec![ChatTurn::user(case["user"].as_str().unwrap())],
            max_tokens: Some(expected_ids.len() as u32),
            temperature: Some(0.0),
            ..Default::default()
        };
        let out = model.generate(&req, &mut |_| true).unwrap();
        if i == 0 {
            assert_eq!(out.text, expected);
            assert_eq!(out.completion_tokens as usize, expected_ids.len());
            continue;
        }
        let common = out
            .text
            .chars()
            .zip(expected.chars())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(
            common >= 20 || out.text == expected,
            "ours {:?}\nllama.cpp {:?}",
            out.text,
            expected
        );
    }
}

/// The same comparison on identical weights: llama.cpp run on the Q8_0 file that llmkit-local
/// converts the shipped Q4_1 file into (`tests/fixtures/llamacpp_reference_q8_0.json`).
/// Measured: the first and third answers match token for token; the haiku agrees for its
/// first line and more (68 characters) before a near-tie sends the two engines apart.
#[test]
fn greedy_outputs_match_llama_cpp_on_the_same_q8_0_weights() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llamacpp_reference_q8_0.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIP: {} not found", path.display());
        return;
    };
    let reference: Value = serde_json::from_str(&text).expect("valid JSON");
    let Some(model) = shared_model("greedy_outputs_match_llama_cpp_on_the_same_q8_0_weights")
    else {
        return;
    };
    let cases = reference["generations"].as_array().expect("cases");
    for (i, case) in cases.iter().enumerate() {
        let expected_ids = ids(&case["output_ids"]);
        let expected = case["output_text"].as_str().unwrap();
        let req = GenerateRequest {
            messages: vec![ChatTurn::user(case["user"].as_str().unwrap())],
            max_tokens: Some(expected_ids.len() as u32),
            temperature: Some(0.0),
            ..Default::default()
        };
        let out = model.generate(&req, &mut |_| true).unwrap();
        if i == 1 {
            let common = out
                .text
                .chars()
                .zip(expected.chars())
                .take_while(|(a, b)| a == b)
                .count();
            assert!(
                common >= 60,
                "ours {:?}\nllama.cpp {:?}",
                out.text,
                expected
            );
        } else {
            assert_eq!(out.text, expected, "case {i}");
            assert_eq!(
                out.completion_tokens as usize,
                expected_ids.len(),
                "case {i}"
            );
        }
    }
}
