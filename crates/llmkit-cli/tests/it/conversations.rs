//! Issue 6: sessions and chat, the usage ledger, the response cache, budgets and the store,
//! against the mock.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

/// `llmkit` against `mock` sharing the store and config under `dir`.
fn kit(mock: &Mock, dir: &Path) -> Llmkit {
    let mut k = Llmkit::against(mock);
    k.cmd
        .env("LLMKIT_STORE", dir.join("llmkit.db"))
        .env("LLMKIT_CONFIG", dir.join("config.toml"));
    k
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    assert!(!stderr(o).contains("locked"), "{}", stderr(o));
    stdout(o)
}

fn usage_total(mock: &Mock, dir: &Path) -> Value {
    let o = kit(mock, dir).args(["usage", "--json"]).run();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    v["total"].clone()
}

#[test]
fn session_survives_restarts_and_piped_chat_works() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let o = kit(&mock, dir.path())
        .args(["chat", "-s", "demo", "--system", "be brief"])
        .run_with_stdin("one\ntwo \\\ncontinued\n");
    assert_eq!(ok(&o), "one\ntwo \ncontinued\n");
    let o = kit(&mock, dir.path())
        .args(["chat", "-s", "demo"])
        .run_with_stdin("three\n/exit\nnever sent\n");
    assert_eq!(ok(&o), "three\n");
    let body = &mock.server.requests().last().cloned().unwrap()["body"];
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user", "assistant", "user"]
    );
    assert_eq!(body["messages"][0]["content"], "be brief");
    assert_eq!(mock.server.request_count(), 3);
    let o = kit(&mock, dir.path())
        .args(["sessions", "export", "demo", "--format", "md"])
        .run();
    let md = ok(&o);
    assert!(md.starts_with("# demo"), "{md}");
    assert!(md.contains("## User\n\nthree"), "{md}");
    // ask -c continues the most recent conversation, --cid a given one.
    let o = kit(&mock, dir.path()).args(["ask", "-c", "four"]).run();
    assert_eq!(ok(&o), "four\n");
    let body = &mock.server.requests().last().cloned().unwrap()["body"];
    assert_eq!(body["messages"].as_array().unwrap().len(), 8);
    let o = kit(&mock, dir.path()).args(["ask", "solo"]).run();
    ok(&o);
    assert_eq!(
        mock.server.requests().last().cloned().unwrap()["body"]["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let o = kit(&mock, dir.path())
        .args(["ask", "--cid", "demo", "five"])
        .run();
    ok(&o);
    assert_eq!(
        mock.server.requests().last().cloned().unwrap()["body"]["messages"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let o = kit(&mock, dir.path())
        .args(["sessions", "delete", "demo"])
        .run();
    ok(&o);
    let o = kit(&mock, dir.path())
        .args(["sessions", "show", "demo"])
        .run();
    assert_clear_error(&o, "no session");
}

#[test]
fn truncation_keeps_the_system_prompt() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[models.\"gpt-4o-mini\"]\ncontext_window = 120\n",
    )
    .unwrap();
    let turns: String = (0..6)
        .map(|i| format!("turn {i} {}\n", "words here ".repeat(4)))
        .collect();
    let o = kit(&mock, dir.path())
        .args(["chat", "--system", "SYSTEM PROMPT"])
        .run_with_stdin(&turns);
    ok(&o);
    let err = stderr(&o);
    assert_eq!(err.matches("context window").count(), 1, "{err}");
    let body = &mock.server.requests().last().cloned().unwrap()["body"];
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs[0]["content"], "SYSTEM PROMPT");
    assert!(msgs.len() < 12, "{}", msgs.len());
    assert!(
        msgs.last().unwrap()["content"]
            .as_str()
            .unwrap()
            .starts_with("turn 5")
    );
}

#[test]
fn ledger_totals_equal_the_mock_usage() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let o = kit(&mock, dir.path())
        .args(["ask", "--json", "alpha beta gamma"])
        .run();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    let (p, c) = (
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
        v["usage"]["completion_tokens"].as_u64().unwrap(),
    );
    // The same first turn, streamed by ask and by chat, is billed the same.
    ok(&kit(&mock, dir.path())
        .args(["ask", "alpha beta gamma"])
        .run());
    ok(&kit(&mock, dir.path())
        .args(["ask", "--no-stream", "alpha beta gamma"])
        .run());
    ok(&kit(&mock, dir.path())
        .args(["chat"])
        .run_with_stdin("alpha beta gamma\n"));
    let total = usage_total(&mock, dir.path());
    assert_eq!(total["requests"], 4);
    assert_eq!(
        total["requests"].as_u64().unwrap(),
        mock.server.request_count() as u64
    );
    assert_eq!(total["prompt_tokens"].as_u64().unwrap(), 4 * p);
    assert_eq!(total["completion_tokens"].as_u64().unwrap(), 4 * c);
    let expected = 4.0 * (p as f64 * 0.15 + c as f64 * 0.60) / 1e6;
    assert!((total["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12);
}

#[test]
fn cache_hit_is_byte_identical_and_sends_nothing() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let first = ok(&kit(&mock, dir.path())
        .args(["ask", "--temperature", "0", "cache me"])
        .run());
    let n = mock.server.request_count();
    let second = ok(&kit(&mock, dir.path())
        .args(["ask", "--temperature", "0", "cache me"])
        .run());
    assert_eq!(first, second);
    assert_eq!(mock.server.request_count(), n, "a hit sends nothing");
    let o = kit(&mock, dir.path())
        .args(["ask", "--json", "--temperature", "0", "cache me"])
        .run();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["cached"], true);
    ok(&kit(&mock, dir.path())
        .args(["--no-cache", "ask", "--temperature", "0", "cache me"])
        .run());
    assert_eq!(mock.server.request_count(), n + 1);
    // Not reproducible: not cached unless asked.
    ok(&kit(&mock, dir.path()).args(["ask", "warm"]).run());
    ok(&kit(&mock, dir.path()).args(["ask", "warm"]).run());
    assert_eq!(mock.server.request_count(), n + 3);
    let total = usage_total(&mock, dir.path());
    assert_eq!(total["cache_hits"], 2);
    assert_eq!(total["requests"], 6);
    ok(&kit(&mock, dir.path()).args(["cache", "clear"]).run());
    let o = kit(&mock, dir.path())
        .args(["cache", "stats", "--json"])
        .run();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["entries"], 0);
}

#[test]
fn two_processes_writing_at_once_lose_nothing() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        let asks = s.spawn(|| {
            for i in 0..10 {
                ok(&kit(&mock, dir.path())
                    .args(["ask", &format!("ask {i}")])
                    .run());
            }
        });
        let lines: String = (0..10).map(|i| format!("chat {i}\n")).collect();
        let out = ok(&kit(&mock, dir.path())
            .args(["chat", "-s", "busy"])
            .run_with_stdin(&lines));
        assert_eq!(out.lines().count(), 10);
        asks.join().unwrap();
    });
    let total = usage_total(&mock, dir.path());
    assert_eq!(total["requests"], 20);
    let o = kit(&mock, dir.path())
        .args(["sessions", "list", "--json"])
        .run();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 11);
}

#[test]
fn eight_concurrent_processes_never_overshoot_the_budget() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    // A price that makes each request cost about $1 of input, nothing of output, so the
    // estimate (input + max_tokens of output) is close to the actual cost.
    std::fs::write(
        dir.path().join("config.toml"),
        "budget_daily_usd = 3.5\n[models.\"gpt-4o-mini\"]\ninput_per_mtok = 100000.0\noutput_per_mtok = 0.0\n",
    )
    .unwrap();
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    kit(&mock, dir.path())
                        .args(["ask", "--max-tokens", "5", "spend it all"])
                        .run()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let succeeded = outputs.iter().filter(|o| o.status.success()).count();
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert_clear_error(o, "daily budget reached");
    }
    let total = usage_total(&mock, dir.path());
    let spent = total["cost_usd"].as_f64().unwrap();
    let per_request = spent / succeeded.max(1) as f64;
    assert!((1..8).contains(&succeeded), "{succeeded} succeeded");
    assert!(spent <= 3.5 + per_request, "spent {spent}");
    assert_eq!(total["requests"].as_u64().unwrap(), succeeded as u64);
    // --max-cost covers one invocation.
    let o = kit(&mock, dir.path())
        .args(["--max-cost", "0.01", "ask", "x"])
        .run();
    assert_clear_error(&o, "budget reached");
}

#[test]
fn corrupt_store_is_a_clear_error_and_left_alone() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("llmkit.db");
    std::fs::write(&db, "definitely not sqlite\n".repeat(50)).unwrap();
    let before = std::fs::read(&db).unwrap();
    let o = kit(&mock, dir.path()).args(["ask", "hi"]).run();
    assert_clear_error(&o, &db.display().to_string());
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(mock.server.request_count(), 0);
    let o = kit(&mock, dir.path()).args(["store", "path"]).run();
    assert_eq!(ok(&o).trim(), db.display().to_string());
}

#[test]
fn roles_load_from_files_and_builtins() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let mut k = kit(&mock, dir.path());
    let roles = dir.path().join("roles");
    std::fs::create_dir_all(&roles).unwrap();
    std::fs::write(dir.path().join("ref.md"), "Opening hours: 9 to 5.").unwrap();
    std::fs::write(
        roles.join("shop.toml"),
        "system = \"You run a shop.\"\ntemperature = 0.2\nfiles = [\"../ref.md\"]\n",
    )
    .unwrap();
    ok(&k.args(["ask", "--role", "shop", "when open?"]).run());
    let body = &mock.server.requests().last().cloned().unwrap()["body"];
    assert_eq!(body["temperature"], 0.2);
    let sys = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        sys.starts_with("You run a shop.") && sys.contains("9 to 5"),
        "{sys}"
    );
    ok(&kit(&mock, dir.path())
        .args(["ask", "--role", "support", "help"])
        .run());
    let body = &mock.server.requests().last().cloned().unwrap()["body"];
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("escalate")
            || body["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("Escalate")
    );
    let list = ok(&kit(&mock, dir.path()).args(["roles", "list"]).run());
    assert!(list.contains("shop") && list.contains("support"), "{list}");
    assert_clear_error(
        &kit(&mock, dir.path())
            .args(["ask", "--role", "nope", "x"])
            .run(),
        "unknown role",
    );
}

/// Issue 6: the ledger's totals equal the usage the mock reported over a mixed run of
/// `ask`, a task command and a batch job.
#[test]
fn ledger_totals_cover_ask_tasks_and_batch() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let mut prompt = 0;
    let mut completion = 0;
    let mut add = |usage: &Value| {
        prompt += usage["prompt_tokens"].as_u64().unwrap();
        completion += usage["completion_tokens"].as_u64().unwrap();
    };

    let o = kit(&mock, dir.path())
        .args(["ask", "--json", "alpha beta gamma"])
        .run();
    add(&serde_json::from_str::<Value>(&ok(&o)).unwrap()["usage"]);

    let o = kit(&mock, dir.path())
        .args(["summarize", "--json", "-"])
        .run_with_stdin("The quick brown fox jumps over the lazy dog. It was a sunny day.");
    add(&serde_json::from_str::<Value>(&ok(&o)).unwrap()["usage"]);

    let input = dir.path().join("rows.jsonl");
    std::fs::write(
        &input,
        "{\"text\": \"first row\"}\n{\"text\": \"second row\"}\n{\"text\": \"third row\"}\n",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let o = kit(&mock, dir.path())
        .args(["batch", "run"])
        .args([input.as_os_str(), "-o".as_ref(), output.as_os_str()])
        .args(["--task", "ask", "--quiet"])
        .run();
    ok(&o);
    let lines = std::fs::read_to_string(&output).unwrap();
    for line in lines.lines() {
        add(&serde_json::from_str::<Value>(line).unwrap()["result"]["usage"]);
    }

    // Embeddings are requests too: prompt tokens only, at the embedding model's price.
    let o = kit(&mock, dir.path())
        .args([
            "embed",
            "--json",
            "-m",
            "text-embedding-3-small",
            "--lines",
            "-",
        ])
        .run_with_stdin("one line\nanother line\n");
    let emb: Value = serde_json::from_str(&ok(&o)).unwrap();
    let emb_tokens = emb["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(emb_tokens > 0);
    prompt += emb_tokens;

    let total = usage_total(&mock, dir.path());
    assert_eq!(
        total["requests"].as_u64().unwrap(),
        mock.server.request_count() as u64
    );
    assert_eq!(total["prompt_tokens"].as_u64().unwrap(), prompt);
    assert_eq!(total["completion_tokens"].as_u64().unwrap(), completion);
    let o = kit(&mock, dir.path())
        .args(["usage", "--json", "--by", "command"])
        .run();
    let by: Value = serde_json::from_str(&ok(&o)).unwrap();
    let text = by.to_string();
    assert!(text.contains("\"embed\""), "{text}");
}

#[test]
fn prompt_cache_savings_show_in_usage() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    // A long system prompt: the second turn's shared prefix passes OpenAI's 1024-token
    // minimum, so the mock (like OpenAI) reports it as cached.
    let system = "You answer questions about the handbook. ".repeat(200);
    let ask = |extra: &[&str], prompt: &str| {
        let o = kit(&mock, dir.path())
            .args(["ask", "-m", "gpt-4o-mini", "--system", &system])
            .args(["-o", "prompt_cache_key=handbook"])
            .args(extra)
            .args([prompt])
            .run();
        ok(&o);
    };
    ask(&[], "first question");
    ask(&["-c"], "second question");
    let bodies = mock.requests_to("/chat/completions");
    assert_eq!(bodies[1]["body"]["prompt_cache_key"], "handbook");
    let total = usage_total(&mock, dir.path());
    let cached = total["cached_tokens"].as_u64().unwrap();
    assert!(cached >= 1024, "{total}");
    // gpt-4o-mini: $0.15 input, $0.075 cached input per 1M tokens.
    let saved = total["saved_usd"].as_f64().unwrap();
    let expected = cached as f64 * (0.15 - 0.075) / 1e6;
    assert!((saved - expected).abs() < 1e-12, "{saved} vs {expected}");
    let o = kit(&mock, dir.path()).args(["usage"]).run();
    assert!(ok(&o).contains("saved"), "{}", stdout(&o));
}

#[test]
fn no_prompt_cache_key_is_invented_for_compatible_servers() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    ok(&kit(&mock, dir.path()).args(["ask", "hello"]).run());
    ok(&kit(&mock, dir.path()).args(["ask", "-c", "again"]).run());
    for r in mock.requests_to("/chat/completions") {
        assert!(r["body"].get("prompt_cache_key").is_none(), "{r}");
    }
}
