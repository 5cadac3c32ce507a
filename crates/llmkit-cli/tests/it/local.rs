//! The embedded local model through the CLI (skipped, with a message, when the model files
//! are absent: run scripts/fetch-models.sh; failed instead under `LLMKIT_REQUIRE_MODELS=1`).

use serde_json::Value;

use crate::support::{
    CHAT_MODEL, EMBED_MODEL, Llmkit, assert_clear_error, have_models, models_dir, stderr, stdout,
};

#[test]
fn ask_without_a_key_uses_the_embedded_model() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let o = Llmkit::bare()
        .args([
            "ask",
            "--temperature",
            "0",
            "What is the capital of France?",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("using the embedded local model (no API key set)"));
    assert!(stdout(&o).contains("Paris"), "{}", stdout(&o));
}

#[test]
fn local_output_is_deterministic_and_honours_limits() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let run = |args: &[&str]| {
        let o = Llmkit::bare().args(args).run();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let a = run(&[
        "ask",
        "--seed",
        "7",
        "-m",
        "local:smollm2-135m",
        "Name a fruit.",
    ]);
    let b = run(&[
        "ask",
        "--seed",
        "7",
        "-m",
        "local:smollm2-135m",
        "Name a fruit.",
    ]);
    assert_eq!(a, b);
    let a = run(&["ask", "--temperature", "0", "Write a sentence about cats."]);
    let b = run(&["ask", "--temperature", "0", "Write a sentence about cats."]);
    assert_eq!(a, b);

    let json = run(&[
        "ask",
        "--json",
        "--max-tokens",
        "3",
        "Tell me a long story about dragons.",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(v["finish_reason"], "length");
    assert_eq!(v["backend"], "local");
    for key in ["text", "usage", "model", "latency_ms", "request_id"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }

    let full = run(&[
        "ask",
        "--temperature",
        "0",
        "What is the capital of France?",
    ]);
    let cut = run(&[
        "ask",
        "--temperature",
        "0",
        "--stop",
        "Paris",
        "What is the capital of France?",
    ]);
    assert!(full.contains("Paris"));
    assert!(!cut.contains("Paris"), "{cut}");
    assert!(full.starts_with(cut.trim_end()), "{full:?} vs {cut:?}");
}

#[test]
fn local_model_by_path_and_missing_model() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let path = models_dir().join(CHAT_MODEL);
    let o = Llmkit::bare()
        .args([
            "ask",
            "--max-tokens",
            "4",
            "-m",
            &format!("local:{}", path.display()),
            "Hi",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Llmkit::bare()
        .args(["ask", "-m", "local:/nonexistent/model.gguf", "Hi"])
        .run();
    assert_clear_error(&o, "not found");
    let mut k = Llmkit::bare();
    k.cmd.env("LLMKIT_MODELS_DIR", k.home.path().join("empty"));
    let o = k.args(["ask", "Hi"]).run();
    assert_clear_error(&o, "fetch-models");
}

#[test]
fn local_embeddings_separate_paraphrases_from_unrelated_text() {
    if !have_models(&[EMBED_MODEL]) {
        return;
    }
    let o = Llmkit::bare()
        .args(["embed", "--json", "--lines", "-"])
        .run_with_stdin(
            "A man is playing a guitar.\nSomeone plays the guitar.\nThe stock market fell sharply today.\n",
        );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let vecs: Vec<Vec<f64>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vecs[0].len(), 384);
    let cos = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!(cos(&vecs[0], &vecs[1]) > 0.5);
    assert!(cos(&vecs[0], &vecs[2]) < 0.2);
}

#[test]
fn local_chat_history_is_trimmed_to_the_window_keeping_the_system_prompt() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let mut k = Llmkit::bare();
    let config = k.home.path().join("config.toml");
    // A tiny window for the local model, counted with the model's own tokenizer.
    std::fs::write(
        &config,
        "[models.\"local:SmolLM2-135M-Instruct.Q4_1\"]\ncontext_window = 160\n",
    )
    .unwrap();
    k.cmd
        .env("LLMKIT_CONFIG", &config)
        .env("LLMKIT_STORE", k.home.path().join("llmkit.db"));
    let turns: String = (0..5)
        .map(|i| {
            format!(
                "turn {i}: {}\n",
                "tell me about the sea and its tides ".repeat(3)
            )
        })
        .collect();
    let o = k
        .args([
            "chat",
            "-s",
            "trim",
            "--system",
            "SYSTEM PROMPT",
            "--max-tokens",
            "4",
            "--temperature",
            "0",
        ])
        .run_with_stdin(&turns);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("context window").count(), 1, "{err}");
}

#[test]
fn the_embedded_model_calls_a_weather_tool_with_schema_valid_arguments() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools.toml");
    std::fs::write(
        &tools,
        format!(
            r#"
[tools.get_weather]
description = "Get the current weather for a city."
command = "cat >> '{}/calls.jsonl'; echo >> '{}/calls.jsonl'; echo 'sunny, 21 C'"
parameters = {{ type = "object", properties = {{ city = {{ type = "string" }} }}, required = ["city"], additionalProperties = false }}
"#,
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    // Runs 10 seeded asks; returns in how many the tool was called, each call checked.
    let runs = |choice: &str| {
        let log = dir.path().join("calls.jsonl");
        let _ = std::fs::remove_file(&log);
        let (mut seen, mut called) = (0, 0);
        for seed in 1..=10 {
            let o = Llmkit::bare()
                .args([
                    "ask",
                    "--seed",
                    &seed.to_string(),
                    "--max-tokens",
                    "48",
                    "--tools",
                    tools.to_str().unwrap(),
                    "--tool-choice",
                    choice,
                    "What is the weather in Paris right now?",
                ])
                .run();
            assert!(o.status.success(), "seed {seed}: {}", stderr(&o));
            let calls = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = calls.lines().filter(|l| !l.is_empty()).collect();
            if lines.len() > seen {
                seen = lines.len();
                called += 1;
                // Constrained to the schema: an object with a string `city` and nothing else.
                let v: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
                assert!(v["city"].is_string(), "seed {seed}: {v}");
                assert_eq!(v.as_object().unwrap().len(), 1, "seed {seed}: {v}");
            }
        }
        called
    };
    let required = runs("required");
    assert!(
        required >= 9,
        "with --tool-choice required: called in {required} of 10 runs"
    );
    // Under `auto` the 135M model decides for itself (4 to 7 of 10 when this was written):
    // never choosing the tool means the decision step broke.
    let auto = runs("auto");
    assert!(
        auto >= 2,
        "with --tool-choice auto: called in {auto} of 10 runs"
    );
}

#[test]
fn the_local_model_refuses_images_and_reads_text_attachments() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("pic.png");
    std::fs::write(
        &image,
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0",
    )
    .unwrap();
    let o = Llmkit::bare()
        .args(["ask", "-a", &image.display().to_string(), "What is this?"])
        .run();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_clear_error(&o, "reads text only");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "The capital of France is Paris.\n").unwrap();
    let o = Llmkit::bare()
        .args(["ask", "--temperature", "0", "--max-tokens", "16"])
        .args([
            "-a",
            &notes.display().to_string(),
            "Which city do the notes name?",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
}
