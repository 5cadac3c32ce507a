//! `llmkit eval run` through the batch engine: a run of 3 variants × 200 items killed with
//! SIGKILL and resumed gives the uninterrupted run's results; the LLM-as-judge metric is
//! validated and names its model in every report.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use llmkit_testkit::rng::SplitMix64;
use llmkit_testkit::{Fault, MockConfig};
use serde_json::{Value, json};

use crate::support::{Llmkit, Mock, stderr, stdout};

/// A dataset of `n` echo items and a `prompt` spec with three variants.
fn echo_spec(dir: &Path, n: usize, extra: &str) -> std::path::PathBuf {
    let rows: Vec<String> = (0..n)
        .map(|i| json!({"text": format!("item {i} is number {}", i * 7), "expected": format!("item {i} is number {}", i * 7)}).to_string())
        .collect();
    std::fs::write(dir.join("echo.jsonl"), rows.join("\n")).unwrap();
    let spec = format!(
        "dataset = \"echo.jsonl\"\ntask = \"prompt\"\nprompt = \"{{{{ text }}}}\"\nconcurrency = 4\n\
         metrics = [\"exact_match\", \"chrf\", \"rouge_l\", \"latency_p50\", \"cost_per_item\"{extra}]\n\
         [[variants]]\nname = \"plain\"\nmodel = \"gpt-4o-mini\"\n\
         [[variants]]\nname = \"say\"\nmodel = \"gpt-4o-mini\"\nprompt = \"Say: {{{{ text }}}}\"\n\
         [[variants]]\nname = \"big\"\nmodel = \"gpt-4o\"\nmax_tokens = 64\n"
    );
    let path = dir.join("echo.toml");
    std::fs::write(&path, spec).unwrap();
    path
}

/// The run JSON without what differs between runs: ids, times and latencies.
fn without_timing(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("id");
    o.remove("created");
    for var in o["variants"].as_array_mut().unwrap() {
        let m = var["metrics"].as_object_mut().unwrap();
        m.remove("latency_p50");
        m.remove("latency_p95");
        for item in var["items"].as_array_mut().unwrap() {
            item.as_object_mut().unwrap().remove("latency_ms");
        }
    }
    v
}

fn in_home(k: &mut Llmkit, home: &Path) {
    k.cmd
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"));
}

#[test]
fn issue8_eval_killed_and_resumed_gives_the_uninterrupted_results() {
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
        latency_ms: 15,
        seed: 11,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = echo_spec(dir.path(), 200, "");
    let run_args = |spec: &Path| -> Vec<String> {
        [
            "eval",
            "run",
            "--json",
            "--no-save",
            "--max-attempts",
            "60",
            "--stall-timeout",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([spec.display().to_string()])
        .collect()
    };

    let o = Llmkit::against(&mock).args(run_args(&spec)).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let reference: Value = serde_json::from_str(&stdout(&o)).unwrap();
    for var in reference["variants"].as_array().unwrap() {
        assert_eq!(var["items"].as_array().unwrap().len(), 200);
        assert_eq!(var["errors"], 0, "an item failed for good");
    }
    let before = mock.server.requests().len();

    let home = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(8);
    let mut kills = 0;
    for _ in 0..20 {
        let mut k = Llmkit::against(&mock);
        in_home(&mut k, home.path());
        k.cmd
            .args(run_args(&spec))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = k.cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng.below(700)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 3,
        "only {kills} kills happened before the run finished"
    );
    let mut k = Llmkit::against(&mock);
    in_home(&mut k, home.path());
    let o = k.args(run_args(&spec)).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(without_timing(resumed), without_timing(reference));

    // Finished items were not requested again: at most the requests in flight at each kill
    // (the concurrency) were repeated.
    let answered = mock.server.requests()[before..]
        .iter()
        .filter(|r| r["status"] == 200 && r["fault"].is_null())
        .count();
    assert!(
        answered <= 600 + kills * 8,
        "{answered} answered requests for 600 items over {kills} kills"
    );
}

#[test]
fn issue8_judge_metric_scores_with_a_validated_schema_and_names_its_model() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let spec = echo_spec(
        dir.path(),
        5,
        ", \"judge\"]\n[judge]\nmodel = \"gpt-4o\"\nrubric = \"The answer repeats the input exactly.\"\n#",
    );
    let html = dir.path().join("r.html");
    let mut k = Llmkit::against(&mock);
    let home = k.home.path().to_path_buf();
    let o = k
        .args(["eval", "run", "--json", "--html"])
        .args([&html, &spec])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["judge"]["model"], "gpt-4o");
    for var in v["variants"].as_array().unwrap() {
        let score = var["metrics"]["judge"].as_f64().unwrap();
        assert!((1.0..=5.0).contains(&score), "{var}");
        for item in var["items"].as_array().unwrap() {
            let s = item["judge"]["score"].as_f64().unwrap();
            assert!((1.0..=5.0).contains(&s) && s.fract() == 0.0, "{item}");
            assert!(item["judge"]["reason"].is_string(), "{item}");
        }
    }
    // The judge was asked with a strict schema, on the judge model.
    let judged: Vec<Value> = mock
        .server
        .requests()
        .into_iter()
        .filter(|r| r["body"]["response_format"]["json_schema"]["name"] == "judgement")
        .collect();
    // 15 judgements; `plain` and `big` give the same answers, so the judge's cache (it runs
    // at temperature 0) may serve some of them.
    assert!((10..=15).contains(&judged.len()), "{}", judged.len());
    for r in &judged {
        assert_eq!(r["body"]["model"], "gpt-4o");
        assert_eq!(r["body"]["response_format"]["json_schema"]["strict"], true);
        assert!(r["body"].to_string().contains("repeats the input exactly"));
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("judge (gpt-4o)"));

    // The terminal table names the judge model too (same spec: results from the job).
    let mut k2 = Llmkit::against(&mock);
    in_home(&mut k2, &home);
    let o = k2.args(["eval", "run"]).args([&spec]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("judge (gpt-4o)"), "{}", stdout(&o));
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
}

fn chat_requests(mock: &Mock) -> usize {
    mock.requests_to("/chat/completions").len()
}

#[test]
fn issue8_fresh_runs_judge_dry_run_and_passed_items_become_training_data() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let spec = echo_spec(
        dir.path(),
        5,
        ", \"judge\"]\n[judge]\nmodel = \"gpt-4o\"\nrubric = \"The answer repeats the input exactly.\"\n#",
    );
    let home = tempfile::tempdir().unwrap();
    let llmkit = || {
        let mut k = Llmkit::against(&mock);
        in_home(&mut k, home.path());
        k
    };
    // The dry run prices the judge's requests too, and sends nothing.
    let o = llmkit()
        .args(["eval", "run", "--dry-run", "--json"])
        .args([&spec])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let judge = v["judge"].as_array().unwrap();
    assert_eq!(judge.len(), 3, "{v}");
    let mut sum = 0.0;
    for (e, name) in judge.iter().zip(["plain", "say", "big"]) {
        assert_eq!(e["model"], "gpt-4o");
        assert_eq!(e["variant"], format!("judge of {name}"));
        assert_eq!(e["items"], 5);
        assert!(e["prompt_tokens"].as_u64().unwrap() > 5 * 40, "{e}");
        sum += e["cost_usd"].as_f64().unwrap();
    }
    for e in v["estimates"].as_array().unwrap() {
        sum += e["cost_usd"].as_f64().unwrap();
    }
    assert!(
        (v["total_cost_usd"].as_f64().unwrap() - sum).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(chat_requests(&mock), 0);
    let o = llmkit()
        .args(["eval", "run", "--dry-run"])
        .args([&spec])
        .run();
    assert!(
        stdout(&o).contains("judge of say (gpt-4o)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("total: about $"), "{}", stdout(&o));

    // A first run, then the same run again: resumed from its checkpoints, nothing sent.
    let first: Value = serde_json::from_str(&stdout(
        &llmkit().args(["eval", "run", "--json"]).args([&spec]).run(),
    ))
    .unwrap();
    let sent = chat_requests(&mock);
    assert!(sent >= 15, "{sent}");
    let o = llmkit().args(["eval", "run"]).args([&spec]).run();
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
    assert_eq!(chat_requests(&mock), sent);
    // --fresh sends every item (and judgement) again, past the response cache.
    let o = llmkit()
        .args(["eval", "run", "--fresh", "--json"])
        .args([&spec])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("already complete"), "{}", stderr(&o));
    let fresh: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        chat_requests(&mock),
        sent + 30,
        "15 answers and 15 judgements"
    );
    for var in fresh["variants"].as_array().unwrap() {
        for item in var["items"].as_array().unwrap() {
            assert_eq!(item["cache_hit"], false, "{item}");
        }
    }
    assert_eq!(
        fresh["variants"][0]["metrics"]["exact_match"],
        first["variants"][0]["metrics"]["exact_match"]
    );

    // Passed items as training data: `plain` and `big` echo every item exactly (the same
    // prompt and answer, written once); `say` passes none.
    let id = first["id"].as_str().unwrap();
    let out = dir.path().join("train.jsonl");
    // `finetune from-sessions --from-eval RUN ... -o train.jsonl`.
    let export = |run: &str, extra: &[&str]| {
        llmkit()
            .args(["finetune", "from-sessions", "--from-eval", run])
            .args(extra)
            .args(["-o"])
            .args([&out])
            .run()
    };
    let o = export(id, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrote 5 example(s)") && stderr(&o).contains("10 of 15 item(s) passed"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[1],
        json!({"messages": [
            {"role": "user", "content": "item 1 is number 7"},
            {"role": "assistant", "content": "item 1 is number 7"}
        ]})
    );
    // `say`'s prompt is what was sent ("Say: ..."), when the judge says it passed.
    let o = export(id, &["--variant", "say", "--pass", "judge>=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("\"Say: item 0 is number 0\""), "{text}");
    // Nothing passing, an unknown variant and an unknown run are clear errors.
    let o = export(id, &["--variant", "say"]);
    crate::support::assert_clear_error(&o, "no item of run");
    let o = export(id, &["--variant", "nope"]);
    crate::support::assert_clear_error(&o, "no variant `nope`");
    let o = export("no-such-run", &[]);
    crate::support::assert_clear_error(&o, "cannot read run `no-such-run`");
}
