//! `extract`: an object valid against the user's JSON Schema, drawn from the text.

use serde_json::{Value, json};

use crate::error::TaskError;
use crate::runner::TaskRunner;
use crate::structured::{Spec, check_schema, prompt_vars, request};
use crate::tasks::fit;

/// Extracts data matching `schema` from `text`; the result is validated against `schema`.
pub async fn extract(runner: &TaskRunner, text: &str, schema: &Value) -> Result<Value, TaskError> {
    if text.trim().is_empty() {
        return Err(TaskError::EmptyInput);
    }
    check_schema(schema)?;
    let (json_prompt, schema_text) = prompt_vars(runner, schema);
    let system = runner.render(
        "extract",
        &json!({"json_prompt": json_prompt, "schema": schema_text}),
    )?;
    let out = runner.output_budget(1024);
    let budget = runner.input_budget(&system, out)?;
    let (user, _) = fit(runner, text, budget);
    let spec = Spec {
        name: "extraction",
        schema,
        system,
        user,
        max_tokens: out,
    };
    request(runner, spec, |_| Ok(())).await
}
