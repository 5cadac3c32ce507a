//! Eval items that passed, as chat fine-tuning examples: the prompt the item was asked
//! (or its input under a task instruction) and the answer that passed, one per line.

use serde_json::{Value, json};

use crate::error::EvalError;
use crate::metrics::Metric;
use crate::report::{ItemResult, RunRecord, Threshold};
use crate::spec::Task;

/// Which items of a run to export, and how to frame them.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only this variant's items (by name); all variants when `None`.
    pub variant: Option<String>,
    /// Per-item conditions such as `rouge_l>=0.5` or `judge>=4`; when empty, every
    /// pass/fail metric of the run (accuracy, exact_match, regex_match, json_valid) must be 1.
    pub pass: Vec<Threshold>,
    /// The system message; default: the rendered system template of a `prompt` task, or
    /// a one-sentence instruction for the run's task.
    pub system: Option<String>,
}

/// What the export found.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// Training examples, `{"messages": [...]}`, without repeats.
    pub examples: Vec<Value>,
    /// Items looked at.
    pub items: usize,
    /// Items that passed (before removing repeats).
    pub passed: usize,
}

/// Metrics whose per-item value is 1 (pass) or 0 (fail).
const PASS_FAIL: [Metric; 4] = [
    Metric::Accuracy,
    Metric::ExactMatch,
    Metric::RegexMatch,
    Metric::JsonValid,
];

/// The passed items of `record` as training examples.
pub fn passed_examples(record: &RunRecord, opts: &ExportOptions) -> Result<Exported, EvalError> {
    let variants: Vec<_> = record
        .variants
        .iter()
        .filter(|v| opts.variant.as_deref().is_none_or(|n| n == v.name))
        .collect();
    if variants.is_empty() {
        let names: Vec<&str> = record.variants.iter().map(|v| v.name.as_str()).collect();
        return Err(EvalError::Export(format!(
            "run {} has no variant `{}` (it has: {})",
            record.id,
            opts.variant.as_deref().unwrap_or_default(),
            names.join(", ")
        )));
    }
    let pass: Vec<Threshold> = if opts.pass.is_empty() {
        PASS_FAIL
            .iter()
            .filter(|m| record.metrics.contains(m))
            .map(|m| Threshold {
                metric: *m,
                op: ">=".into(),
                value: 1.0,
            })
            .collect()
    } else {
        opts.pass.clone()
    };
    if pass.is_empty() {
        return Err(EvalError::Export(format!(
            "run {} has no pass/fail metric (accuracy, exact_match, regex_match, json_valid): \
             say what passing means with --pass, such as rouge_l>=0.5 or judge>=4",
            record.id
        )));
    }
    for g in &pass {
        if !g.metric.per_item() {
            return Err(EvalError::Export(format!(
                "{} is not scored per item; --pass takes accuracy, exact_match, regex_match, \
                 json_valid, chrf, rouge_l or judge",
                g.metric.name()
            )));
        }
        if !record.metrics.contains(&g.metric) {
            return Err(EvalError::Export(format!(
                "run {} did not measure {} (add it to the spec's metrics and run it again)",
                record.id,
                g.metric.name()
            )));
        }
    }
    let mut out = Exported {
        examples: Vec::new(),
        items: 0,
        passed: 0,
    };
    let mut seen = std::collections::HashSet::new();
    for v in variants {
        for item in &v.items {
            out.items += 1;
            let Some(answer) = item.output.as_deref().filter(|_| item.error.is_none()) else {
                continue;
            };
            let passed = pass.iter().all(|g| {
                item.scores
                    .get(g.metric.name())
                    .is_some_and(|x| g.holds(*x))
            });
            if !passed || answer.trim().is_empty() {
                continue;
            }
            out.passed += 1;
            let example = example(record.task, item, answer, opts.system.as_deref());
            if seen.insert(example.to_string()) {
                out.examples.push(example);
            }
        }
    }
    Ok(out)
}

fn example(task: Task, item: &ItemResult, answer: &str, system: Option<&str>) -> Value {
    let (default_system, user) = match (&item.prompt, task) {
        (Some(p), _) => (p.system.clone(), p.user.clone()),
        (None, task) => (instruction(task).to_string(), item.input.clone()),
    };
    let system = system.map_or(default_system, str::to_string);
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": user}));
    messages.push(json!({"role": "assistant", "content": answer}));
    json!({"messages": messages})
}

/// The task, said in one sentence for a fine-tuned model that will be asked the same way.
fn instruction(task: Task) -> &'static str {
    match task {
        Task::Sentiment => "Reply with the sentiment of the user's text as one label.",
        Task::Classify => "Reply with the label that fits the user's text.",
        Task::Summarize => "Summarize the user's text.",
        Task::Translate => "Translate the user's text.",
        Task::Extract => "Extract the requested fields of the user's text as JSON.",
        Task::Prompt => "",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{SentPrompt, VariantResult};
    use crate::spec::Variant;

    fn item(i: usize, output: Option<&str>, score: f64) -> ItemResult {
        ItemResult {
            index: i,
            input: format!("text {i}"),
            expected: Value::from("positive"),
            output: output.map(str::to_string),
            error: output.is_none().then(|| "boom".into()),
            latency_ms: 1.0,
            prompt_tokens: 1,
            completion_tokens: 1,
            cache_hit: false,
            cost_usd: None,
            scores: BTreeMap::from([("accuracy".to_string(), score)]),
            judge: None,
            prompt: None,
        }
    }

    fn record(items: Vec<ItemResult>, task: Task) -> RunRecord {
        let variant: Variant = serde_json::from_value(json!({"name": "v", "model": "m"})).unwrap();
        RunRecord {
            id: "r1".into(),
            created: 0,
            spec: "s".into(),
            task,
            dataset: "d.jsonl".into(),
            metrics: vec![Metric::Accuracy, Metric::LatencyP50],
            variants: vec![VariantResult {
                name: "v".into(),
                model: "m".into(),
                variant,
                metrics: BTreeMap::new(),
                confusion: None,
                errors: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
                cost_usd: None,
                items,
            }],
            judge: None,
        }
    }

    #[test]
    fn exports_only_passed_items_once() {
        let r = record(
            vec![
                item(0, Some("positive"), 1.0),
                item(1, Some("negative"), 0.0),
                item(2, None, 0.0),
                item(0, Some("positive"), 1.0),
            ],
            Task::Sentiment,
        );
        let e = passed_examples(&r, &ExportOptions::default()).unwrap();
        assert_eq!((e.items, e.passed, e.examples.len()), (4, 2, 1));
        let m = &e.examples[0]["messages"];
        assert_eq!(m[0]["role"], "system");
        assert_eq!(m[1]["content"], "text 0");
        assert_eq!(m[2], json!({"role": "assistant", "content": "positive"}));
    }

    #[test]
    fn prompt_items_keep_their_rendered_prompt() {
        let mut it = item(0, Some("Paris"), 1.0);
        it.prompt = Some(SentPrompt {
            system: String::new(),
            user: "Capital of France?".into(),
        });
        let r = record(vec![it], Task::Prompt);
        let e = passed_examples(&r, &ExportOptions::default()).unwrap();
        assert_eq!(
            e.examples[0],
            json!({"messages": [
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"}
            ]})
        );
    }

    #[test]
    fn bad_choices_are_explained() {
        let r = record(vec![item(0, Some("positive"), 1.0)], Task::Sentiment);
        let opts = ExportOptions {
            variant: Some("nope".into()),
            ..ExportOptions::default()
        };
        let e = passed_examples(&r, &opts).unwrap_err().to_string();
        assert!(
            e.contains("no variant `nope`") && e.contains("it has: v"),
            "{e}"
        );
        let opts = ExportOptions {
            pass: vec![Threshold::parse("rouge_l>=0.5").unwrap()],
            ..ExportOptions::default()
        };
        let e = passed_examples(&r, &opts).unwrap_err().to_string();
        assert!(e.contains("did not measure rouge_l"), "{e}");
        let opts = ExportOptions {
            pass: vec![Threshold::parse("latency_p50<=10").unwrap()],
            ..ExportOptions::default()
        };
        let e = passed_examples(&r, &opts).unwrap_err().to_string();
        assert!(e.contains("not scored per item"), "{e}");
        let mut r = r;
        r.metrics = vec![Metric::LatencyP50];
        let e = passed_examples(&r, &ExportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--pass"), "{e}");
    }
}
