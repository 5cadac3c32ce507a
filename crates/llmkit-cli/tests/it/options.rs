//! The 2026 request options reach the server: `--reasoning-effort`, `--verbosity`,
//! `--service-tier` and `-o KEY=VALUE`, in `ask` and in batch rows; bad values are usage
//! errors before anything is sent.

use crate::support::{Llmkit, Mock, assert_clear_error, stderr};

#[test]
fn ask_sends_the_request_options() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args([
            "ask",
            "--no-stream",
            "--reasoning-effort",
            "low",
            "--verbosity",
            "high",
            "--service-tier",
            "flex",
            "-o",
            "logprobs=true",
            "-o",
            r#"metadata={"team":"support"}"#,
            "-o",
            "prompt_cache_key=abc",
            "hi",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let reqs = mock.requests_to("/chat/completions");
    assert_eq!(reqs.len(), 1);
    let body = &reqs[0]["body"];
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["verbosity"], "high");
    assert_eq!(body["service_tier"], "flex");
    assert_eq!(body["logprobs"], true);
    assert_eq!(body["metadata"]["team"], "support");
    assert_eq!(body["prompt_cache_key"], "abc");
}

#[test]
fn bad_request_options_are_usage_errors() {
    let mock = Mock::default();
    for args in [
        vec!["ask", "--reasoning-effort", "extreme", "hi"],
        vec!["ask", "-o", "novalue", "hi"],
        vec!["ask", "-o", "temperature=hot", "hi"],
        vec!["ask", "-o", "model=gpt-4o", "hi"],
    ] {
        let o = Llmkit::against(&mock).args(&args).run();
        assert_clear_error(&o, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(mock.requests_to("/chat/completions").len(), 0);
}

#[test]
fn batch_rows_carry_the_request_options() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"one\"}\n{\"text\": \"two\"}\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let o = Llmkit::against(&mock)
        .args([
            "batch",
            "run",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--task",
            "ask",
            "--quiet",
            "--service-tier",
            "flex",
            "--option",
            "prompt_cache_key=job-1",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let reqs = mock.requests_to("/chat/completions");
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        assert_eq!(r["body"]["service_tier"], "flex");
        assert_eq!(r["body"]["prompt_cache_key"], "job-1");
    }
}
