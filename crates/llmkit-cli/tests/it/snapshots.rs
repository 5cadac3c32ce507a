//! Snapshots of what a user of the `llmkit` binary sees: the `error:`/`hint:` lines and exit
//! codes of representative failures, `--help` of the binary and of each subcommand, and the
//! shape of `--json` output. The snapshots live in `tests/it/snapshots/`.
//!
//! A change to any of them fails here until the snapshot is updated on purpose: run
//! `INSTA_UPDATE=always cargo test --release -p llmkit-cli --test it snapshots::`, review
//! `git diff crates/llmkit-cli/tests/it/snapshots/`, and commit the snapshots with the change.
//! Text that changes from run to run (temporary paths, the mock's port, latencies) is
//! replaced by a `[NAME]` placeholder before comparison.

use std::path::Path;
use std::process::Output;

use llmkit_testkit::{Fault, MockConfig};
use serde_json::Value;

use crate::support::{Llmkit, Mock, stderr, stdout};

/// Replaces the run-dependent parts of `text`: each `(from, to)` pair in order, then the
/// workspace's and the temporary directory's paths.
fn normalise(text: &str, replacements: &[(String, &str)]) -> String {
    let mut text = text.to_string();
    for (from, to) in replacements {
        if !from.is_empty() {
            text = text.replace(from.as_str(), to);
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = repo.canonicalize().unwrap_or(repo);
    let tmp = std::env::temp_dir().display().to_string();
    text.replace(&format!("{}/", repo.display()), "[REPO]/")
        .replace(&tmp, "[TMP]")
}

/// The placeholders for one hermetic invocation: its home directory, and the mock's address.
fn replacements(k: &Llmkit, mock: Option<&Mock>) -> Vec<(String, &'static str)> {
    let mut r = vec![(k.home.path().display().to_string(), "[HOME]")];
    if let Some(mock) = mock {
        r.push((mock.server.url().to_string(), "[MOCK]"));
    }
    r
}

/// The transcript of one run: the command line, the exit code, then stdout and stderr.
fn transcript(args: &[&str], o: &Output, replacements: &[(String, &str)]) -> String {
    let mut out = format!(
        "$ llmkit {}\nexit: {}\n",
        normalise(&args.join(" "), replacements),
        o.status
            .code()
            .map_or_else(|| "signal".to_string(), |c| c.to_string())
    );
    for (name, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
        if !text.is_empty() {
            out.push_str(&format!("--- {name}\n{}", normalise(&text, replacements)));
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// Runs `k` with `args` and snapshots the failure as `error_{name}`; it must fail cleanly.
fn failure(name: &str, mut k: Llmkit, mock: Option<&Mock>, args: &[&str], stdin: Option<&str>) {
    k.args(args);
    let o = match stdin {
        Some(input) => k.run_with_stdin(input),
        None => k.run(),
    };
    assert!(!o.status.success(), "{name}: expected a failure");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{name}: {err}");
    insta::assert_snapshot!(
        format!("error_{name}"),
        transcript(args, &o, &replacements(&k, mock))
    );
}

#[test]
fn errors_users_hit() {
    failure(
        "no_api_key",
        Llmkit::bare(),
        None,
        &["ask", "-m", "gpt-4o", "hi"],
        None,
    );
    let mut unreachable = Llmkit::bare();
    unreachable
        .cmd
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env("OPENAI_API_KEY", "sk-x");
    failure(
        "unreachable_server",
        unreachable,
        None,
        &["ask", "--max-retries", "0", "hi"],
        None,
    );
    let keyed = Mock::start(MockConfig {
        api_key: Some("sk-right".into()),
        ..MockConfig::default()
    });
    failure(
        "wrong_key",
        Llmkit::against(&keyed),
        Some(&keyed),
        &["ask", "hi"],
        None,
    );
    let mock = Mock::default();
    failure(
        "unknown_model",
        Llmkit::against(&mock),
        Some(&mock),
        &["ask", "-m", "nonexistent-model", "hi"],
        None,
    );
    failure(
        "bad_flag_value",
        Llmkit::bare(),
        None,
        &["ask", "--temperature", "9", "x"],
        None,
    );
    failure(
        "unknown_flag",
        Llmkit::bare(),
        None,
        &["ask", "--bogus", "x"],
        None,
    );
    failure(
        "too_many_stops",
        Llmkit::bare(),
        None,
        &[
            "ask", "--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e", "-m",
            "local:x", "hi",
        ],
        None,
    );
    failure(
        "missing_local_model",
        Llmkit::bare(),
        None,
        &["ask", "-m", "local:/nonexistent/model.gguf", "Hi"],
        None,
    );
    failure(
        "empty_input",
        Llmkit::bare(),
        None,
        &["ask", "-"],
        Some("  \n"),
    );
    failure(
        "binary_input",
        Llmkit::bare(),
        None,
        &["tokens", "-"],
        Some("a\u{0}b"),
    );
    failure(
        "context_window",
        Llmkit::against(&mock),
        Some(&mock),
        &["ask", "-m", "gpt-4o-mini", "-"],
        Some(&"word ".repeat(140_000)),
    );
    failure(
        "unknown_model_to_pull",
        Llmkit::bare(),
        None,
        &["models", "pull", "gpt-17"],
        None,
    );
    failure(
        "unknown_template",
        Llmkit::bare(),
        None,
        &["write", "--template", "nope"],
        None,
    );
}

#[test]
fn errors_from_faults() {
    let failing = Mock::start(MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::S500],
        ..MockConfig::default()
    });
    failure(
        "retries_exhausted",
        Llmkit::against(&failing),
        Some(&failing),
        &["ask", "--max-retries", "2", "--no-stream", "hi"],
        None,
    );
    let stalling = Mock::start(MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::Stall],
        ..MockConfig::default()
    });
    failure(
        "stream_stall",
        Llmkit::against(&stalling),
        Some(&stalling),
        &["ask", "--max-retries", "1", "--stall-timeout", "0.3", "hi"],
        None,
    );
}

#[test]
fn errors_from_files() {
    let k = Llmkit::bare();
    let config = k.config_path();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "model = \"gpt-4o\"\nbase_url = [\n").unwrap();
    failure("malformed_config", k, None, &["ask", "hi"], None);

    let k = Llmkit::bare();
    let missing = k.home.path().join("no-such-file.txt");
    let missing = missing.to_str().unwrap().to_string();
    failure("missing_input_file", k, None, &["tokens", &missing], None);

    let k = Llmkit::bare();
    let dir = k.home.path().to_path_buf();
    let spec = eval_spec(&dir);
    failure(
        "eval_unknown_metric",
        k,
        None,
        &["eval", "run", "--cutoff", "speed>=1", &spec],
        None,
    );

    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let input = k.home.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\":\"a\"}\n").unwrap();
    let out = k.home.path().join("no/such/dir/out.jsonl");
    failure(
        "batch_unwritable_output",
        k,
        Some(&mock),
        &[
            "batch",
            "run",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--task",
            "ask",
            "-m",
            "gpt-4o-mini",
            "--quiet",
        ],
        None,
    );
}

/// Bad rows of a batch are not a failure of the run: each gets an error line in the output,
/// and the rest proceed.
#[test]
fn batch_bad_rows() {
    let mock = Mock::default();
    let mut k = Llmkit::against(&mock);
    let input = k.home.path().join("in.csv");
    std::fs::write(&input, b"id,text\n1,hello\n2\n3,\xff\xfe\n4,world\n").unwrap();
    let out = k.home.path().join("out.jsonl");
    let args = [
        "batch",
        "run",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--task",
        "ask",
        "-m",
        "gpt-4o-mini",
        "--quiet",
    ];
    let o = k.args(args).run();
    // Rows failed, so the run exits 3 (README: errors and exit codes).
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    insta::assert_snapshot!("batch_bad_rows_output", json_lines(&lines));
}

/// The subcommands `llmkit --help` lists, in its order.
const SUBCOMMANDS: &[&str] = &[
    "ask",
    "complete",
    "models",
    "tokens",
    "embed",
    "config",
    "chat",
    "sessions",
    "usage",
    "cache",
    "store",
    "roles",
    "batch",
    "kb",
    "eval",
    "finetune",
    "serve",
    "keys",
    "summarize",
    "translate",
    "sentiment",
    "classify",
    "extract",
    "qa",
    "write",
    "templates",
];

/// `--help` of the binary and of each subcommand, at a fixed width.
#[test]
fn help_texts() {
    let help = |args: &[&str]| {
        let mut k = Llmkit::bare();
        k.cmd.env("COLUMNS", "100");
        let o = k.args(args).run();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let top = help(&["--help"]);
    insta::assert_snapshot!("help", top);
    // Every subcommand the help lists has its own snapshot below.
    let listed: Vec<&str> = top
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(listed, SUBCOMMANDS, "update SUBCOMMANDS");
    for sub in SUBCOMMANDS {
        insta::assert_snapshot!(format!("help_{sub}"), help(&[sub, "--help"]));
    }
}

/// The shape of `--json` output: field names, types and the mock's deterministic values.
#[test]
fn json_outputs() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "hello world\n").unwrap();
    let dir_name = [(dir.path().display().to_string(), "[DIR]")];
    let json = |name: &str, args: &[&str]| {
        let mut k = Llmkit::against(&mock);
        let o = k.args(args).run();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let text = normalise(&stdout(&o), &replacements(&k, Some(&mock)));
        let values: Vec<Value> = serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map(|v| v.unwrap_or_else(|e| panic!("{args:?} prints JSON: {e}\n{text}")))
            .collect();
        insta::assert_snapshot!(
            format!("json_{name}"),
            format!(
                "$ llmkit {}\n{}",
                normalise(&args.join(" "), &dir_name),
                json_lines(&values)
            )
        );
    };
    json(
        "ask",
        &["ask", "--json", "-m", "gpt-4o-mini", "--no-stream", "hello"],
    );
    json("models", &["models", "--json"]);
    json(
        "tokens",
        &["tokens", "--json", "-m", "gpt-4o", text.to_str().unwrap()],
    );
    json(
        "embed",
        &["embed", "--json", "-m", "text-embedding-3-small", "hello"],
    );
    json(
        "sentiment",
        &["sentiment", "--json", "-m", "gpt-4o-mini", "I love it"],
    );
}

/// `values` pretty-printed one after another, with volatile fields replaced and long numeric
/// arrays (embeddings) summarised.
fn json_lines(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| {
            let mut v = v.clone();
            redact(&mut v);
            serde_json::to_string_pretty(&v).unwrap() + "\n"
        })
        .collect()
}

/// Fields whose values change from run to run.
const VOLATILE: &[&str] = &[
    "latency_ms",
    "elapsed_ms",
    "duration_ms",
    "created",
    "created_at",
];

fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if VOLATILE.contains(&key.as_str()) && !value.is_null() {
                    *value = Value::String(format!("[{key}]"));
                } else {
                    redact(value);
                }
            }
        }
        Value::Array(items) if items.len() > 8 && items.iter().all(Value::is_number) => {
            *v = Value::String(format!("[{} numbers]", items.len()));
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// A small eval spec on the sample dataset, written into `dir`; returns its path.
fn eval_spec(dir: &Path) -> String {
    let dataset = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/eval/sentiment.jsonl");
    let path = dir.join("spec.toml");
    std::fs::write(
        &path,
        format!(
            "dataset = {:?}\ntask = \"sentiment\"\ninput = \"text\"\nexpected = \"label\"\n\
             metrics = [\"accuracy\"]\n[[variants]]\nmodel = \"gpt-4o-mini\"\n",
            dataset.display().to_string()
        ),
    )
    .unwrap();
    path.display().to_string()
}
