//! `--api responses|auto|chat` against the mock: answers streamed and whole over the Responses
//! API, the reasoning summary with `--show-reasoning`, the privacy default (`store: false`
//! with encrypted reasoning) and `--store`, a three-turn chat, redaction and the ledger
//! through the same pipeline, and the errors of a server without `/responses`.

use std::path::Path;

use llmkit_testkit::{MOCK_TURNS, MockConfig};
use serde_json::Value;

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

fn kit(mock: &Mock, dir: &Path) -> Llmkit {
    let mut k = Llmkit::against(mock);
    k.cmd
        .env("LLMKIT_STORE", dir.join("llmkit.db"))
        .env("LLMKIT_CONFIG", dir.join("config.toml"));
    k
}

fn bodies(mock: &Mock, suffix: &str) -> Vec<Value> {
    mock.requests_to(suffix)
        .into_iter()
        .map(|r| r["body"].clone())
        .collect()
}

#[test]
fn ask_streams_over_responses_with_the_privacy_default() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let o = kit(&mock, dir.path())
        .args(["--api", "responses", "ask", "hello responses world"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello responses world\n");
    let sent = bodies(&mock, "/v1/responses");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["stream"], true);
    assert_eq!(sent[0]["store"], false);
    assert_eq!(sent[0]["include"][0], "reasoning.encrypted_content");
    assert!(bodies(&mock, "/chat/completions").is_empty());
    // The ledger counted it like a chat call.
    let o = kit(&mock, dir.path()).args(["usage", "--json"]).run();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["total"]["requests"], 1, "{v}");
    // --store opts in; --no-stream and --json go over Responses too.
    let o = kit(&mock, dir.path())
        .args(["--api", "responses", "--store", "ask", "--json", "stored"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["text"], "stored");
    let last = bodies(&mock, "/v1/responses").pop().unwrap();
    assert_eq!(last["store"], true);
    assert!(last.get("include").is_none());
}

#[test]
fn show_reasoning_prints_the_summary_on_stderr() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    for extra in [None, Some("--no-stream")] {
        let mut args = vec![
            "--api",
            "responses",
            "--show-reasoning",
            "ask",
            "-m",
            "o4-mini",
        ];
        args.extend(extra);
        args.push("why is the sky blue");
        let o = kit(&mock, dir.path()).args(args).run();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "why is the sky blue\n");
        assert!(
            stderr(&o).contains("Considering the request: why is the sky blue."),
            "{}",
            stderr(&o)
        );
    }
    let last = bodies(&mock, "/v1/responses").pop().unwrap();
    assert_eq!(last["reasoning"]["summary"], "auto");
    // Without the flag nothing is asked for and nothing shown.
    let o = kit(&mock, dir.path())
        .args(["--api", "responses", "ask", "-m", "o4-mini", "quiet"])
        .run();
    assert!(!stderr(&o).contains("Considering"), "{}", stderr(&o));
}

#[test]
fn a_three_turn_chat_over_responses_keeps_its_context_without_storing() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let o = kit(&mock, dir.path())
        .args([
            "--api",
            "responses",
            "chat",
            "-s",
            "trip",
            "--system",
            "be brief",
        ])
        .run_with_stdin(&format!("first\nsecond\n{MOCK_TURNS}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "first\nsecond\nturns: 3\n");
    let sent = bodies(&mock, "/v1/responses");
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|b| b["store"] == false));
    assert!(sent.iter().all(|b| b.get("previous_response_id").is_none()));
    // The session continues over chat completions as well.
    let o = kit(&mock, dir.path())
        .args(["--api", "chat", "chat", "-s", "trip"])
        .run_with_stdin("fourth\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let last = bodies(&mock, "/chat/completions").pop().unwrap();
    assert_eq!(last["messages"].as_array().unwrap().len(), 8, "{last}");
}

#[test]
fn redaction_applies_over_responses() {
    let mock = Mock::default();
    let email = "jane.doe@example.com";
    let o = Llmkit::against(&mock)
        .args([
            "--api",
            "responses",
            "ask",
            "--redact",
            &format!("write to {email}"),
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("write to {email}\n"));
    let sent = bodies(&mock, "/v1/responses");
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].to_string().contains(email), "{}", sent[0]);
    assert!(sent[0].to_string().contains("<EMAIL_1>"), "{}", sent[0]);
}

#[test]
fn servers_without_responses_get_a_clear_error_or_chat() {
    let mock = Mock::start(MockConfig {
        no_responses: true,
        ..MockConfig::default()
    });
    // auto on a compatible server speaks chat.
    let o = Llmkit::against(&mock).args(["ask", "plain"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mock.requests_to("/v1/responses").len(), 0);
    // Asking for Responses there fails with a hint and the failure exit code.
    let o = Llmkit::against(&mock)
        .args(["--api", "responses", "ask", "x"])
        .run();
    assert_clear_error(&o, "has no Responses API");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // A Responses-only model on such a server says which model needed it.
    let o = Llmkit::against(&mock)
        .args(["ask", "-m", "o3-pro", "x"])
        .run();
    assert_clear_error(&o, "served only on the Responses API");
}

#[test]
fn chat_only_options_are_refused_over_responses() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["--api", "responses", "ask", "--seed", "3", "x"])
        .run();
    assert_clear_error(&o, "seed");
    assert_eq!(o.status.code(), Some(2), "a flag mistake: {}", stderr(&o));
    assert!(mock.requests_to("/v1/responses").is_empty());
}

#[test]
fn encrypted_reasoning_carries_over_between_turns_with_nothing_stored() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    // Streamed chat turns, then a whole (`--no-stream`) ask turn in the same session.
    let o = kit(&mock, dir.path())
        .args(["--api", "responses", "chat", "-s", "think", "-m", "o4-mini"])
        .args(["--reasoning-effort", "low"])
        .run_with_stdin("first\nsecond\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kit(&mock, dir.path())
        .args(["--api", "responses", "ask", "--cid", "think", "--no-stream"])
        .args(["--reasoning-effort", "low", "third"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let sent = bodies(&mock, "/responses");
    assert_eq!(sent.len(), 3);
    let reasoning_in = |b: &Value| -> Vec<String> {
        b["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "reasoning")
            .map(|i| i["encrypted_content"].as_str().unwrap().to_string())
            .collect()
    };
    for b in &sent {
        assert_eq!(b["store"], false, "{b}");
        assert_eq!(b["include"][0], "reasoning.encrypted_content", "{b}");
    }
    // Each turn hands back the reasoning of every earlier answer, as the mock encrypted it
    // (the mock refuses reasoning it did not hand out).
    assert!(reasoning_in(&sent[0]).is_empty());
    assert_eq!(reasoning_in(&sent[1]), ["enc_mock_000001"]);
    assert_eq!(
        reasoning_in(&sent[2]),
        ["enc_mock_000001", "enc_mock_000002"]
    );
    // The reasoning item comes right before the answer it led to.
    let input = sent[2]["input"].as_array().unwrap();
    let at = input.iter().position(|i| i["type"] == "reasoning").unwrap();
    assert_eq!(input[at + 1]["role"], "assistant", "{input:?}");
    // Over chat completions the items are not sent: they mean nothing there.
    let o = kit(&mock, dir.path())
        .args(["--api", "chat", "ask", "--cid", "think", "fourth"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let chat = bodies(&mock, "/chat/completions");
    assert!(
        !chat[0].to_string().contains("llmkit_reasoning_items"),
        "{}",
        chat[0]
    );
}
