//! LLM-as-judge: a named judge model grades each output against the spec's rubric, answering
//! with a strict `json_schema` score that is validated before it counts.

use llmkit_client::ModelInfo;
use llmkit_tasks::{TaskRunner, TokenCounter, extract_json, validate};
use llmkit_types::{ChatMessage, ResponseFormat};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::runner::{Estimate, estimate_item};
use crate::spec::{Dataset, EvalSpec, Variant};

/// The spec's `[judge]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// The judge model (an API model or `local:NAME`), named in every report.
    pub model: String,
    /// What a good answer is; the judge scores against it.
    pub rubric: String,
    /// Scores run from 1 to `scale` (default 5).
    #[serde(default = "default_scale")]
    pub scale: u32,
}

fn default_scale() -> u32 {
    5
}

/// One item's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// 1..=scale, or None when the judge failed (see `error`).
    pub score: Option<f64>,
    pub reason: Option<String>,
    pub error: Option<String>,
}

/// A verdict (`{"score": 4, "reason": "one short sentence"}`), roughly.
const VERDICT_TOKENS: u64 = 40;

/// The reference output as the judge reads it.
fn expected_text(expected: &Value) -> String {
    match expected {
        Value::String(s) => s.clone(),
        Value::Null => "(none given)".to_string(),
        other => other.to_string(),
    }
}

/// Answers that stay invalid after this many requests count as a judge failure.
const ATTEMPTS: u32 = 2;

impl JudgeSpec {
    /// The JSON Schema of the judge's answer.
    pub fn schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": self.scale.max(1)},
                "reason": {"type": "string"}
            },
            "required": ["score", "reason"],
            "additionalProperties": false
        })
    }

    /// Tokens and cost of grading one variant's answers (`--dry-run`): the judge's
    /// instructions, the rubric, each input and reference, and an answer of
    /// `answer_tokens` go in; a short JSON verdict comes out.
    pub fn estimate(
        &self,
        spec: &EvalSpec,
        data: &Dataset,
        variant: &Variant,
        counter: &TokenCounter,
        price: Option<&ModelInfo>,
        free: bool,
    ) -> Estimate {
        let (mut prompt, mut completion) = (0u64, 0u64);
        for item in &data.items {
            let (system, user) =
                self.prompt(&item.input(&spec.input), &expected_text(&item.expected), "");
            let (_, answer) = estimate_item(spec, variant, item, counter);
            // The chat format adds a few tokens a message; a retry after an invalid verdict
            // is not counted.
            prompt += counter.count(&system) as u64 + counter.count(&user) as u64 + answer + 8;
            completion += VERDICT_TOKENS;
        }
        Estimate::priced(
            format!("judge of {}", variant.name),
            &self.model,
            data.items.len(),
            (prompt, completion),
            price,
            free,
        )
    }

    /// The judge's (system, user) messages for one answer.
    pub(crate) fn prompt(&self, input: &str, expected: &str, output: &str) -> (String, String) {
        let system = format!(
            "You are an impartial judge. Grade the answer against the rubric on a scale from 1 \
             (fails the rubric) to {} (fully meets it). Reply with a JSON object \
             {{\"score\": integer, \"reason\": one short sentence}}.",
            self.scale.max(1)
        );
        let user = format!(
            "Rubric:\n{}\n\nInput:\n{input}\n\nReference output:\n{expected}\n\nAnswer to \
             grade:\n{output}",
            self.rubric
        );
        (system, user)
    }

    /// Asks the judge (through `runner`, whose prototype names the judge model) to grade
    /// `output` for `input` against the rubric and the expected output.
    pub async fn grade(
        &self,
        runner: &TaskRunner,
        input: &str,
        expected: &Value,
        output: &str,
    ) -> Judgement {
        let schema = self.schema();
        let (system, user) = self.prompt(input, &expected_text(expected), output);
        let mut messages = vec![ChatMessage::system(system), ChatMessage::user(user)];
        let mut error = String::new();
        for _ in 0..ATTEMPTS {
            let format = ResponseFormat::json_schema("judgement", schema.clone());
            let text = match runner
                .send(messages.clone(), 200, |r| r.response_format = Some(format))
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    return Judgement {
                        score: None,
                        reason: None,
                        error: Some(format!("judge request failed: {e}")),
                    };
                }
            };
            match extract_json(&text).ok_or_else(|| "the answer is not JSON".to_string()) {
                Ok(v) => match validate(&schema, &v) {
                    Ok(()) => {
                        return Judgement {
                            score: v.get("score").and_then(Value::as_f64),
                            reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
                            error: None,
                        };
                    }
                    Err(e) => error = e,
                },
                Err(e) => error = e,
            }
            messages.push(ChatMessage::assistant(text));
            messages.push(ChatMessage::user(format!(
                "That answer is invalid: {error}. Reply with only the JSON object."
            )));
        }
        Judgement {
            score: None,
            reason: None,
            error: Some(format!(
                "the judge's answer is not valid after {ATTEMPTS} attempts: {error}"
            )),
        }
    }
}
