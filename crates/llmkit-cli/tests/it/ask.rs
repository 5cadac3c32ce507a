//! `ask`, `complete`, `models` and `tokens` against the mock.

use serde_json::Value;

use crate::support::{Llmkit, Mock, stderr, stdout};

#[test]
fn ask_streams_the_answer() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "hello streaming world"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello streaming world\n");
    let req = mock.server.requests().last().cloned().unwrap();
    assert_eq!(req["body"]["stream"], true);
    assert_eq!(req["body"]["stream_options"]["include_usage"], true);
}

#[test]
fn ask_no_stream_and_json() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--no-stream", "plain answer"])
        .run();
    assert_eq!(stdout(&o), "plain answer\n");
    let req = mock.server.requests().last().cloned().unwrap();
    assert_ne!(req["body"]["stream"], true);

    let o = Llmkit::against(&mock)
        .args([
            "ask",
            "--json",
            "-s",
            "be brief",
            "--temperature",
            "0.3",
            "--max-tokens",
            "50",
            "--seed",
            "4",
            "--stop",
            "END",
            "json please",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["text"], "json please");
    assert_eq!(v["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["latency_ms"].is_u64());
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    let body = &mock.server.requests().last().cloned().unwrap()["body"];
    assert_eq!(body["messages"][0]["content"], "be brief");
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(body["seed"], 4);
    assert_eq!(body["stop"][0], "END");
}

#[test]
fn ask_with_n_returns_choices() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--json", "-n", "3", "multi"])
        .run();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["choices"].as_array().unwrap().len(), 3);
    assert_eq!(v["choices"][2]["text"], "multi");
    assert!(v.get("text").is_none());
}

#[test]
fn piped_stdin_is_the_prompt_or_its_context() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask"])
        .run_with_stdin("from stdin\n");
    assert_eq!(stdout(&o), "from stdin\n");
    let o = Llmkit::against(&mock)
        .args(["ask", "Summarize this:"])
        .run_with_stdin("the context");
    assert_eq!(stdout(&o), "Summarize this:\n\nthe context\n");
    let o = Llmkit::against(&mock)
        .args(["ask", "-"])
        .run_with_stdin("dash");
    assert_eq!(stdout(&o), "dash\n");
}

#[test]
fn complete_uses_the_completions_endpoint() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args([
            "complete",
            "--json",
            "--max-tokens",
            "20",
            "-n",
            "2",
            "Once upon a time",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["choices"].as_array().unwrap().len(), 2);
    let req = mock.server.requests().last().cloned().unwrap();
    assert_eq!(req["path"], "/v1/completions");
    assert_eq!(req["body"]["prompt"], "Once upon a time");
}

#[test]
fn models_lists_the_server_models() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock).args(["models"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).lines().any(|l| l == "gpt-4o-mini"));
    let o = Llmkit::against(&mock).args(["models", "--json"]).run();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["object"], "list");
    assert!(!v["data"].as_array().unwrap().is_empty());
}

#[test]
fn tokens_reports_count_window_and_cost() {
    let o = Llmkit::bare()
        .args(["tokens", "--json", "-m", "gpt-4o", "-"])
        .run_with_stdin("hello world");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tokens"], 2);
    assert_eq!(v["encoding"], "o200k_base");
    assert_eq!(v["context_window"], 128000);
    assert_eq!(v["fits"], true);
    assert!(v["estimated_input_cost_usd"].as_f64().unwrap() > 0.0);
    let o = Llmkit::bare()
        .args(["tokens", "--json", "-m", "gpt-4", "-"])
        .run_with_stdin("hello world");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["encoding"], "cl100k_base");
}

#[test]
fn broken_pipe_exits_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mock = Mock::start(llmkit_testkit::MockConfig {
        tokens_per_sec: Some(400.0),
        ..llmkit_testkit::MockConfig::default()
    });
    let prompt: String = (0..400).map(|i| format!("line {i}\n")).collect();
    let mut k = Llmkit::against(&mock);
    let mut child = k
        .cmd
        .args(["ask", &prompt])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "line 0\n");
    // The reader is dropped here, like `head -1` exiting.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "");
}
