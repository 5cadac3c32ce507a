//! Run results: per-item and per-variant scores, the saved run record, the terminal table
//! with the best value per metric marked, quality gates and run-to-run comparison.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EvalError;
use crate::judge::{JudgeSpec, Judgement};
use crate::metrics::{self, Confusion, Metric};
use crate::spec::{EvalSpec, Task, Variant};

/// One item's outcome under one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub index: usize,
    pub input: String,
    pub expected: Value,
    /// None when the request or task failed (see `error`).
    pub output: Option<String>,
    pub error: Option<String>,
    pub latency_ms: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_hit: bool,
    pub cost_usd: Option<f64>,
    /// Per-item values of the per-item metrics (1/0 for match metrics).
    pub scores: BTreeMap<String, f64>,
    /// The LLM judge's verdict (metric `judge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<Judgement>,
    /// The rendered (system, user) prompt of a `prompt` task item, which training data
    /// exported from the run (`finetune from-sessions --from-eval`) starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<SentPrompt>,
}

/// The messages a `prompt` task item sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentPrompt {
    /// Empty when the variant has no system template.
    pub system: String,
    pub user: String,
}

/// One variant's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub model: String,
    pub variant: Variant,
    /// Metric name → value; a metric that could not be computed (unknown price) is absent.
    pub metrics: BTreeMap<String, f64>,
    pub confusion: Option<Confusion>,
    pub errors: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: Option<f64>,
    pub items: Vec<ItemResult>,
}

/// A saved run (`<data dir>/eval/runs/ID.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub spec: String,
    pub task: Task,
    pub dataset: String,
    pub metrics: Vec<Metric>,
    pub variants: Vec<VariantResult>,
    /// The judge of metric `judge` (its model is named in every report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeSpec>,
}

impl RunRecord {
    /// A metric's column title: its name, with the judge model for `judge`.
    pub fn metric_label(&self, m: Metric) -> String {
        match (m, &self.judge) {
            (Metric::Judge, Some(j)) => format!("judge ({})", j.model),
            _ => m.name().to_string(),
        }
    }

    /// A run id from the spec name and the time: `NAME-MILLIS`, safe as a file name.
    pub fn make_id(spec: &str, unix_millis: u128) -> String {
        let name: String = spec
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{name}-{unix_millis}")
    }

    pub fn from_json(text: &str) -> Result<Self, EvalError> {
        serde_json::from_str(text).map_err(|e| EvalError::Record(e.to_string()))
    }

    /// The metric values of a variant, in the spec's order.
    pub fn value(&self, variant: &str, metric: Metric) -> Option<f64> {
        self.variants
            .iter()
            .find(|v| v.name == variant)
            .and_then(|v| v.metrics.get(metric.name()).copied())
    }
}

fn expected_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Label used for failed items in label metrics.
const ERROR_LABEL: &str = "<error>";

/// Scores a variant's item results for the spec's metrics.
pub(crate) fn score_variant(
    spec: &EvalSpec,
    variant: &Variant,
    model: &str,
    mut items: Vec<ItemResult>,
) -> VariantResult {
    let re = spec
        .regex
        .as_deref()
        .and_then(|r| regex::Regex::new(r).ok());
    for it in &mut items {
        let out = it.output.clone().unwrap_or_default();
        let ok = it.output.is_some();
        let exp = expected_text(&it.expected);
        for m in spec.metrics.iter().filter(|m| m.per_item()) {
            let v = match m {
                _ if !ok => 0.0,
                Metric::Accuracy => f64::from(u8::from(
                    metrics::norm_label(&exp) == metrics::norm_label(&out),
                )),
                Metric::ExactMatch => f64::from(u8::from(metrics::exact_match(&it.expected, &out))),
                Metric::RegexMatch => f64::from(u8::from(
                    re.as_ref().is_some_and(|r| metrics::regex_match(r, &out)),
                )),
                Metric::JsonValid => f64::from(u8::from(
                    spec.schema_value
                        .as_ref()
                        .is_some_and(|s| metrics::json_valid(s, &out)),
                )),
                Metric::Chrf => metrics::chrf(&[(&out, &exp)]),
                Metric::RougeL => metrics::rouge_l(&out, &exp),
                Metric::Judge => it.judge.as_ref().and_then(|j| j.score).unwrap_or(0.0),
                _ => continue,
            };
            it.scores.insert(m.name().to_string(), v);
        }
    }
    let pairs: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let out = i.output.clone().unwrap_or_else(|| ERROR_LABEL.to_string());
            (expected_text(&i.expected), out)
        })
        .collect();
    let mut values = BTreeMap::new();
    let n = items.len().max(1) as f64;
    let latencies: Vec<f64> = items.iter().map(|i| i.latency_ms).collect();
    let costs: Vec<Option<f64>> = items.iter().map(|i| i.cost_usd).collect();
    for m in &spec.metrics {
        let v = match m {
            Metric::MacroF1 => Some(metrics::macro_f1(&pairs)),
            Metric::Bleu => {
                let hyps: Vec<&str> = pairs.iter().map(|(_, o)| o.as_str()).collect();
                let refs: Vec<Vec<&str>> = pairs.iter().map(|(e, _)| vec![e.as_str()]).collect();
                Some(metrics::bleu(&hyps, &refs))
            }
            Metric::Chrf => {
                let p: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(e, o)| (o.as_str(), e.as_str()))
                    .collect();
                Some(metrics::chrf(&p))
            }
            Metric::LatencyP50 => metrics::percentile(&latencies, 50.0),
            Metric::LatencyP95 => metrics::percentile(&latencies, 95.0),
            Metric::CostPerItem => metrics::cost_per_item(&costs),
            per_item => Some(
                items
                    .iter()
                    .filter_map(|i| i.scores.get(per_item.name()))
                    .sum::<f64>()
                    / n,
            ),
        };
        if let Some(v) = v {
            values.insert(m.name().to_string(), v);
        }
    }
    let confusion = spec
        .metrics
        .iter()
        .any(|m| matches!(m, Metric::Accuracy | Metric::MacroF1))
        .then(|| Confusion::new(&pairs));
    VariantResult {
        name: variant.name.clone(),
        model: model.to_string(),
        variant: variant.clone(),
        metrics: values,
        confusion,
        errors: items.iter().filter(|i| i.output.is_none()).count(),
        prompt_tokens: items.iter().map(|i| i.prompt_tokens).sum(),
        completion_tokens: items.iter().map(|i| i.completion_tokens).sum(),
        cost_usd: costs.iter().copied().sum(),
        items,
    }
}

/// For each metric, the names of the variants with the best value.
pub fn best_per_metric(record: &RunRecord) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for m in &record.metrics {
        let vals: Vec<(&str, f64)> = record
            .variants
            .iter()
            .filter_map(|v| v.metrics.get(m.name()).map(|x| (v.name.as_str(), *x)))
            .collect();
        let best = if m.higher_is_better() {
            vals.iter()
                .map(|(_, x)| *x)
                .fold(f64::NEG_INFINITY, f64::max)
        } else {
            vals.iter().map(|(_, x)| *x).fold(f64::INFINITY, f64::min)
        };
        let names: Vec<String> = vals
            .iter()
            .filter(|(_, x)| (*x - best).abs() < 1e-12)
            .map(|(n, _)| n.to_string())
            .collect();
        out.insert(m.name().to_string(), names);
    }
    out
}

/// A metric value as shown: percentages-free, 4 significant places, `$` for cost.
pub(crate) fn fmt_value(m: Metric, v: f64) -> String {
    match m {
        Metric::CostPerItem => format!("${v:.6}"),
        Metric::LatencyP50 | Metric::LatencyP95 => format!("{v:.0} ms"),
        Metric::Chrf | Metric::Bleu | Metric::Judge => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// The terminal table: one row per variant, one column per metric, the best value per
/// metric marked with `*`.
pub fn render_table(record: &RunRecord) -> String {
    let best = best_per_metric(record);
    let mut header: Vec<String> = vec!["variant".into(), "model".into()];
    header.extend(record.metrics.iter().map(|m| record.metric_label(*m)));
    header.push("errors".into());
    let mut rows = vec![header];
    for v in &record.variants {
        let mut row = vec![v.name.clone(), v.model.clone()];
        for m in &record.metrics {
            let cell = match v.metrics.get(m.name()) {
                Some(x) => {
                    let mark = best
                        .get(m.name())
                        .is_some_and(|b| b.contains(&v.name) && record.variants.len() > 1);
                    format!("{}{}", fmt_value(*m, *x), if mark { " *" } else { "" })
                }
                None => "n/a".to_string(),
            };
            row.push(cell);
        }
        row.push(v.errors.to_string());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    if record.variants.len() > 1 {
        out.push_str("* best value per metric\n");
    }
    out
}

/// A quality gate: `METRIC>=VALUE` (also `<=`, `>`, `<`); every variant must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    pub op: String,
    pub value: f64,
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Self, EvalError> {
        let bad = || EvalError::Gate(text.to_string());
        let (pos, op) = [">=", "<=", ">", "<"]
            .iter()
            .find_map(|op| text.find(op).map(|p| (p, *op)))
            .ok_or_else(bad)?;
        let metric = Metric::parse(&text[..pos])?;
        let value: f64 = text[pos + op.len()..].trim().parse().map_err(|_| bad())?;
        Ok(Self {
            metric,
            op: op.to_string(),
            value,
        })
    }

    pub(crate) fn holds(&self, x: f64) -> bool {
        match self.op.as_str() {
            ">=" => x >= self.value,
            "<=" => x <= self.value,
            ">" => x > self.value,
            _ => x < self.value,
        }
    }

    /// The failures of this gate over a run, as sentences (empty when it passes).
    pub fn check(&self, record: &RunRecord) -> Vec<String> {
        let mut fails = Vec::new();
        for v in &record.variants {
            match v.metrics.get(self.metric.name()) {
                Some(x) if self.holds(*x) => {}
                Some(x) => fails.push(format!(
                    "{}: {} = {} fails {}{}{}",
                    v.name,
                    self.metric.name(),
                    fmt_value(self.metric, *x),
                    self.metric.name(),
                    self.op,
                    self.value
                )),
                None => fails.push(format!(
                    "{}: {} was not measured (add it to the spec's metrics)",
                    v.name,
                    self.metric.name()
                )),
            }
        }
        fails
    }
}

/// An item that scored worse in the second run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub variant: String,
    pub index: usize,
    pub metric: String,
    pub before: f64,
    pub after: f64,
    pub input: String,
    pub output_before: Option<String>,
    pub output_after: Option<String>,
}

/// A metric's value in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub variant: String,
    pub metric: String,
    pub before: f64,
    pub after: f64,
}

/// What changed between two runs of the same spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub deltas: Vec<Delta>,
    pub regressions: Vec<Regression>,
}

/// Compares variants with the same name: metric deltas and the items whose per-item
/// score went down.
pub fn compare_runs(a: &RunRecord, b: &RunRecord) -> Comparison {
    let mut out = Comparison::default();
    for vb in &b.variants {
        let Some(va) = a.variants.iter().find(|v| v.name == vb.name) else {
            continue;
        };
        for (m, after) in &vb.metrics {
            if let Some(before) = va.metrics.get(m) {
                out.deltas.push(Delta {
                    variant: vb.name.clone(),
                    metric: m.clone(),
                    before: *before,
                    after: *after,
                });
            }
        }
        for ib in &vb.items {
            let Some(ia) = va.items.iter().find(|i| i.index == ib.index) else {
                continue;
            };
            for (m, after) in &ib.scores {
                let Some(before) = ia.scores.get(m) else {
                    continue;
                };
                if *after < *before - 1e-9 {
                    out.regressions.push(Regression {
                        variant: vb.name.clone(),
                        index: ib.index,
                        metric: m.clone(),
                        before: *before,
                        after: *after,
                        input: ib.input.clone(),
                        output_before: ia.output.clone(),
                        output_after: ib.output.clone(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(metrics: &str) -> EvalSpec {
        let text = format!(
            "dataset = \"d.jsonl\"\ntask = \"sentiment\"\nmetrics = [{metrics}]\n[[variants]]\nmodel = \"m\"\n"
        );
        EvalSpec::parse(&text, std::path::Path::new("s.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn item(index: usize, expected: &str, output: Option<&str>, ms: f64) -> ItemResult {
        ItemResult {
            index,
            input: format!("text {index}"),
            expected: Value::from(expected),
            output: output.map(str::to_string),
            error: output.is_none().then(|| "boom".to_string()),
            latency_ms: ms,
            prompt_tokens: 10,
            completion_tokens: 2,
            cache_hit: false,
            cost_usd: Some(0.001),
            scores: BTreeMap::new(),
            judge: None,
            prompt: None,
        }
    }

    fn record(variants: Vec<VariantResult>, metrics: Vec<Metric>) -> RunRecord {
        RunRecord {
            id: "r".into(),
            created: 0,
            spec: "s".into(),
            task: Task::Sentiment,
            dataset: "d.jsonl".into(),
            metrics,
            variants,
            judge: None,
        }
    }

    #[test]
    fn scores_items_and_aggregates() {
        let s = spec("\"accuracy\", \"macro_f1\", \"latency_p50\", \"cost_per_item\"");
        let items = vec![
            item(0, "positive", Some("Positive"), 10.0),
            item(1, "negative", Some("positive"), 20.0),
            item(2, "negative", None, 30.0),
        ];
        let v = score_variant(&s, &s.variants[0], "m", items);
        assert_eq!(v.metrics["accuracy"], 1.0 / 3.0);
        assert_eq!(v.metrics["latency_p50"], 20.0);
        assert!((v.metrics["cost_per_item"] - 0.001).abs() < 1e-12);
        assert_eq!(v.errors, 1);
        assert_eq!(v.items[0].scores["accuracy"], 1.0);
        assert_eq!(v.items[2].scores["accuracy"], 0.0);
        let c = v.confusion.unwrap_or_default();
        assert_eq!(c.get("negative", "<error>"), 1);
    }

    #[test]
    fn table_marks_best_and_gates_fail_per_variant() {
        let s = spec("\"accuracy\", \"latency_p50\"");
        let good = score_variant(&s, &s.variants[0], "m", vec![item(0, "a", Some("a"), 50.0)]);
        let mut bad_variant = s.variants[0].clone();
        bad_variant.name = "other".into();
        let bad = score_variant(&s, &bad_variant, "m", vec![item(0, "a", Some("b"), 5.0)]);
        let r = record(vec![good, bad], s.metrics.clone());
        let best = best_per_metric(&r);
        assert_eq!(best["accuracy"], ["m"]);
        assert_eq!(best["latency_p50"], ["other"]);
        let table = render_table(&r);
        assert!(table.contains("1.000 *"), "{table}");
        assert!(table.contains("5 ms *"), "{table}");
        let gate = Threshold::parse("accuracy>=0.8").unwrap_or_else(|e| panic!("{e}"));
        let fails = gate.check(&r);
        assert_eq!(fails.len(), 1);
        assert!(fails[0].starts_with("other:"));
        assert!(Threshold::parse("accuracy=0.8").is_err());
        assert!(Threshold::parse("speed>=1").is_err());
        let missing = Threshold::parse("bleu > 1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(missing.check(&r).len(), 2);
    }

    #[test]
    fn compare_lists_items_that_got_worse() {
        let s = spec("\"accuracy\"");
        let a = score_variant(
            &s,
            &s.variants[0],
            "m",
            vec![item(0, "a", Some("a"), 1.0), item(1, "b", Some("x"), 1.0)],
        );
        let b = score_variant(
            &s,
            &s.variants[0],
            "m",
            vec![item(0, "a", Some("z"), 1.0), item(1, "b", Some("b"), 1.0)],
        );
        let c = compare_runs(
            &record(vec![a], s.metrics.clone()),
            &record(vec![b], s.metrics.clone()),
        );
        assert_eq!(c.regressions.len(), 1);
        assert_eq!(c.regressions[0].index, 0);
        assert_eq!(c.deltas[0].before, 0.5);
        assert_eq!(RunRecord::make_id("my spec", 5), "my_spec-5");
    }
}
