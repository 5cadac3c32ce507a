//! `llmkit batch run --task KIND`: every task per row with its structured result, rows whose
//! output fails validation as error lines, `--redact` in batch, and re-running a finished job.

use std::path::Path;

use serde_json::Value;

use crate::support::{Llmkit, Mock, stderr};

const EMAIL: &str = "jane.doe@example.com";

fn write(path: &Path, rows: &[Value]) {
    let s: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, s).unwrap();
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run(k: &mut Llmkit, input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "batch",
        "run",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "-m",
        "gpt-4o-mini",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    k.args(args).run()
}

fn rows() -> Vec<Value> {
    vec![
        serde_json::json!({"text": "The delivery was fast and the staff were friendly.", "id": "a"}),
        serde_json::json!({"text": "Jane Doe lives in Paris and is 34 years old.", "id": "b"}),
        serde_json::json!({"text": "The parcel arrived broken and nobody answered.", "id": "c"}),
    ]
}

#[test]
fn issue5_every_task_runs_per_row_with_its_structured_result() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write(&input, &rows());
    let schema = dir.path().join("person.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}"#,
    )
    .unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("summarize", vec!["--length", "short"], "/result/summary"),
        ("translate", vec!["--to", "French"], "/result/translation"),
        ("sentiment", vec![], "/result/label"),
        (
            "classify",
            vec!["--labels", "praise,complaint"],
            "/result/label",
        ),
        (
            "extract",
            vec!["--schema", schema.to_str().unwrap()],
            "/result/name",
        ),
        ("ask", vec!["--system", "Be brief."], "/result/text"),
    ];
    for (task, flags, pointer) in cases {
        let out = dir.path().join(format!("{task}.jsonl"));
        let mut extra = vec!["--task", task];
        extra.extend(flags);
        let o = run(&mut Llmkit::against(&mock), &input, &out, &extra);
        assert!(o.status.success(), "{task}: {}", stderr(&o));
        let got = lines(&out);
        assert_eq!(got.len(), 3, "{task}");
        for (line, id) in got.iter().zip(["a", "b", "c"]) {
            assert_eq!(line["custom_id"], id, "{task}: {line}");
            assert!(line.get("id").is_none(), "{task}: {line}");
            assert!(
                line.get("error").is_none_or(Value::is_null),
                "{task}: {line}"
            );
            assert!(line.pointer(pointer).is_some(), "{task}: {line}");
        }
        match task {
            "sentiment" => {
                let label = got[0]["result"]["label"].as_str().unwrap();
                assert!(["positive", "negative", "neutral", "mixed"].contains(&label));
            }
            "classify" => {
                let label = got[0]["result"]["label"].as_str().unwrap();
                assert!(["praise", "complaint"].contains(&label));
            }
            "extract" => assert!(got[1]["result"]["age"].is_i64()),
            _ => {}
        }
    }
    // The task requests carried the task's own prompt and strict schema.
    let requests = mock.server.requests();
    assert!(requests.iter().any(|r| {
        r["body"]["response_format"]["type"] == "json_schema"
            && r["body"]["response_format"]["json_schema"]["strict"] == true
    }));
}

#[test]
fn issue5_a_row_whose_output_fails_validation_is_an_error_line_and_the_rest_continue() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut r = rows();
    // The mock answers this row with text that is not JSON, every time.
    r.insert(
        1,
        serde_json::json!({"text": "MOCK_REPLY: certainly not json", "id": "bad"}),
    );
    write(&input, &r);
    let out = dir.path().join("out.jsonl");
    let o = run(
        &mut Llmkit::against(&mock),
        &input,
        &out,
        &["--task", "sentiment", "--repair-attempts", "0"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 of 4 rows failed"), "{}", stderr(&o));
    let got = lines(&out);
    assert_eq!(got.len(), 4);
    assert_eq!(got[1]["custom_id"], "bad");
    assert_eq!(got[1]["error"]["code"], "invalid_output", "{}", got[1]);
    assert!(
        got[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid"),
        "{}",
        got[1]
    );
    for i in [0, 2, 3] {
        assert!(got[i]["result"]["label"].is_string(), "{}", got[i]);
    }
    assert!(stderr(&o).contains("(1 errors)"), "{}", stderr(&o));
}

#[test]
fn issue5_batch_redact_sends_no_originals_and_restores_results() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write(
        &input,
        &[
            serde_json::json!({"text": format!("Write to {EMAIL} today.")}),
            serde_json::json!({"text": "Nothing personal here."}),
        ],
    );
    let out = dir.path().join("out.jsonl");
    let o = run(
        &mut Llmkit::against(&mock),
        &input,
        &out,
        &["--task", "ask", "--redact"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let requests = mock.server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert!(!r["body"].to_string().contains(EMAIL), "{}", r["body"]);
    }
    assert!(
        requests
            .iter()
            .any(|r| r["body"].to_string().contains("<EMAIL_1>"))
    );
    let got = lines(&out);
    // The mock echoes the (redacted) prompt; the output has the original back.
    assert_eq!(got[0]["result"]["text"], format!("Write to {EMAIL} today."));

    // Raw Batch-format rows to other endpoints cannot be redacted: refused, not sent.
    let raw = dir.path().join("raw.jsonl");
    write(
        &raw,
        &[
            serde_json::json!({"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("mail {EMAIL}")}]}}),
            serde_json::json!({"custom_id": "e1", "method": "POST", "url": "/v1/embeddings",
                "body": {"model": "text-embedding-3-small", "input": format!("mail {EMAIL}")}}),
        ],
    );
    let out = dir.path().join("raw-out.jsonl");
    let o = run(&mut Llmkit::against(&mock), &raw, &out, &["--redact"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    for r in mock.server.requests() {
        assert!(!r["body"].to_string().contains(EMAIL), "{}", r["body"]);
    }
    let got = lines(&out);
    assert_eq!(
        got[0]["response"]["body"]["choices"][0]["message"]["content"],
        format!("mail {EMAIL}")
    );
    assert_eq!(got[1]["error"]["code"], "not_redactable", "{}", got[1]);
}

#[test]
fn issue5_rerunning_a_completed_job_recognises_it() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    write(&input, &rows());
    let out = dir.path().join("out.jsonl");
    let mut first_k = Llmkit::against(&mock);
    let home = first_k.home.path().to_path_buf();
    let o = run(&mut first_k, &input, &out, &["--task", "sentiment"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = std::fs::read_to_string(&out).unwrap();
    let sent = mock.server.requests().len();

    let mut k = Llmkit::against(&mock);
    k.cmd
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"));
    let o = run(&mut k, &input, &out, &["--task", "sentiment"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("already complete: 3 rows"), "{err}");
    assert!(err.contains(out.to_str().unwrap()), "{err}");
    assert_eq!(
        mock.server.requests().len(),
        sent,
        "the rerun sent requests"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), first);
}
