//! Generation with the real default model: answers, determinism, stop strings, limits,
//! streaming, cancellation, context overflow, concurrent use and JSON-constrained output.

use llmkit_local::{
    ChatTurn, FinishReason, GenerateOutput, GenerateRequest, JsonConstraint, LocalError, LocalModel,
};

use crate::support::shared_model;

fn greedy(question: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![ChatTurn::user(question)],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..Default::default()
    }
}

fn generate(model: &LocalModel, req: &GenerateRequest) -> GenerateOutput {
    model
        .generate(req, &mut |_| true)
        .expect("generation works")
}

#[test]
fn capital_of_france_is_paris() {
    let Some(model) = shared_model() else {
        return;
    };
    let out = generate(&model, &greedy("What is the capital of France?", 32));
    // Greedy SmolLM2-135M answers "The capital of France is Paris." and stops.
    assert!(out.text.contains("Paris"), "{out:?}");
    assert_eq!(out.finish_reason, FinishReason::Stop, "{out:?}");
    assert!(out.completion_tokens > 0 && out.completion_tokens < 32);
    assert_eq!(
        out.prompt_tokens as usize,
        model
            .count_chat_tokens(&[ChatTurn::user("What is the capital of France?")])
            .unwrap()
    );
}

#[test]
fn greedy_generation_is_deterministic() {
    let Some(model) = shared_model() else {
        return;
    };
    let req = greedy("Write a haiku about the sea.", 24);
    assert_eq!(generate(&model, &req), generate(&model, &req));
}

#[test]
fn seeded_sampling_is_deterministic() {
    let Some(model) = shared_model() else {
        return;
    };
    let req = GenerateRequest {
        messages: vec![ChatTurn::user("Tell me a short story about a cat.")],
        max_tokens: Some(24),
        temperature: Some(1.0),
        top_p: Some(0.95),
        top_k: Some(50),
        repeat_penalty: Some(1.1),
        seed: Some(1234),
        ..Default::default()
    };
    let first = generate(&model, &req);
    assert_eq!(first, generate(&model, &req));
    let others: Vec<String> = (1..=3)
        .map(|seed| {
            generate(
                &model,
                &GenerateRequest {
                    seed: Some(seed),
                    ..req.clone()
                },
            )
            .text
        })
        .collect();
    assert!(
        others.iter().any(|t| *t != first.text),
        "different seeds should give some different text: {first:?} {others:?}"
    );
}

#[test]
fn max_tokens_is_honoured() {
    let Some(model) = shared_model() else {
        return;
    };
    let out = generate(&model, &greedy("List three primary colors.", 5));
    assert_eq!(out.completion_tokens, 5, "{out:?}");
    assert_eq!(out.finish_reason, FinishReason::Length);

    let out = generate(&model, &greedy("List three primary colors.", 0));
    assert_eq!((out.text.as_str(), out.completion_tokens), ("", 0));
}

#[test]
fn stop_strings_end_generation_and_are_not_returned() {
    let Some(model) = shared_model() else {
        return;
    };
    let full = generate(&model, &greedy("What is the capital of France?", 32));
    assert!(full.text.contains("Paris"), "{full:?}");
    for stop in ["Paris", "aris", " Par"] {
        let req = GenerateRequest {
            stop: vec![stop.to_string(), "never-occurs".to_string()],
            ..greedy("What is the capital of France?", 32)
        };
        let mut streamed = String::new();
        let out = model
            .generate(&req, &mut |piece| {
                streamed.push_str(piece);
                true
            })
            .unwrap();
        assert_eq!(out.finish_reason, FinishReason::Stop, "{stop}");
        assert!(!out.text.contains(stop), "{stop}: {out:?}");
        assert_eq!(
            out.text,
            full.text[..full.text.find(stop).unwrap()],
            "{stop}"
        );
        assert_eq!(streamed, out.text, "{stop}");
    }
}

#[test]
fn streamed_pieces_add_up_to_the_text() {
    let Some(model) = shared_model() else {
        return;
    };
    let mut pieces = Vec::new();
    let out = model
        .generate(&greedy("Write a haiku about the sea.", 20), &mut |p| {
            pieces.push(p.to_string());
            true
        })
        .unwrap();
    assert!(pieces.len() > 1);
    assert_eq!(pieces.concat(), out.text);
}

#[test]
fn returning_false_cancels() {
    let Some(model) = shared_model() else {
        return;
    };
    let mut pieces = Vec::new();
    let out = model
        .generate(&greedy("Write a haiku about the sea.", 20), &mut |p| {
            pieces.push(p.to_string());
            false
        })
        .unwrap();
    assert_eq!(pieces.len(), 1);
    assert_eq!(out.text, pieces[0]);
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert!(out.completion_tokens <= 2, "{out:?}");
}

#[test]
fn raw_prompt_skips_the_template() {
    let Some(model) = shared_model() else {
        return;
    };
    let req = GenerateRequest {
        raw_prompt: Some("The capital of France is".into()),
        max_tokens: Some(4),
        temperature: Some(0.0),
        ..Default::default()
    };
    let out = generate(&model, &req);
    assert_eq!(
        out.prompt_tokens as usize,
        model.count_tokens("The capital of France is").unwrap()
    );
    assert!(out.text.contains("Paris"), "{out:?}");
}

#[test]
fn prompts_longer_than_one_prefill_chunk_work() {
    let Some(model) = shared_model() else {
        return;
    };
    // Over 512 tokens, so the prompt is fed in two chunks through the KV cache.
    let prompt = format!(
        "{}The capital of France is",
        "The capital of France is Paris. ".repeat(100)
    );
    let req = GenerateRequest {
        raw_prompt: Some(prompt),
        max_tokens: Some(3),
        temperature: Some(0.0),
        ..Default::default()
    };
    let out = generate(&model, &req);
    assert!(out.prompt_tokens > 600, "{out:?}");
    assert!(out.text.starts_with(" Paris"), "{out:?}");
}

#[test]
fn prompt_longer_than_the_context_is_a_typed_error() {
    let Some(model) = shared_model() else {
        return;
    };
    let window = model.context_window();
    assert_eq!(
        window, 8192,
        "SmolLM2 declares 8192 and the native engine's cache grows to it"
    );
    let req = GenerateRequest {
        raw_prompt: Some("hello ".repeat(window + 10)),
        ..Default::default()
    };
    match model.generate(&req, &mut |_| true) {
        Err(LocalError::ContextOverflow {
            prompt_tokens,
            context_window,
        }) => {
            assert_eq!(context_window, window);
            assert!(prompt_tokens > window);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn invalid_requests_are_rejected() {
    let Some(model) = shared_model() else {
        return;
    };
    let empty = GenerateRequest::default();
    assert!(matches!(
        model.generate(&empty, &mut |_| true),
        Err(LocalError::InvalidRequest(_))
    ));
    let hot = GenerateRequest {
        temperature: Some(-0.5),
        ..greedy("hi", 4)
    };
    assert!(matches!(
        model.generate(&hot, &mut |_| true),
        Err(LocalError::InvalidRequest(_))
    ));
}

#[test]
fn concurrent_requests_from_two_threads() {
    let Some(model) = shared_model() else {
        return;
    };
    let a = greedy("What is the capital of France?", 16);
    let b = greedy("List three primary colors.", 16);
    let expected_a = generate(&model, &a);
    let expected_b = generate(&model, &b);
    let (got_a, got_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| generate(&model.clone(), &a));
        let tb = s.spawn(|| generate(&model.clone(), &b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert_eq!(got_a, expected_a);
    assert_eq!(got_b, expected_b);
}

#[test]
fn model_facts() {
    let Some(model) = shared_model() else {
        return;
    };
    assert_eq!(model.architecture(), "llama");
    assert_eq!(model.name(), "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(model.count_tokens("").unwrap(), 0);
    assert_eq!(
        model.encode("Hello, world!").unwrap(),
        vec![19556, 28, 905, 17]
    );
}

#[test]
fn json_schema_output_is_valid_and_ends_with_the_value() {
    let Some(model) = shared_model() else {
        return;
    };
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["positive", "negative", "neutral", "mixed"]},
            "score": {"type": "number"}
        },
        "required": ["label", "score"],
        "additionalProperties": false
    });
    for (text, seed) in [
        (
            "I absolutely love this phone, the battery lasts for days.",
            None,
        ),
        (
            "The delivery was late and the box arrived crushed.",
            Some(7),
        ),
    ] {
        let req = GenerateRequest {
            messages: vec![ChatTurn::user(format!(
                "Give the sentiment of this text as JSON with a label and a score: {text}"
            ))],
            max_tokens: Some(64),
            temperature: Some(if seed.is_some() { 0.8 } else { 0.0 }),
            seed,
            json: Some(JsonConstraint::Schema(schema.clone())),
            ..Default::default()
        };
        let out = generate(&model, &req);
        let v: serde_json::Value =
            serde_json::from_str(&out.text).unwrap_or_else(|e| panic!("{e}: {:?}", out.text));
        let label = v["label"].as_str().unwrap();
        assert!(
            ["positive", "negative", "neutral", "mixed"].contains(&label),
            "{v}"
        );
        assert!(v["score"].is_number(), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        // Generation ends as soon as the value is complete.
        assert_eq!(out.finish_reason, FinishReason::Stop, "{out:?}");
        assert!(out.text.trim_end().ends_with('}'), "{out:?}");
    }
    // Any object.
    let req = GenerateRequest {
        messages: vec![ChatTurn::user("Describe Paris as a JSON object.")],
        max_tokens: Some(80),
        temperature: Some(0.0),
        json: Some(JsonConstraint::Object),
        ..Default::default()
    };
    let out = generate(&model, &req);
    if out.finish_reason == FinishReason::Stop {
        let v: serde_json::Value = serde_json::from_str(&out.text).unwrap();
        assert!(v.is_object(), "{v}");
    } else {
        // Cut at max_tokens: still a prefix of an object.
        assert!(out.text.trim_start().starts_with('{'), "{out:?}");
    }
}
