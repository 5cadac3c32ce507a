//! `write`: a `write` template rendered with the user's variables and sent as the prompt.

use serde_json::{Map, Value};

use crate::error::TaskError;
use crate::runner::TaskRunner;

/// Renders template `name` with `vars` and returns the model's text.
pub async fn write(
    runner: &TaskRunner,
    name: &str,
    vars: &Map<String, Value>,
) -> Result<String, TaskError> {
    let prompt = runner.render(name, &Value::Object(vars.clone()))?;
    let out = runner.output_budget(1024);
    runner.input_budget(&prompt, out)?;
    runner.ask("", &prompt, out).await
}
