//! The eval spec (TOML): dataset, task, variants and metrics; and the JSONL dataset reader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EvalError;
use crate::judge::JudgeSpec;
use crate::metrics::Metric;

/// What each item asks the model to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// `llmkit_tasks::sentiment`; the output is the label.
    Sentiment,
    /// `llmkit_tasks::classify` over the spec's `labels`; the output is the top label.
    Classify,
    /// `llmkit_tasks::summarize`; the output is the summary.
    Summarize,
    /// `llmkit_tasks::translate` into the spec's `to`; the output is the translation.
    Translate,
    /// `llmkit_tasks::extract` with the spec's `schema`; the output is compact JSON.
    Extract,
    /// A minijinja prompt template over the item's fields; the output is the answer text.
    Prompt,
}

/// One prompt × model × parameters combination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Shown in reports; defaults to the model name (plus a number when repeated).
    #[serde(default)]
    pub name: String,
    /// An API model name or `local:NAME`; None uses the configured default.
    pub model: Option<String>,
    /// Prompt template (task `prompt`), overriding the spec's `prompt`.
    pub prompt: Option<String>,
    /// System prompt (task `prompt`), overriding the spec's `system`.
    pub system: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<i64>,
}

/// The spec file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// A name for reports; defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// The JSONL dataset, relative to the spec file.
    pub dataset: PathBuf,
    pub task: Task,
    /// The field holding the task input (default `input`; task `prompt` uses all fields).
    #[serde(default = "default_input")]
    pub input: String,
    /// The field holding the expected output (default `expected`).
    #[serde(default = "default_expected")]
    pub expected: String,
    /// Labels for `classify`; for `prompt`, the answer is scored as the first label it
    /// says (so free-text answers can be scored by `accuracy` and `macro_f1`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Target language for `translate`.
    pub to: Option<String>,
    /// A JSON Schema file (relative to the spec) for `extract` and `json_valid`.
    pub schema: Option<PathBuf>,
    /// The pattern for `regex_match`.
    pub regex: Option<String>,
    /// Prompt template and system prompt for task `prompt`.
    pub prompt: Option<String>,
    pub system: Option<String>,
    /// Items sent at once per variant (the local model serves one at a time anyway).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Only the first N items.
    pub limit: Option<usize>,
    pub metrics: Vec<Metric>,
    pub variants: Vec<Variant>,
    /// The LLM-as-judge of metric `judge`: model, rubric, scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeSpec>,
    /// Where the spec was read from (set on load).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The loaded schema (set on load).
    #[serde(skip)]
    pub schema_value: Option<Value>,
}

fn default_input() -> String {
    "input".to_string()
}

fn default_expected() -> String {
    "expected".to_string()
}

fn default_concurrency() -> usize {
    4
}

/// One dataset row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// 0-based position in the dataset.
    pub index: usize,
    /// All fields of the row.
    pub fields: BTreeMap<String, Value>,
    pub expected: Value,
}

impl Item {
    /// The task input: the input field as text (non-strings as JSON).
    pub fn input(&self, field: &str) -> String {
        match self.fields.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }
}

/// A loaded dataset.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub items: Vec<Item>,
}

impl EvalSpec {
    /// Reads and checks a spec; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let text = read(path)?;
        Self::parse(&text, path)
    }

    /// Parses spec text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, EvalError> {
        let bad = |message: String| EvalError::Spec {
            path: path.display().to_string(),
            message,
        };
        let mut spec: EvalSpec = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        spec.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if spec.name.is_empty() {
            spec.name = path
                .file_stem()
                .map_or_else(|| "eval".to_string(), |s| s.to_string_lossy().into_owned());
        }
        spec.check().map_err(bad)?;
        if let Some(s) = &spec.schema {
            let p = spec.base_dir.join(s);
            let v: Value = serde_json::from_str(&read(&p)?)
                .map_err(|e| bad(format!("schema {}: {e}", p.display())))?;
            llmkit_tasks::check_schema(&v).map_err(|e| bad(e.to_string()))?;
            spec.schema_value = Some(v);
        }
        spec.name_variants();
        Ok(spec)
    }

    fn check(&self) -> Result<(), String> {
        if self.variants.is_empty() {
            return Err("no variants: add at least one [[variants]] table".to_string());
        }
        if self.metrics.is_empty() {
            return Err("no metrics: add e.g. `metrics = [\"accuracy\"]`".to_string());
        }
        match self.task {
            Task::Classify if self.labels.len() < 2 => {
                return Err("task `classify` needs `labels` (at least two)".to_string());
            }
            Task::Translate if self.to.is_none() => {
                return Err("task `translate` needs `to` (the target language)".to_string());
            }
            Task::Extract if self.schema.is_none() => {
                return Err("task `extract` needs `schema` (a JSON Schema file)".to_string());
            }
            Task::Prompt
                if self.prompt.is_none() && self.variants.iter().any(|v| v.prompt.is_none()) =>
            {
                return Err(
                    "task `prompt` needs `prompt` (a template such as \"{{ input }}\") in the \
                     spec or in every variant"
                        .to_string(),
                );
            }
            _ => {}
        }
        if self.metrics.contains(&Metric::Judge) && self.judge.is_none() {
            return Err(
                "metric `judge` needs a [judge] table with `model` and `rubric`".to_string(),
            );
        }
        if let Some(j) = &self.judge {
            if j.rubric.trim().is_empty() {
                return Err("[judge] needs a non-empty `rubric`".to_string());
            }
            if j.scale < 2 {
                return Err("[judge] `scale` must be at least 2".to_string());
            }
        }
        if self.metrics.contains(&Metric::JsonValid) && self.schema.is_none() {
            return Err("metric `json_valid` needs `schema`".to_string());
        }
        match (&self.regex, self.metrics.contains(&Metric::RegexMatch)) {
            (None, true) => return Err("metric `regex_match` needs `regex`".to_string()),
            (Some(r), _) => {
                regex::Regex::new(r).map_err(|e| format!("invalid regex: {e}"))?;
            }
            _ => {}
        }
        if self.concurrency == 0 {
            return Err("`concurrency` must be at least 1".to_string());
        }
        Ok(())
    }

    /// Gives unnamed variants their model's name, numbering repeats.
    fn name_variants(&mut self) {
        let mut seen: Vec<String> = Vec::new();
        for v in &mut self.variants {
            if v.name.is_empty() {
                v.name = v.model.clone().unwrap_or_else(|| "default".to_string());
            }
            let base = v.name.clone();
            let mut n = 1;
            while seen.contains(&v.name) {
                n += 1;
                v.name = format!("{base}#{n}");
            }
            seen.push(v.name.clone());
        }
    }

    /// The dataset path, resolved.
    pub fn dataset_path(&self) -> PathBuf {
        self.base_dir.join(&self.dataset)
    }

    /// Reads the dataset: every non-empty line a JSON object with the expected field (and
    /// the input field, except for task `prompt`).
    pub fn load_dataset(&self) -> Result<Dataset, EvalError> {
        let path = self.dataset_path();
        let text = read(&path)?;
        let mut items = Vec::new();
        for (no, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: String| EvalError::Dataset {
                path: path.display().to_string(),
                line: no + 1,
                message,
            };
            let fields: BTreeMap<String, Value> =
                serde_json::from_str(line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
            let expected = fields.get(&self.expected).cloned().ok_or_else(|| {
                bad(format!(
                    "no `{}` field (the expected output)",
                    self.expected
                ))
            })?;
            if self.task != Task::Prompt && !fields.contains_key(&self.input) {
                return Err(bad(format!("no `{}` field (the input)", self.input)));
            }
            items.push(Item {
                index: items.len(),
                fields,
                expected,
            });
            if self.limit.is_some_and(|l| items.len() >= l) {
                break;
            }
        }
        if items.is_empty() {
            return Err(EvalError::Dataset {
                path: path.display().to_string(),
                line: 0,
                message: "the dataset has no items".to_string(),
            });
        }
        Ok(Dataset { items })
    }
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
dataset = "data.jsonl"
task = "classify"
labels = ["a", "b"]
metrics = ["accuracy", "macro_f1"]
[[variants]]
model = "gpt-4o-mini"
[[variants]]
model = "gpt-4o-mini"
temperature = 0.0
"#;

    #[test]
    fn parses_and_names_variants() {
        let s =
            EvalSpec::parse(SPEC, Path::new("/tmp/x/spec.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "spec");
        assert_eq!(s.variants[0].name, "gpt-4o-mini");
        assert_eq!(s.variants[1].name, "gpt-4o-mini#2");
        assert_eq!(s.dataset_path(), Path::new("/tmp/x/data.jsonl"));
        assert_eq!(s.concurrency, 4);
    }

    #[test]
    fn rejects_incomplete_specs_with_a_reason() {
        let no_labels = SPEC.replace("labels = [\"a\", \"b\"]", "");
        let e = EvalSpec::parse(&no_labels, Path::new("s.toml"))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("labels")));
        let bad_metric = SPEC.replace("macro_f1", "f2");
        assert!(EvalSpec::parse(&bad_metric, Path::new("s.toml")).is_err());
        let regex = format!(
            "regex = \"(\"\n{}",
            SPEC.replace("\"macro_f1\"", "\"regex_match\"")
        );
        let e = EvalSpec::parse(&regex, Path::new("s.toml"))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("invalid regex")), "{regex}");
    }

    #[test]
    fn dataset_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("data.jsonl"),
            "{\"input\": \"x\", \"expected\": \"a\"}\n\n{\"input\": \"y\"}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = EvalSpec::parse(SPEC, &dir.path().join("s.toml")).unwrap_or_else(|e| panic!("{e}"));
        let e = s
            .load_dataset()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(":3:") && e.contains("expected"), "{e}");
    }
}
