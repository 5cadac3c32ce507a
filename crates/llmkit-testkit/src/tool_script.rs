//! `MOCK_TOOLS:` scripts: a last user message holding `MOCK_TOOLS: [[{"name": "f",
//! "arguments": {...}}], ...]` (anywhere in it, so that a task's prompt template may wrap
//! it) makes the mock call tools step by step. Step N is sent after N tool-call
//! turns; when the steps run out it answers `tool results: R1 | R2 | ...` with the tool
//! results it was sent since that user message, so a test sees what reached the model.
//! `"arguments"` may be a string, sent as is (malformed arguments, for tests).

use serde_json::Value;

use crate::errors::ApiError;

/// The prefix of a tool script.
pub const MOCK_TOOLS: &str = "MOCK_TOOLS:";

/// One scripted call: the function's name and its arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptedCall {
    pub name: String,
    pub arguments: String,
}

/// What the script answers now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    Calls(Vec<ScriptedCall>),
    Text(String),
}

/// The script in `last_user`, if it holds one; `done` tool-call turns were made since, and
/// `results` are the tool results sent back.
pub(crate) fn next(
    last_user: &str,
    done: usize,
    results: &[String],
) -> Option<Result<Next, ApiError>> {
    // Anywhere in the message, so that a task's prompt template may wrap the script; the
    // script is the first JSON value after the prefix.
    let at = last_user.find(MOCK_TOOLS)?;
    let rest = last_user[at + MOCK_TOOLS.len()..].trim_start();
    let first = serde_json::Deserializer::from_str(rest)
        .into_iter::<Value>()
        .next()
        .map_or_else(
            || rest.to_string(),
            |v| v.map_or_else(|_| rest.to_string(), |v| v.to_string()),
        );
    Some(
        parse(&first).map(|steps| match steps.into_iter().nth(done) {
            Some(calls) if !calls.is_empty() => Next::Calls(calls),
            _ => Next::Text(format!("tool results: {}", results.join(" | "))),
        }),
    )
}

fn parse(text: &str) -> Result<Vec<Vec<ScriptedCall>>, ApiError> {
    let bad = |why: &str| ApiError::invalid_request(format!("bad MOCK_TOOLS script: {why}"));
    let steps: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let steps = steps
        .as_array()
        .ok_or_else(|| bad("expected an array of steps"))?;
    steps
        .iter()
        .map(|step| {
            step.as_array()
                .ok_or_else(|| bad("a step is an array of calls"))?
                .iter()
                .map(|c| {
                    let name = c
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("a call needs a \"name\""))?;
                    let arguments = match c.get("arguments") {
                        None => "{}".to_string(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    };
                    Ok(ScriptedCall {
                        name: name.to_string(),
                        arguments,
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_then_the_results() {
        let s = r#"MOCK_TOOLS: [[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": "{oops"}], [{"name": "c"}]]"#;
        let Some(Ok(Next::Calls(c))) = next(s, 0, &[]) else {
            panic!()
        };
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].arguments, r#"{"x":1}"#);
        assert_eq!(c[1].arguments, "{oops");
        let Some(Ok(Next::Calls(c))) = next(s, 1, &[]) else {
            panic!()
        };
        assert_eq!(c[0].arguments, "{}");
        assert_eq!(
            next(s, 2, &["r1".into(), "r2".into()]).unwrap().unwrap(),
            Next::Text("tool results: r1 | r2".into())
        );
        assert!(next("hello", 0, &[]).is_none());
        assert!(next("MOCK_TOOLS: {", 0, &[]).unwrap().is_err());
    }
}
