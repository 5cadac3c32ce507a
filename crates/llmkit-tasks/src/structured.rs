//! Structured output: a JSON Schema asked for (strict `json_schema`, or JSON mode plus the
//! schema in the prompt), answers validated with `jsonschema`, and invalid answers repaired
//! by follow-up requests quoting the validation error. Nothing unvalidated is returned.

use llmkit_types::{ChatMessage, ResponseFormat};
use serde_json::{Map, Value, json};

use crate::error::TaskError;
use crate::postprocess::extract_json;
use crate::runner::{StructuredMode, TaskRunner};

/// Checks that `schema` is a usable JSON Schema object.
pub fn check_schema(schema: &Value) -> Result<(), TaskError> {
    if !schema.is_object() {
        return Err(TaskError::InvalidSchema(
            "the schema is not a JSON object".to_string(),
        ));
    }
    jsonschema::validator_for(schema).map_err(|e| TaskError::InvalidSchema(e.to_string()))?;
    Ok(())
}

/// Validates `value` against `schema`; the error lists up to three problems with their
/// JSON paths.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| format!("invalid schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("at {path}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The schema as OpenAI's strict mode wants it: every object lists all its properties as
/// required and sets `additionalProperties: false`, recursively.
pub fn strict_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let v = match k.as_str() {
                    "properties" | "$defs" | "definitions" | "patternProperties" => match v {
                        Value::Object(props) => Value::Object(
                            props
                                .iter()
                                .map(|(pk, pv)| (pk.clone(), strict_schema(pv)))
                                .collect(),
                        ),
                        other => other.clone(),
                    },
                    "items" | "additionalItems" | "not" | "contains" => strict_schema(v),
                    "anyOf" | "oneOf" | "allOf" | "prefixItems" => match v {
                        Value::Array(items) => {
                            Value::Array(items.iter().map(strict_schema).collect())
                        }
                        other => other.clone(),
                    },
                    _ => v.clone(),
                };
                out.insert(k.clone(), v);
            }
            if let Some(Value::Object(props)) = map.get("properties") {
                let keys: Vec<Value> = props.keys().map(|k| Value::String(k.clone())).collect();
                out.insert("required".to_string(), Value::Array(keys));
                out.insert("additionalProperties".to_string(), Value::Bool(false));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// One structured request: what to send and how to check the answer.
pub(crate) struct Spec<'a> {
    /// The schema name sent in `json_schema`.
    pub name: &'a str,
    /// What the answer is checked against.
    pub schema: &'a Value,
    pub system: String,
    pub user: String,
    pub max_tokens: u32,
}

/// Sends `spec`, validates the answer (plus `check`, for rules a schema cannot state), and
/// repairs invalid answers up to the runner's repair attempts.
pub(crate) async fn request(
    runner: &TaskRunner,
    spec: Spec<'_>,
    check: impl Fn(&Value) -> Result<(), String>,
) -> Result<Value, TaskError> {
    let format = match runner.mode() {
        StructuredMode::Schema => {
            ResponseFormat::json_schema(spec.name, strict_schema(spec.schema))
        }
        StructuredMode::Prompt => ResponseFormat::JsonObject,
    };
    let schema_text = serde_json::to_string(spec.schema).unwrap_or_default();
    let base = vec![
        ChatMessage::system(spec.system.clone()),
        ChatMessage::user(spec.user.clone()),
    ];
    let mut messages = base.clone();
    let attempts = runner.repairs() + 1;
    let mut last_error = String::new();
    for _ in 0..attempts {
        let fmt = format.clone();
        let text = runner
            .send(messages.clone(), spec.max_tokens, |r| {
                r.response_format = Some(fmt)
            })
            .await?;
        let error = match extract_json(&text) {
            None => "the answer is not JSON".to_string(),
            Some(v) => match validate(spec.schema, &v).and_then(|()| check(&v)) {
                Ok(()) => return Ok(v),
                Err(e) => e,
            },
        };
        let repair = runner.render("repair", &json!({ "error": error, "schema": schema_text }))?;
        // Only the latest failed answer is kept, so repairs do not grow the prompt.
        messages = base.clone();
        messages.push(ChatMessage::assistant(truncate(&text, 2000)));
        messages.push(ChatMessage::user(repair));
        last_error = error;
    }
    Err(TaskError::InvalidOutput {
        what: format!("JSON for the `{}` schema", spec.name),
        attempts,
        error: last_error,
    })
}

/// The schema as the prompt shows it (prompt mode only).
pub(crate) fn prompt_vars(runner: &TaskRunner, schema: &Value) -> (bool, String) {
    let prompt = runner.mode() == StructuredMode::Prompt;
    (
        prompt,
        if prompt {
            serde_json::to_string(schema).unwrap_or_default()
        } else {
            String::new()
        },
    )
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_schema_requires_everything() {
        let s = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {
                "type": "object", "properties": {"c": {"type": "integer"}}}}},
            "required": ["a"]
        });
        let strict = strict_schema(&s);
        assert_eq!(strict["required"], json!(["a", "b"]));
        assert_eq!(strict["additionalProperties"], json!(false));
        assert_eq!(strict["properties"]["b"]["items"]["required"], json!(["c"]));
    }

    #[test]
    fn validation_errors_name_the_path() {
        let s =
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
        assert!(validate(&s, &json!({"n": 1})).is_ok());
        let e = validate(&s, &json!({"n": "x"})).unwrap_err();
        assert!(e.contains("/n"), "{e}");
        assert!(check_schema(&json!({"type": "objekt"})).is_err());
        assert!(check_schema(&json!([1])).is_err());
    }
}
