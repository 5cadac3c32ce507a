//! `--redact`: personal data never reaches the server, and the answer comes back restored
//! (streamed, `--no-stream` and `--json`); `--show-redactions` prints counts, never values.

use serde_json::Value;

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

const EMAIL: &str = "jane.doe@example.com";
const PHONE: &str = "+1 415 555 2671";
const CARD: &str = "4111 1111 1111 1111";
const KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";

fn prompt() -> String {
    format!("Mail {EMAIL}, call {PHONE}, card {CARD}, key {KEY}. Again: {EMAIL}")
}

/// No request body the mock saw contains any of the originals.
fn assert_nothing_leaked(mock: &Mock) {
    let requests = mock.server.requests();
    assert!(!requests.is_empty());
    for r in requests {
        let body = r["body"].to_string();
        for secret in [EMAIL, PHONE, CARD, KEY] {
            assert!(!body.contains(secret), "{secret} leaked in {body}");
        }
        assert!(
            body.contains("<EMAIL_1>") && body.contains("<CARD_1>"),
            "{body}"
        );
    }
}

#[test]
fn redacted_request_and_restored_streamed_answer() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--redact", &prompt()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n", prompt()));
    assert_nothing_leaked(&mock);
}

#[test]
fn redacted_no_stream_and_json_answers_are_restored() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--redact", "--no-stream", &prompt()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n", prompt()));

    let o = Llmkit::against(&mock)
        .args(["ask", "--redact", "--json", &prompt()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["text"], prompt());
    assert_nothing_leaked(&mock);
}

#[test]
fn show_redactions_prints_counts_not_values() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--redact", "--show-redactions", &prompt()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("redactions: card=1 email=2 phone=1 secret=1"),
        "{err}"
    );
    for secret in [EMAIL, PHONE, CARD, KEY] {
        assert!(!err.contains(secret), "{secret} printed on stderr: {err}");
    }
}

#[test]
fn redact_kinds_limits_what_is_redacted() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--redact-kinds", "email", "--no-stream", &prompt()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n", prompt()));
    let body = mock.server.requests().last().cloned().unwrap()["body"].to_string();
    assert!(!body.contains(EMAIL) && body.contains(CARD), "{body}");
}

#[test]
fn config_turns_redaction_on_with_deny_terms_and_patterns() {
    let mock = Mock::default();
    let mut k = Llmkit::against(&mock);
    let path = k.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "redact = true\nredact_deny = [\"Project Falcon\"]\n\n[redact_patterns]\nemployee = 'EMP-\\d{6}'\n",
    )
    .unwrap();
    let text = "Project Falcon lead EMP-123456 writes to a@b.io";
    let o = k.args(["ask", "--no-stream", text]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{text}\n"));
    let body = mock.server.requests().last().cloned().unwrap()["body"].to_string();
    assert!(
        body.contains("<DENY_1> lead <CUSTOM_1> writes to <EMAIL_1>"),
        "{body}"
    );
}

#[test]
fn unknown_kind_is_a_clear_error() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "--redact-kinds", "passport", "hi"])
        .run();
    assert_clear_error(&o, "passport");
    assert!(stderr(&o).contains("cn_id"), "{}", stderr(&o));
}
