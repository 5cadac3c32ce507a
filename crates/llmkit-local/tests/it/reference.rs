//! Compares tokenization and greedy output with llama.cpp's, recorded in
//! `tests/fixtures/llamacpp_reference.json` by `benches/local/record_reference.mjs`.

use llmkit_local::{ChatTurn, GenerateRequest};
use serde_json::Value;

use crate::support::{Agreement, agreement, fixture, q8_0_model, shared_model};

fn reference() -> Value {
    fixture("llamacpp_reference.json")
}

/// llama.cpp's recorded continuation of one prompt: each step's piece and top-two probabilities.
fn steps_of(case: &Value) -> Vec<(String, f64, f64)> {
    case["steps"]
        .as_array()
        .expect("the reference records llama.cpp's steps (record_reference.mjs)")
        .iter()
        .map(|s| {
            let top2 = &s["top2"];
            let p = |i: usize| top2[i][1].as_f64().unwrap_or(0.0);
            (s["piece"].as_str().unwrap().to_string(), p(0), p(1))
        })
        .collect()
}

/// Runs every recorded prompt greedily and compares each continuation with those of one or more
/// llama.cpp CPU builds (`references`, recorded on the same file): it must equal one of them
/// token for token, or part from one only where that build was at a near-tie. Returns how many
/// continuations equal a build's throughout; panics on any other parting.
fn check_greedy(model: &llmkit_local::LocalModel, references: &[Value]) -> usize {
    let first = references[0]["generations"]
        .as_array()
        .expect("generation cases");
    let (mut equal, mut failures) = (0, Vec::new());
    for (i, case) in first.iter().enumerate() {
        let longest = references
            .iter()
            .map(|r| steps_of(&r["generations"][i]).len())
            .max()
            .unwrap_or(0);
        let req = GenerateRequest {
            messages: vec![ChatTurn::user(case["user"].as_str().unwrap())],
            max_tokens: Some(longest as u32),
            temperature: Some(0.0),
            ..Default::default()
        };
        let out = model.generate(&req, &mut |_| true).unwrap();
        let mut verdicts = Vec::new();
        for reference in references {
            let theirs = &reference["generations"][i];
            assert_eq!(
                theirs["user"], case["user"],
                "references list the same prompts"
            );
            let build = reference["ggml_cpu_build"].as_str().unwrap_or("unknown");
            let steps = steps_of(theirs);
            // Compare over llama.cpp's own length: ours ran as long as the longest build.
            let ours: String = {
                let mut text = out.text.as_str();
                let theirs_len: usize = steps.iter().map(|(p, _, _)| p.len()).sum();
                if text.len() > theirs_len && text.is_char_boundary(theirs_len) {
                    text = &text[..theirs_len];
                }
                text.to_string()
            };
            let label = format!("{:?} (llama.cpp's {build} build)", case["user"]);
            verdicts.push(agreement(&label, &ours, &steps));
        }
        if verdicts.iter().any(|v| matches!(v, Agreement::Equal)) {
            eprintln!("equal: {:?}: {:?}", case["user"], out.text);
            equal += 1;
        } else if let Some(Agreement::NearTie(report)) =
            verdicts.iter().find(|v| matches!(v, Agreement::NearTie(_)))
        {
            eprintln!("near-tie (tolerated): {report}");
        } else {
            for v in verdicts {
                if let Agreement::Differs(report) = v {
                    failures.push(report);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    equal
}

/// The reference fixtures named, each recorded by one llama.cpp CPU build on the same file.
fn references(names: &[&str]) -> Vec<Value> {
    names.iter().map(|name| fixture(name)).collect()
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
    let Some(model) = shared_model() else {
        return;
    };
    let reference = reference();
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
    let Some(model) = shared_model() else {
        return;
    };
    let reference = reference();
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

/// Greedy decoding is decided by rounding wherever two tokens are nearly tied, and llama.cpp
/// itself gives different answers on one machine depending on which of its CPU builds it loads:
/// its AVX512 `zen4` build and its AVX2 `haswell` build part on two of these three prompts
/// (the haiku at token 5, where the `zen4` build's top two probabilities are 0.2071 and 0.2068;
/// the colour list at token 24). So the test asks what one more llama.cpp build would be held
/// to: each continuation must equal one build's token for token, or part from it only at a step
/// where that build's own top two probabilities are within `support::NEAR_TIE`. The native engine runs
/// the shipped Q4_1 weights as llama.cpp does (activations quantized to Q8_1 per block, the same
/// integer sums, f16 KV cache, flash-attention accumulation). Measured: the first and third
/// answers equal the `zen4` build's token for token; the haiku parts from it at token 5 (the
/// 1.001x near-tie above).
#[test]
fn greedy_outputs_match_llama_cpp() {
    let Some(model) = shared_model() else {
        return;
    };
    let refs = references(&["llamacpp_reference.json", "llamacpp_reference_haswell.json"]);
    let equal = check_greedy(&model, &refs);
    assert!(equal >= 2, "only {equal} of 3 answers equal llama.cpp's");
}

/// The same comparison on the Q8_0 conversion of the shipped file, with llama.cpp's builds run
/// on that file. Measured: the first answer equals both builds'; the haiku parts at token 1
/// (`zen4` top two within 1.093x) and the list at token 26 (`haswell` top two within 1.091x;
/// the two builds' probabilities there are 0.181/0.152 and 0.171/0.157).
#[test]
fn greedy_outputs_match_llama_cpp_on_the_same_q8_0_weights() {
    let Some(model) = q8_0_model() else {
        return;
    };
    let refs = references(&[
        "llamacpp_reference_q8_0.json",
        "llamacpp_reference_q8_0_haswell.json",
    ]);
    let equal = check_greedy(&model, &refs);
    assert!(equal >= 1, "no answer equals llama.cpp's");
}
