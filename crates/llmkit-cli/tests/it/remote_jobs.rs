//! Remote OpenAI jobs against the in-process mock: fine-tuning (validate → create → follow
//! → use the `ft:` model), invalid training files, and `batch run --via openai-batch`
//! (same output as the direct path, split into several batches, re-attach after a kill).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use llmkit_testkit::MockConfig;
use serde_json::{Value, json};

use crate::support::{Llmkit, Mock, stderr, stdout};

fn write_examples(path: &Path, n: usize) {
    let mut s = String::new();
    for i in 0..n {
        let ex = json!({"messages": [
            {"role": "system", "content": "You answer support questions."},
            {"role": "user", "content": format!("How do I reset password {i}?")},
            {"role": "assistant", "content": format!("Open settings and choose reset ({i}).")},
        ]});
        s.push_str(&ex.to_string());
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// `llmkit` on `mock` with a home (and so a store) shared across runs.
fn llmkit_in(mock: &Mock, home: &Path) -> Llmkit {
    let mut k = Llmkit::against(mock);
    k.cmd
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"));
    k
}

fn posts_to(mock: &Mock, path: &str) -> usize {
    mock.server
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == path)
        .count()
}

#[test]
fn issue8_finetune_validate_create_follow_then_use_the_model() {
    let mock = Mock::start(MockConfig {
        finetune_delay_ms: 1200,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.jsonl");
    write_examples(&train, 12);

    let o = Llmkit::against(&mock)
        .args(["finetune", "validate", train.to_str().unwrap()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));

    let o = Llmkit::against(&mock)
        .args([
            "finetune",
            "create",
            "--model",
            "gpt-4o-mini-2024-07-18",
            "--file",
        ])
        .args([train.to_str().unwrap()])
        .args(["--suffix", "support", "--epochs", "2"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let job = stdout(&o).trim().to_string();
    assert!(job.starts_with("ftjob-"), "{job}");
    let upload = mock
        .server
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/v1/files")
        .unwrap();
    assert!(
        upload["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/form-data"),
        "{upload}"
    );
    let created = mock
        .server
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/v1/fine_tuning/jobs")
        .unwrap();
    assert_eq!(created["body"]["hyperparameters"]["n_epochs"], 2);
    assert_eq!(created["body"]["suffix"], "support");

    let o = Llmkit::against(&mock)
        .args(["finetune", "follow", &job, "--poll-max-ms", "100"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let model = stdout(&o).trim().to_string();
    assert!(
        model.starts_with("ft:gpt-4o-mini-2024-07-18:llmkit-mock:support:"),
        "{model}"
    );
    let err = stderr(&o);
    assert!(err.contains("Fine-tuning job started"), "{err}");
    assert!(err.contains("loss"), "{err}");

    let o = Llmkit::against(&mock)
        .args(["finetune", "follow", &job, "--json"])
        .run();
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["type"] == "metrics"));
    assert_eq!(lines.last().unwrap()["status"], "succeeded");

    let o = Llmkit::against(&mock)
        .args(["ask", "-m", &model, "hello from the tuned model"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("hello from the tuned model"));
    let chat = mock
        .server
        .requests()
        .into_iter()
        .rfind(|r| r["path"] == "/v1/chat/completions")
        .unwrap();
    assert_eq!(chat["body"]["model"], model.as_str());

    let o = Llmkit::against(&mock)
        .args(["finetune", "list", "--json"])
        .run();
    let listed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(listed[0]["id"], job.as_str());
    let o = Llmkit::against(&mock)
        .args(["finetune", "show", &job])
        .run();
    assert!(stdout(&o).contains("succeeded"), "{}", stdout(&o));
    assert!(stdout(&o).contains("checkpoint:"), "{}", stdout(&o));
    let o = Llmkit::against(&mock)
        .args(["finetune", "events", &job])
        .run();
    assert!(stdout(&o).contains("New fine-tuned model created"));
    let o = Llmkit::against(&mock)
        .args(["finetune", "cancel", &job])
        .run();
    assert!(!o.status.success(), "a finished job cannot be cancelled");
}

#[test]
fn issue8_invalid_training_files_are_refused_with_line_numbers() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.jsonl");
    write_examples(&train, 12);
    let mut text = std::fs::read_to_string(&train).unwrap();
    text = text.replacen(
        "\n",
        "\n{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}\nnot json\n",
        1,
    );
    std::fs::write(&train, text).unwrap();
    let o = Llmkit::against(&mock)
        .args(["finetune", "create", "-m", "gpt-4o-mini", "-f"])
        .args([train.to_str().unwrap()])
        .run();
    crate::support::assert_clear_error(&o, "not valid fine-tuning data");
    let err = stderr(&o);
    assert!(err.contains("train.jsonl:2: error"), "{err}");
    assert!(err.contains("train.jsonl:3: error"), "{err}");
    assert_eq!(mock.server.request_count(), 0, "nothing may be uploaded");
}

#[test]
fn issue8_sessions_export_to_training_data() {
    let mock = Mock::default();
    let home = tempfile::tempdir().unwrap();
    let o = llmkit_in(&mock, home.path())
        .args(["chat", "-s", "support-1"])
        .run_with_stdin("first question\nsecond question\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = home.path().join("train.jsonl");
    let o = llmkit_in(&mock, home.path())
        .args(["finetune", "from-sessions", "support-1", "-o"])
        .args([out.to_str().unwrap()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let ex: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let roles: Vec<&str> = ex["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    // One example is too few to train on: the check says so.
    assert!(stderr(&o).contains("at least 10"), "{}", stderr(&o));
}

/// `n` rows, the fifth of them not JSON: every run of them ends with exit code 3 (a row
/// failed), whichever path it takes.
fn write_rows(path: &Path, n: usize) {
    let mut s = String::new();
    for i in 0..n {
        if i == 4 {
            s.push_str("{not json\n");
        } else {
            s.push_str(&format!("{{\"text\":\"row {i} says hi\",\"n\":{i}}}\n"));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn batch_args(input: &Path, output: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "batch",
        "run",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--task",
        "ask",
        "-m",
        "gpt-4o-mini",
        "--max-tokens",
        "20",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

const REMOTE: [&str; 4] = ["--via", "openai-batch", "--poll-max-ms", "100"];

#[test]
fn issue5_openai_batch_output_equals_the_direct_run_and_splits() {
    let mock = Mock::start(MockConfig {
        batch_delay_ms: 300,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_rows(&input, 23);
    let direct = dir.path().join("direct.jsonl");
    let remote = dir.path().join("remote.jsonl");
    let home = tempfile::tempdir().unwrap();

    let o = llmkit_in(&mock, home.path())
        .args(batch_args(&input, &direct, &["--json"]))
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let direct_summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let mut args = batch_args(&input, &remote, &REMOTE);
    args.extend(["--split-max-requests".into(), "5".into()]);
    let mut json_args = args.clone();
    json_args.push("--json".into());
    let o = llmkit_in(&mock, home.path()).args(&json_args).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let remote_summary: Value = serde_json::from_str(&stdout(&o)).unwrap();

    let a = std::fs::read_to_string(&direct).unwrap();
    let b = std::fs::read_to_string(&remote).unwrap();
    assert_eq!(a.lines().count(), 23);
    assert!(a.lines().nth(4).unwrap().contains("invalid_row"));
    assert_eq!(
        a, b,
        "the Batch API path must write the direct path's output"
    );
    // 22 sendable rows at 5 per batch.
    assert_eq!(posts_to(&mock, "/v1/batches"), 5);
    assert_eq!(posts_to(&mock, "/v1/files"), 5);
    assert_eq!(remote_summary["batches"].as_array().unwrap().len(), 5);
    // Batch prices: half of the direct run's spend for the same usage.
    let (d, r) = (
        direct_summary["spent_usd"].as_f64().unwrap(),
        remote_summary["spent_usd"].as_f64().unwrap(),
    );
    assert!(
        d > 0.0 && (r - d / 2.0).abs() < 1e-9,
        "direct {d}, batch {r}"
    );

    // Running it again finds the finished job: nothing is sent.
    let before = mock.server.request_count();
    let o = llmkit_in(&mock, home.path()).args(&args).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(mock.server.request_count(), before);
    assert_eq!(std::fs::read_to_string(&remote).unwrap(), a);
}

#[test]
fn issue5_openai_batch_resumes_after_kill_without_resubmitting() {
    let mock = Mock::start(MockConfig {
        batch_delay_ms: 2500,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_rows(&input, 12);
    let direct = dir.path().join("direct.jsonl");
    let remote = dir.path().join("remote.jsonl");
    let home = tempfile::tempdir().unwrap();
    let o = llmkit_in(&mock, home.path())
        .args(batch_args(&input, &direct, &[]))
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    let mut args = batch_args(&input, &remote, &REMOTE);
    args.extend(["--split-max-requests".into(), "6".into()]);
    let mut k = llmkit_in(&mock, home.path());
    k.args(&args)
        .cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = k.cmd.spawn().unwrap();
    // Kill it once the first batch exists, long before the batches complete.
    let started = Instant::now();
    while posts_to(&mock, "/v1/batches") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no batch created"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let created_before = posts_to(&mock, "/v1/batches");
    assert!(created_before <= 2);

    let o = llmkit_in(&mock, home.path()).args(&args).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        posts_to(&mock, "/v1/batches"),
        2,
        "the re-run must re-attach to the batch in flight, not submit it again"
    );
    assert_eq!(
        std::fs::read_to_string(&direct).unwrap(),
        std::fs::read_to_string(&remote).unwrap()
    );

    // `batch resume JOB` on the finished remote job sends nothing new.
    let o = llmkit_in(&mock, home.path())
        .args(["batch", "list", "--json"])
        .run();
    let jobs: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let remote_job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| {
            j["meta"]
                .as_str()
                .unwrap_or_default()
                .contains("openai-batch")
        })
        .unwrap();
    assert_eq!(remote_job["status"], "done");
    let id = remote_job["id"].as_str().unwrap();
    let o = llmkit_in(&mock, home.path())
        .args(["batch", "resume", id, "--quiet"])
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(posts_to(&mock, "/v1/batches"), 2);
}
