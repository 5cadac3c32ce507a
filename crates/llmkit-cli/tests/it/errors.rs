//! The errors a user will hit: one line, a hint, a non-zero exit code, never a panic.

use llmkit_testkit::{Fault, MockConfig};

use crate::support::{Llmkit, Mock, assert_clear_error, stderr};

#[test]
fn no_api_key_for_an_api_model() {
    let o = Llmkit::bare().args(["ask", "-m", "gpt-4o", "hi"]).run();
    assert_clear_error(&o, "no API key");
    assert!(stderr(&o).contains("OPENAI_API_KEY"));
}

#[test]
fn unreachable_base_url() {
    // Port 9 (discard) on loopback: nothing listens there.
    let o = Llmkit::bare()
        .args(["ask", "--max-retries", "0", "hi"])
        .cmd
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env("OPENAI_API_KEY", "sk-x")
        .output()
        .unwrap();
    assert_clear_error(&o, "127.0.0.1:9");
}

#[test]
fn wrong_key_gets_401() {
    let mock = Mock::start(MockConfig {
        api_key: Some("sk-right".into()),
        ..MockConfig::default()
    });
    let o = Llmkit::against(&mock).args(["ask", "hi"]).run();
    assert_clear_error(&o, "401");
    assert_eq!(mock.server.request_count(), 1, "a 401 is not retried");
}

#[test]
fn unknown_model() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "-m", "nonexistent-model", "hi"])
        .run();
    assert_clear_error(&o, "does not exist");
    assert!(stderr(&o).contains("llmkit models"));
}

#[test]
fn context_length_exceeded_shows_the_counts() {
    // Checked before sending, for a model whose window llmkit knows.
    let mock = Mock::default();
    let big = "word ".repeat(140_000);
    let o = Llmkit::against(&mock)
        .args(["ask", "-m", "gpt-4o-mini", "-"])
        .run_with_stdin(&big);
    assert_clear_error(&o, "context window is 128000 tokens");
    assert!(stderr(&o).contains("the prompt is 14"), "{}", stderr(&o));
    assert_eq!(mock.server.request_count(), 0, "nothing is sent");
    // Reported by the server, for a model llmkit does not know.
    let o = Llmkit::against(&mock)
        .args(["ask", "-m", "mock-ctx4k", "-"])
        .run_with_stdin(&"word ".repeat(5000));
    assert_clear_error(&o, "maximum context length is 4096 tokens");
}

#[test]
fn retries_exhausted() {
    let mock = Mock::start(MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::S500],
        ..MockConfig::default()
    });
    let o = Llmkit::against(&mock)
        .args(["ask", "--max-retries", "2", "--no-stream", "hi"])
        .run();
    assert_clear_error(&o, "3 attempts");
    assert_eq!(mock.server.request_count(), 3);
}

#[test]
fn stream_stall_times_out() {
    let mock = Mock::start(MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::Stall],
        ..MockConfig::default()
    });
    let o = Llmkit::against(&mock)
        .args(["ask", "--max-retries", "1", "--stall-timeout", "0.3", "hi"])
        .run();
    assert_clear_error(&o, "stall");
    assert!(stderr(&o).contains("--stall-timeout"), "{}", stderr(&o));
    // The mock's stall lasts an hour, so the run ending at all shows that a timeout fired;
    // the message names the one given, not the default.
    assert!(stderr(&o).contains("no data for 300ms"), "{}", stderr(&o));
    assert_eq!(
        mock.server.request_count(),
        2,
        "a stall before any token is retried"
    );
}

#[test]
fn bad_flag_values() {
    for args in [
        vec!["ask", "--temperature", "9", "x"],
        vec!["ask", "--top-p", "-1", "x"],
        vec!["ask", "--max-tokens", "zero", "x"],
        vec!["ask", "--stall-timeout", "0", "x"],
        vec!["ask", "--bogus", "x"],
    ] {
        let o = Llmkit::bare().args(&args).run();
        assert_clear_error(&o, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("llmkit ask --help"), "{}", stderr(&o));
    }
    let o = Llmkit::bare()
        .args([
            "ask", "--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e", "-m",
            "local:x", "hi",
        ])
        .run();
    assert_clear_error(&o, "at most 4");
}

#[test]
fn malformed_config_names_path_and_line() {
    let mut k = Llmkit::bare();
    let path = k.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "model = \"gpt-4o\"\nbase_url = [\n").unwrap();
    let o = k.args(["ask", "hi"]).run();
    assert_clear_error(&o, &format!("{}:2", path.display()));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn empty_and_binary_input() {
    let o = Llmkit::bare().args(["ask", "-"]).run_with_stdin("  \n");
    assert_clear_error(&o, "empty");
    let o = Llmkit::bare()
        .args(["tokens", "-"])
        .run_with_stdin("a\u{0}b");
    assert_clear_error(&o, "binary");
}

#[test]
fn issue22_https_to_a_plain_http_server_says_http_and_is_not_retried() {
    let mock = Mock::default();
    let https = mock.base_url().replacen("http://", "https://", 1);
    let mut k = Llmkit::against(&mock);
    k.cmd.env("OPENAI_BASE_URL", &https);
    let o = k.args(["ask", "--max-retries", "3", "hi"]).run();
    assert_clear_error(&o, "does not speak TLS");
    let err = stderr(&o);
    let origin = https.trim_start_matches("https://").trim_end_matches("/v1");
    assert!(err.contains(&format!("use http://{origin}")), "{err}");
    assert!(!err.contains("gave up after"), "retried: {err}");
    assert!(!err.contains("kept failing"), "{err}");
    assert_eq!(o.status.code(), Some(1));
}
