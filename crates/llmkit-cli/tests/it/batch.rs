//! `llmkit batch`: ordered output, kill -9 and resume, bad rows, an unwritable output, the
//! cost cap, the exit code of failed rows and a TLS mismatch, against the in-process mock.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use llmkit_testkit::rng::SplitMix64;
use llmkit_testkit::{Fault, MockConfig};

use crate::support::{Llmkit, Mock, stderr};

fn write_rows(path: &Path, n: usize) {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("{{\"text\":\"row {i} says hello\",\"n\":{i}}}\n"));
    }
    std::fs::write(path, s).unwrap();
}

fn batch_args(input: &Path, output: &Path) -> Vec<String> {
    batch_args_for(input, output, "gpt-4o-mini")
}

fn batch_args_for(input: &Path, output: &Path, model: &str) -> Vec<String> {
    [
        "batch",
        "run",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--task",
        "ask",
        "-m",
        model,
        "--max-attempts",
        "60",
        "--concurrency",
        "32",
        "--quiet",
        "--stall-timeout",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn issue5_kill_and_resume_gives_the_uninterrupted_output() {
    let mock = Mock::start(MockConfig {
        fault_rate: 0.1,
        faults: vec![
            Fault::S500,
            Fault::S503,
            Fault::S429,
            Fault::Reset,
            Fault::Truncate,
            Fault::BadJson,
        ],
        latency_ms: 2,
        seed: 7,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_rows(&input, 5000);
    let reference = dir.path().join("ref.jsonl");
    let out = dir.path().join("out.jsonl");

    let mut k = Llmkit::against(&mock);
    let o = k.args(batch_args(&input, &reference)).run();
    assert!(o.status.success(), "{}", stderr(&o));

    // Same home (same store) for every interrupted run.
    let home = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(42);
    let mut kills = 0;
    for _ in 0..40 {
        let mut k = Llmkit::against(&mock);
        k.cmd
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .args(batch_args(&input, &out))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = k.cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(40 + rng.below(400)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 10,
        "only {kills} kills happened before the job finished"
    );
    let mut k = Llmkit::against(&mock);
    k.cmd
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"));
    let o = k.args(batch_args(&input, &out)).run();
    assert!(o.status.success(), "{}", stderr(&o));

    let a = std::fs::read_to_string(&reference).unwrap();
    let b = std::fs::read_to_string(&out).unwrap();
    assert_eq!(a.lines().count(), 5000);
    assert!(!a.contains("\"error\""), "a row failed permanently");
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        assert_eq!(x, y, "line {}", i + 1);
    }
    assert_eq!(a, b);
}

#[test]
fn issue5_bad_rows_are_reported_and_the_rest_proceed() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, b"id,text\n1,hello\n2\n3,\xff\xfe\n4,world\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let o = Llmkit::against(&mock).args(batch_args(&input, &out)).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["result"]["text"], "hello");
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3: missing column")
    );
    assert!(
        lines[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 4: invalid UTF-8")
    );
    assert_eq!(lines[3]["result"]["text"], "world");

    let jsonl = dir.path().join("in.jsonl");
    std::fs::write(&jsonl, b"{\"text\":\"a\"}\n{oops\n{\"other\":1}\n\"b\"\n").unwrap();
    let out2 = dir.path().join("out2.jsonl");
    let o = Llmkit::against(&mock).args(batch_args(&jsonl, &out2)).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out2).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].contains("line 2: invalid JSON"));
    assert!(lines[2].contains("line 3: missing field `text`"));
    assert!(lines[3].contains("\"text\":\"b\""));
}

#[test]
fn issue5_unwritable_output_fails_before_any_request() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_rows(&input, 3);
    let out = dir.path().join("no/such/dir/out.jsonl");
    let o = Llmkit::against(&mock).args(batch_args(&input, &out)).run();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot write the output"),
        "{}",
        stderr(&o)
    );
    assert_eq!(mock.server.request_count(), 0);
}

#[test]
fn issue5_max_cost_is_not_exceeded_and_the_job_resumes() {
    let mock = Mock::start(MockConfig {
        latency_ms: 20,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_rows(&input, 400);
    let out = dir.path().join("out.jsonl");
    // gpt-4o: $2.50/M in, $10/M out. A row is ~15 prompt tokens + up to 20 output tokens,
    // about $0.00024; the cap allows roughly 100 rows.
    let cap = 0.025;
    let mut args = batch_args_for(&input, &out, "gpt-4o");
    args.extend(["--max-tokens", "20", "--max-cost", "0.025", "--json"].map(String::from));
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[String]| {
        let mut k = Llmkit::against(&mock);
        k.cmd
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"));
        k.args(args).run()
    };
    let o = run(&args);
    assert!(!o.status.success(), "the cap should stop the job");
    assert!(stderr(&o).contains("cost cap reached"), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let spent = summary["spent_usd"].as_f64().unwrap();
    let one_request = 0.0003;
    assert!(
        spent <= cap + one_request,
        "spent {spent} over the cap {cap}"
    );
    let written = summary["written"].as_u64().unwrap();
    assert!(written > 50 && written < 400, "{written}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count() as u64,
        written
    );

    // A higher cap resumes the same job (same id) and finishes it.
    let mut more = batch_args_for(&input, &out, "gpt-4o");
    more.extend(["--max-tokens", "20", "--max-cost", "1", "--json"].map(String::from));
    let o = run(&more);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["written"], 400);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 400);
}

#[test]
fn issue22_exit_code_says_whether_rows_failed() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    // Every row succeeds: exit 0, and each line carries the row's id as `custom_id`.
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\":\"a\",\"id\":\"r1\"}\n{\"text\":\"b\"}\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let o = Llmkit::against(&mock).args(batch_args(&input, &out)).run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["custom_id"], "r1");
    assert_eq!(lines[1]["custom_id"], 2, "without an id, the line number");
    assert!(lines.iter().all(|l| l.get("id").is_none()), "{lines:?}");

    // Some rows failed: exit 3, with the count and where the errors are.
    let some = dir.path().join("some.jsonl");
    std::fs::write(&some, "{\"text\":\"a\"}\n{oops\n{\"text\":\"c\"}\n").unwrap();
    let out = dir.path().join("some-out.jsonl");
    let o = Llmkit::against(&mock).args(batch_args(&some, &out)).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("error: 1 of 3 rows failed"), "{err}");
    assert!(err.contains(out.to_str().unwrap()), "{err}");
    assert!(err.contains("\nhint: "), "{err}");

    // Every row failed (a wrong key: not retried): exit 3 too, and says "all".
    let locked = Mock::start(MockConfig {
        api_key: Some("sk-right".into()),
        ..MockConfig::default()
    });
    let out = dir.path().join("all-out.jsonl");
    let o = Llmkit::against(&locked)
        .args(batch_args(&input, &out))
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error: all 2 rows failed"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"status\":401"))
            .count(),
        2
    );
    // Running it again finds the job complete, and still says that rows failed.
    let o = Llmkit::against(&locked)
        .args(batch_args(&input, &out))
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn issue22_batch_over_https_to_a_plain_http_server_is_not_retried() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write_rows(&input, 2);
    let out = dir.path().join("out.jsonl");
    let https = mock.base_url().replacen("http://", "https://", 1);
    let mut k = Llmkit::against(&mock);
    k.cmd.env("OPENAI_BASE_URL", &https);
    let o = k.args(batch_args(&input, &out)).run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let plain = https.replacen("https://", "http://", 1);
    let origin = plain.trim_end_matches("/v1");
    for line in text.lines() {
        assert!(line.contains("does not speak TLS"), "{line}");
        assert!(line.contains(&format!("use {origin}")), "{line}");
        assert!(!line.contains("gave up after"), "retried: {line}");
    }
    assert_eq!(text.lines().count(), 2);
    assert_eq!(mock.server.request_count(), 0);
}
