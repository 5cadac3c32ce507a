//! `llmkit eval` (run, gates, HTML, compare, dry run) against the mock, the sample spec on
//! the local model when present, and `llmkit finetune validate`.

use std::path::{Path, PathBuf};

use llmkit_testkit::fixtures::require_tool;
use serde_json::{Value, json};

use crate::support::{CHAT_MODEL, Llmkit, Mock, assert_clear_error, have_models, stderr, stdout};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/eval")
}

fn json_of(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// The sample dataset with two API variants, for the mock.
fn sentiment_spec(dir: &Path) -> PathBuf {
    let path = dir.join("sentiment.toml");
    let dataset = sample_dir().join("sentiment.jsonl");
    let text = format!(
        "dataset = {:?}\ntask = \"sentiment\"\ninput = \"text\"\nexpected = \"label\"\n\
         metrics = [\"accuracy\", \"macro_f1\", \"latency_p95\", \"cost_per_item\"]\n\
         [[variants]]\nmodel = \"gpt-4o-mini\"\n[[variants]]\nname = \"cold\"\n\
         model = \"gpt-4o-mini\"\ntemperature = 0.0\n",
        dataset.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn eval_run_reports_saves_and_gates_against_the_mock() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let spec = sentiment_spec(dir.path());
    let html = dir.path().join("report.html");
    let mut k = Llmkit::against(&mock);
    let o = k
        .args(["eval", "run", "--json", "--cutoff", "accuracy>=0", "--html"])
        .args([&html])
        .args([&spec])
        .run();
    let v = json_of(&o);
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    for var in variants {
        assert_eq!(var["items"].as_array().unwrap().len(), 22);
        assert_eq!(var["errors"], 0, "{var}");
        let acc = var["metrics"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(var["metrics"]["cost_per_item"].as_f64().unwrap() > 0.0);
        assert!(var["confusion"]["labels"].is_array());
    }
    assert_eq!(v["gate_failures"], json!([]));
    let id = v["id"].as_str().unwrap();
    let saved = k
        .home
        .path()
        .join(format!("data/llmkit/eval/runs/{id}.json"));
    assert!(saved.is_file(), "run not saved at {}", saved.display());

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        page.matches("<svg").count(),
        4 + 1,
        "a chart per metric plus the scatter"
    );
    assert!(page.contains("<details"));
    // Self-contained: nothing fetched from the network.
    for needle in ["<script src", "<link", "https://", "url("] {
        assert!(!page.contains(needle), "{needle} in the page");
    }
    check_in_chromium(&html);

    // The terminal table marks the best value per metric.
    let o = Llmkit::against(&mock)
        .args(["eval", "run"])
        .args([&spec])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("accuracy") && table.contains(" *"),
        "{table}"
    );

    // A failing gate: a non-zero exit that names the metric.
    let o = Llmkit::against(&mock)
        .args(["eval", "run", "--cutoff", "accuracy>=1.01"])
        .args([&spec])
        .run();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("gate failed: "), "{}", stderr(&o));
}

#[test]
fn prompt_task_compare_shows_per_item_regressions() {
    // The mock echoes the last user message: template `{{ text }}` reproduces the expected
    // output exactly, a prefixed template breaks every item.
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let rows = ["alpha beta", "gamma delta", "the cat sat on the mat"];
    let data: Vec<String> = rows
        .iter()
        .map(|r| json!({"text": r, "expected": r}).to_string())
        .collect();
    std::fs::write(dir.path().join("echo.jsonl"), data.join("\n")).unwrap();
    let spec_for = |template: &str| {
        format!(
            "dataset = \"echo.jsonl\"\ntask = \"prompt\"\nprompt = {template:?}\n\
             metrics = [\"exact_match\", \"chrf\", \"bleu\", \"rouge_l\", \"latency_p50\"]\n\
             [[variants]]\nname = \"v\"\nmodel = \"gpt-4o-mini\"\n"
        )
    };
    std::fs::write(dir.path().join("a.toml"), spec_for("{{ text }}")).unwrap();
    std::fs::write(dir.path().join("b.toml"), spec_for("Say: {{ text }}")).unwrap();
    let mut k = Llmkit::against(&mock);
    let home = k.home.path().to_path_buf();
    let a = json_of(
        &k.args(["eval", "run", "--json"])
            .args([dir.path().join("a.toml")])
            .run(),
    );
    let m = &a["variants"][0]["metrics"];
    assert_eq!(m["exact_match"], 1.0, "{m}");
    assert!((m["chrf"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    assert!((m["rouge_l"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    let mut k2 = Llmkit::against(&mock);
    k2.cmd
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"));
    let b = json_of(
        &k2.args(["eval", "run", "--json"])
            .args([dir.path().join("b.toml")])
            .run(),
    );
    assert_eq!(b["variants"][0]["metrics"]["exact_match"], 0.0);

    let mut k3 = Llmkit::against(&mock);
    k3.cmd
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"));
    let o = k3
        .args(["eval", "compare"])
        .args([a["id"].as_str().unwrap(), b["id"].as_str().unwrap()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("per-item regression"), "{text}");
    assert!(
        text.contains("item #2 exact_match: 1.000 → 0.000"),
        "{text}"
    );
    assert!(text.contains("Say: the cat sat on the mat"), "{text}");
}

#[test]
fn dry_run_estimates_without_sending_and_bad_specs_explain() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sentiment_spec(dir.path());
    // No mock at all: a dry run must not need the network.
    let o = Llmkit::bare()
        .args(["eval", "run", "--dry-run", "--json"])
        .args([&spec])
        .run();
    let v = json_of(&o);
    let e = &v["estimates"][0];
    assert_eq!(e["items"], 22);
    assert!(e["prompt_tokens"].as_u64().unwrap() > 22 * 10);
    assert!(e["cost_usd"].as_f64().unwrap() > 0.0);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "dataset = \"x.jsonl\"\ntask = \"classify\"\nmetrics = [\"accuracy\"]\n[[variants]]\nmodel = \"m\"\n").unwrap();
    let o = Llmkit::bare().args(["eval", "run"]).args([&bad]).run();
    assert_clear_error(&o, "labels");
    let o = Llmkit::bare()
        .args(["eval", "run", "--cutoff", "speed>=1"])
        .args([&spec])
        .run();
    assert_clear_error(&o, "unknown metric");
}

#[test]
fn sample_spec_runs_on_the_local_model() {
    // Two items per variant; `llmkit eval run examples/eval/sentiment.toml` runs all 22.
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    // The shipped spec, limited to two items.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample_dir().join("sentiment.toml")).unwrap();
    let text = text.replace(
        "dataset = \"sentiment.jsonl\"",
        &format!(
            "dataset = {:?}\nlimit = 2",
            sample_dir().join("sentiment.jsonl").display().to_string()
        ),
    );
    std::fs::write(dir.path().join("s.toml"), text).unwrap();
    let v = json_of(
        &Llmkit::bare()
            .args(["eval", "run", "--json"])
            .args([dir.path().join("s.toml")])
            .run(),
    );
    assert_eq!(v["variants"].as_array().unwrap().len(), 2);
    let var = &v["variants"][0];
    assert!(
        var["model"].as_str().unwrap().starts_with("local:"),
        "{var}"
    );
    let items = var["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert!(item["error"].is_null(), "{item}");
        assert!(item["output"].is_string(), "{item}");
        assert!(item["scores"]["accuracy"].as_f64().is_some(), "{item}");
    }
    let acc = var["metrics"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{var}");
    assert_eq!(var["metrics"]["cost_per_item"], 0.0);
}

#[test]
fn finetune_validate_reports_lines_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let example = |q: &str| {
        json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": q},
            {"role": "assistant", "content": "Sure."}
        ]})
        .to_string()
    };
    let good: Vec<String> = (0..10).map(|i| example(&format!("question {i}"))).collect();
    let path = dir.path().join("good.jsonl");
    std::fs::write(&path, good.join("\n")).unwrap();
    let o = Llmkit::bare()
        .args(["finetune", "validate", "--training-price", "3"])
        .args([&path])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("10 examples"), "{out}");
    assert!(out.contains("estimated cost per epoch: $"), "{out}");

    let mut bad = good.clone();
    bad.push("{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}".into());
    bad.push(good[0].clone());
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, bad.join("\n")).unwrap();
    let o = Llmkit::bare()
        .args(["finetune", "validate"])
        .args([&path])
        .run();
    assert_clear_error(&o, "not valid fine-tuning data");
    let out = stdout(&o);
    assert!(
        out.contains("bad.jsonl:11: error: no assistant message"),
        "{out}"
    );
    assert!(
        out.contains("bad.jsonl:12: warning: duplicate of line 1"),
        "{out}"
    );
    // gpt-4o-mini's training price is in the catalogue: $3 per million tokens.
    assert!(out.contains("estimated cost per epoch: $0.0008"), "{out}");
}

/// Loads the report in headless Chromium when it is installed: the page must render its
/// SVG charts and raise no script errors.
fn check_in_chromium(html: &Path) {
    let Some(browser) = require_tool(&["chromium", "chromium-browser"]) else {
        return;
    };
    // Wrap the page so errors are written into the DOM where --dump-dom shows them.
    let page = std::fs::read_to_string(html).unwrap();
    let probe = "<script>window.onerror=function(m){document.title='JSERROR '+m};</script>";
    let wrapped = html.with_extension("probe.html");
    std::fs::write(
        &wrapped,
        page.replacen("<head>", &format!("<head>{probe}"), 1),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", wrapped.display()))
        .output()
        .unwrap();
    let dom = stdout(&o);
    assert!(
        dom.contains("<svg"),
        "no SVG in the rendered DOM: {}",
        stderr(&o)
    );
    assert!(dom.contains("<title>llmkit eval:"), "script error: {dom}");
}

/// An eval run that went through every item but some or all failed exits 3, like
/// `batch run` (README: errors and exit codes); its report is still printed, and a failed
/// quality gate wins with exit 1.
#[test]
fn issue22_an_eval_run_with_failed_items_exits_3() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        json!({"text": "I love it", "label": "positive"}),
        // Over the mock model's 4096-token window: refused by the server, not retried.
        json!({"text": "word ".repeat(5000), "label": "negative"}),
    ];
    let rows: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(dir.path().join("d.jsonl"), rows.join("\n")).unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "dataset = \"d.jsonl\"\ntask = \"sentiment\"\ninput = \"text\"\nexpected = \"label\"\n\
         metrics = [\"accuracy\"]\n[[variants]]\nmodel = \"mock-ctx4k\"\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let o = Llmkit::against(&mock)
        .args([
            "eval",
            "run",
            "--json",
            "--no-save",
            "--max-attempts",
            "1",
            spec,
        ])
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_clear_error(&o, "1 of 2 items failed");
    let run: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(run["variants"][0]["errors"], 1, "{run}");

    let o = Llmkit::against(&mock)
        .args(["eval", "run", "--no-save", "--max-attempts", "1"])
        .args(["--cutoff", "accuracy>=1", spec])
        .run();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("gate failed: "), "{}", stderr(&o));

    // Every item failing: the same code, and the message says so.
    let all = dir.path().join("all.toml");
    std::fs::write(
        &all,
        "dataset = \"d.jsonl\"\ntask = \"sentiment\"\ninput = \"text\"\nexpected = \"label\"\n\
         metrics = [\"accuracy\"]\n[[variants]]\nmodel = \"nonexistent-model\"\n",
    )
    .unwrap();
    let o = Llmkit::against(&mock)
        .args(["eval", "run", "--no-save", "--max-attempts", "1"])
        .args([&all])
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_clear_error(&o, "all 2 items failed");
}
