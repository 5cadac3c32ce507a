//! Capability fallbacks against `llmkit-mock` behaving like compatible servers without
//! `json_schema` (400 and 500 variants), `stream_options` or `tools`: each task command
//! succeeds through the fallback, a second run sends no rejected request (read from the
//! mock's `--log` JSONL), and `llmkit store capabilities` lists and forgets what was learnt.

use std::path::{Path, PathBuf};

use llmkit_testkit::MockConfig;
use serde_json::{Value, json};

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

/// A mock with a request log file, kept with the directory that holds it.
struct Logged {
    mock: Mock,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Logged {
    fn start(cfg: MockConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mock.jsonl");
        let mock = Mock::start(MockConfig {
            log: Some(log.clone()),
            ..cfg
        });
        Self {
            mock,
            log,
            _dir: dir,
        }
    }

    /// The chat requests in the `--log` file, in order.
    fn chat_log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| {
                e["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/chat/completions"))
            })
            .collect()
    }

    /// How many logged chat requests the server answered with an error status.
    fn rejected(&self) -> usize {
        self.chat_log()
            .iter()
            .filter(|e| e["status"].as_u64().is_none_or(|s| s >= 400))
            .count()
    }
}

/// The argument lists of the four structured task commands, with their input files in `dir`.
fn task_commands(dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let schema = dir.join("person.json");
    std::fs::write(
        &schema,
        json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            "required": ["name", "age"]
        })
        .to_string(),
    )
    .unwrap();
    let context = dir.join("ctx.txt");
    std::fs::write(&context, "Paris is the capital of France.").unwrap();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let path = |p: &Path| p.display().to_string();
    vec![
        (
            "sentiment",
            s(&["sentiment", "--json", "I love this product"]),
        ),
        (
            "classify",
            s(&[
                "classify",
                "--json",
                "--labels",
                "sports,politics,cooking",
                "The chef baked a cake.",
            ]),
        ),
        (
            "extract",
            [
                s(&["extract", "--json", "--schema"]),
                vec![path(&schema)],
                s(&["Bob is 42."]),
            ]
            .concat(),
        ),
        (
            "qa",
            [
                s(&["qa", "--json", "--context"]),
                vec![path(&context)],
                s(&["What is the capital?"]),
            ]
            .concat(),
        ),
    ]
}

fn notices(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("notice: ")).collect()
}

#[test]
fn every_task_command_falls_back_from_json_schema_once_and_remembers() {
    for status in [400u16, 500] {
        let logged = Logged::start(MockConfig {
            no_json_schema: Some(status),
            ..MockConfig::default()
        });
        let files = tempfile::tempdir().unwrap();
        for (name, args) in task_commands(files.path()) {
            // A fresh home per command, so that each one meets the rejection itself.
            let first = Llmkit::against(&logged.mock);
            let home = first.home.path().to_path_buf();
            let mut first = first;
            let before = logged.chat_log().len();
            let o = first.args(&args).run();
            let err = stderr(&o);
            assert!(o.status.success(), "{name} ({status}): {err}");
            let v: Value = serde_json::from_str(&stdout(&o))
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {}", stdout(&o)));
            assert!(v.is_object(), "{name}: {v}");
            let n = notices(&err);
            assert_eq!(n.len(), 1, "{name} ({status}): one notice: {err}");
            assert!(
                n[0].contains("json_schema") && n[0].contains("json_object"),
                "{}",
                n[0]
            );
            assert!(
                n[0].contains("llmkit store capabilities --forget"),
                "{}",
                n[0]
            );
            let sent = &logged.chat_log()[before..];
            // One rejected request (a 500 is not retried), then the fallback.
            assert_eq!(sent[0]["status"], status, "{name}: {sent:?}");
            assert_eq!(sent[0]["body"]["response_format"]["type"], "json_schema");
            let rejected = sent.iter().filter(|e| e["status"] != 200).count();
            assert_eq!(rejected, 1, "{name} ({status}): {sent:?}");
            let fallback = &sent[1]["body"];
            assert_eq!(fallback["response_format"]["type"], "json_object");
            let system = fallback["messages"][0]["content"].as_str().unwrap();
            assert_eq!(fallback["messages"][0]["role"], "system");
            assert!(system.contains("JSON Schema"), "{name}: {system}");

            // The second run goes straight to the fallback, silently.
            let rejected_before = logged.rejected();
            let count_before = logged.chat_log().len();
            let mut second = Llmkit::against(&logged.mock);
            second.env_home(&home);
            let o = second.args(&args).run();
            let err = stderr(&o);
            assert!(o.status.success(), "{name} second run: {err}");
            assert!(notices(&err).is_empty(), "{name}: {err}");
            assert_eq!(
                logged.rejected(),
                rejected_before,
                "{name}: a rejected request"
            );
            let again = &logged.chat_log()[count_before..];
            assert!(!again.is_empty());
            assert!(
                again
                    .iter()
                    .all(|e| e["body"]["response_format"]["type"] == "json_object"),
                "{name}: {again:?}"
            );
        }
    }
}

#[test]
fn a_stream_without_stream_options_is_counted_locally() {
    let logged = Logged::start(MockConfig {
        no_stream_options: true,
        ..MockConfig::default()
    });
    let mut k = Llmkit::against(&logged.mock);
    let home = k.home.path().to_path_buf();
    let o = k.args(["ask", "hello there"]).run();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(stdout(&o).trim(), "hello there");
    let n = notices(&err);
    assert_eq!(n.len(), 1, "{err}");
    assert!(
        n[0].contains("stream_options") && n[0].contains("counted locally"),
        "{}",
        n[0]
    );
    let log = logged.chat_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["status"], 400);
    assert!(log[1]["body"].get("stream_options").is_none(), "{}", log[1]);
    assert_eq!(log[1]["body"]["stream"], true);

    // One ledger row: the answer, its tokens counted by llmkit (none came from the server).
    let export = Llmkit::against(&logged.mock)
        .env_home(&home)
        .args(["store", "export"])
        .run();
    let v: Value = serde_json::from_str(&stdout(&export)).unwrap();
    let rows = v["ledger"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], 200);
    assert_eq!(rows[0]["tokens_counted"], true);
    assert!(
        rows[0]["prompt_tokens"].as_u64().unwrap() > 0,
        "{}",
        rows[0]
    );
    assert!(
        rows[0]["completion_tokens"].as_u64().unwrap() > 0,
        "{}",
        rows[0]
    );

    // Remembered: the next stream is sent without it at once.
    let o = Llmkit::against(&logged.mock)
        .env_home(&home)
        .args(["ask", "again"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(notices(&stderr(&o)).is_empty(), "{}", stderr(&o));
    assert_eq!(logged.chat_log().len(), 3);
    assert_eq!(logged.rejected(), 1);
}

#[test]
fn a_server_without_tools_is_a_clear_error() {
    let logged = Logged::start(MockConfig {
        no_tools: true,
        ..MockConfig::default()
    });
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let o = Llmkit::against(&logged.mock)
        .args(["ask", "-m", "my-model", "-o"])
        .args([format!("tools={tools}")])
        .args(["weather in Paris?"])
        .run();
    assert_clear_error(&o, "does not support tool calling");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let hint = err.lines().find(|l| l.starts_with("hint: ")).unwrap();
    assert!(hint.contains("my-model") && hint.contains("vLLM"), "{hint}");
    assert!(err.contains(&logged.mock.base_url()), "{err}");
    // Sent once: a refusal is not retried, and there is nothing to fall back to.
    assert_eq!(logged.chat_log().len(), 1);
}

#[test]
fn store_capabilities_lists_and_forgets() {
    let logged = Logged::start(MockConfig {
        no_json_schema: Some(400),
        ..MockConfig::default()
    });
    let mut k = Llmkit::against(&logged.mock);
    let home = k.home.path().to_path_buf();
    assert!(
        k.args(["sentiment", "--json", "good"])
            .run()
            .status
            .success()
    );
    let list = |args: &[&str]| {
        let o = Llmkit::against(&logged.mock)
            .env_home(&home)
            .args(["store", "capabilities"])
            .args(args)
            .run();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let text = list(&[]);
    assert!(
        text.starts_with(&format!("{}  json_schema", logged.mock.base_url())),
        "{text}"
    );
    assert!(text.contains(" 400 "), "{text}");
    let v: Value = serde_json::from_str(&list(&["--json"])).unwrap();
    assert_eq!(v["missing_features"][0]["feature"], "json_schema");
    assert_eq!(v["missing_features"][0]["status"], 400);
    assert!(list(&["--forget"]).contains("forgot 1"));
    assert!(list(&[]).contains("no server has rejected a feature yet"));
    // Forgotten: the next run meets the rejection (and the notice) again.
    let o = Llmkit::against(&logged.mock)
        .env_home(&home)
        .args(["sentiment", "--json", "good"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(notices(&stderr(&o)).len(), 1, "{}", stderr(&o));
    assert_eq!(logged.rejected(), 2);
    assert!(list(&["--forget", "--all"]).contains("of every server"));
}
