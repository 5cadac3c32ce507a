//! `sentiment` and `classify`: labels with confidences, as validated structured output.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::TaskError;
use crate::runner::TaskRunner;
use crate::structured::{Spec, prompt_vars, request};
use crate::tasks::fit;

/// A sentiment verdict: `label` is positive, negative, neutral or mixed; `score` is the
/// confidence in 0..=1; `evidence` holds spans of the text (those not found in it are dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: String,
    pub score: f64,
    pub evidence: Vec<String>,
}

/// One label with its confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    pub confidence: f64,
}

/// The classification: one label, or with `multi` every label that applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub labels: Vec<LabelScore>,
    pub multi: bool,
}

impl Classification {
    /// The JSON shape: `{label, confidence}`, or `{labels: [{label, confidence}...]}` with
    /// `multi`; it validates against [`ClassifyOptions::schema`].
    pub fn to_json(&self) -> Value {
        if self.multi {
            json!({ "labels": self.labels })
        } else {
            let first = self.labels.first();
            json!({
                "label": first.map(|l| l.label.clone()),
                "confidence": first.map(|l| l.confidence),
            })
        }
    }
}

/// What `classify` chooses from.
#[derive(Debug, Clone)]
pub struct ClassifyOptions {
    pub labels: Vec<String>,
    pub multi: bool,
}

impl ClassifyOptions {
    /// Labels trimmed and de-duplicated; an empty list is an error.
    pub fn new(labels: &[String], multi: bool) -> Result<Self, TaskError> {
        let mut clean: Vec<String> = Vec::new();
        for l in labels.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            if !clean.iter().any(|c| c == l) {
                clean.push(l.to_string());
            }
        }
        if clean.is_empty() {
            return Err(TaskError::EmptyLabels);
        }
        Ok(Self {
            labels: clean,
            multi,
        })
    }

    /// The JSON Schema of the answer.
    pub fn schema(&self) -> Value {
        let item = json!({
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": self.labels},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            },
            "required": ["label", "confidence"],
            "additionalProperties": false
        });
        if self.multi {
            json!({
                "type": "object",
                "properties": {"labels": {"type": "array", "items": item, "minItems": 1}},
                "required": ["labels"],
                "additionalProperties": false
            })
        } else {
            item
        }
    }
}

/// The JSON Schema of a [`Sentiment`].
pub fn sentiment_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["positive", "negative", "neutral", "mixed"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            // A few short quotes (strict mode supports maxItems; it keeps a small local
            // model from listing until the token limit).
            "evidence": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
        },
        "required": ["label", "score", "evidence"],
        "additionalProperties": false
    })
}

/// The sentiment of `text` (too long a text is judged on its first window's worth).
pub async fn sentiment(runner: &TaskRunner, text: &str) -> Result<Sentiment, TaskError> {
    if text.trim().is_empty() {
        return Err(TaskError::EmptyInput);
    }
    let schema = sentiment_schema();
    let (json_prompt, schema_text) = prompt_vars(runner, &schema);
    let system = runner.render(
        "sentiment",
        &json!({"json_prompt": json_prompt, "schema": schema_text}),
    )?;
    let out = runner.output_budget(400);
    let budget = runner.input_budget(&system, out)?;
    let (user, _) = fit(runner, text, budget);
    let spec = Spec {
        name: "sentiment",
        schema: &schema,
        system,
        user,
        max_tokens: out,
    };
    let value = request(runner, spec, |_| Ok(())).await?;
    let mut s: Sentiment = serde_json::from_value(value).map_err(|e| TaskError::InvalidOutput {
        what: "sentiment".to_string(),
        attempts: runner.repairs() + 1,
        error: e.to_string(),
    })?;
    let lower = text.to_lowercase();
    s.evidence.retain(|span| {
        let span = span.trim();
        !span.is_empty() && lower.contains(&span.to_lowercase())
    });
    Ok(s)
}

/// Classifies `text` into the labels of `opts`.
pub async fn classify(
    runner: &TaskRunner,
    text: &str,
    opts: &ClassifyOptions,
) -> Result<Classification, TaskError> {
    if text.trim().is_empty() {
        return Err(TaskError::EmptyInput);
    }
    let schema = opts.schema();
    let (json_prompt, schema_text) = prompt_vars(runner, &schema);
    let vars = json!({
        "labels": opts.labels,
        "multi": opts.multi,
        "json_prompt": json_prompt,
        "schema": schema_text,
    });
    let system = runner.render("classify", &vars)?;
    let out = runner.output_budget(300);
    let budget = runner.input_budget(&system, out)?;
    let (user, _) = fit(runner, text, budget);
    let spec = Spec {
        name: "classification",
        schema: &schema,
        system,
        user,
        max_tokens: out,
    };
    let value = request(runner, spec, |_| Ok(())).await?;
    let invalid = |e: serde_json::Error| TaskError::InvalidOutput {
        what: "classification".to_string(),
        attempts: runner.repairs() + 1,
        error: e.to_string(),
    };
    let mut labels: Vec<LabelScore> = if opts.multi {
        serde_json::from_value(value.get("labels").cloned().unwrap_or(Value::Null))
            .map_err(invalid)?
    } else {
        vec![serde_json::from_value(value).map_err(invalid)?]
    };
    // A label listed twice keeps its highest confidence.
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut seen: Vec<String> = Vec::new();
    labels.retain(|l| {
        let new = !seen.contains(&l.label);
        seen.push(l.label.clone());
        new
    });
    Ok(Classification {
        labels,
        multi: opts.multi,
    })
}
