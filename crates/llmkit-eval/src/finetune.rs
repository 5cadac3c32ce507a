//! Checks of OpenAI chat fine-tuning data (JSONL of `{"messages": [...]}`): format, roles
//! and order, an assistant message per example, the example count, the per-example token
//! limit and duplicates; and a token count for the cost estimate.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

/// How bad a finding is: errors make the file unusable for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with its 1-based line (0 for the whole file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

/// The result of validating a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FinetuneReport {
    pub examples: usize,
    /// Tokens counted per example as the OpenAI cookbook does (3 per message, plus role,
    /// content and name, plus 3 per example), summed.
    pub total_tokens: u64,
    /// Tokens billed per epoch: each example capped at the limit (longer ones are truncated).
    pub billed_tokens_per_epoch: u64,
    pub max_example_tokens: u64,
    pub findings: Vec<Finding>,
}

impl FinetuneReport {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// OpenAI's minimum number of training examples.
pub(crate) const MIN_EXAMPLES: usize = 10;

const ROLES: [&str; 5] = ["system", "user", "assistant", "tool", "function"];
const MESSAGE_KEYS: [&str; 9] = [
    "role",
    "content",
    "name",
    "weight",
    "tool_calls",
    "function_call",
    "tool_call_id",
    "refusal",
    "audio",
];
const EXAMPLE_KEYS: [&str; 4] = ["messages", "tools", "functions", "parallel_tool_calls"];

/// Validates chat fine-tuning JSONL; `count` counts tokens of a text and `limit` is the
/// per-example token limit of the model to be tuned.
pub fn validate_chat_jsonl(
    text: &str,
    count: &dyn Fn(&str) -> usize,
    limit: u64,
) -> FinetuneReport {
    let mut r = FinetuneReport::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let no = i + 1;
        if line.trim().is_empty() {
            push(
                &mut r,
                no,
                Severity::Warning,
                "empty line (it is ignored here; remove it)",
            );
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                push(&mut r, no, Severity::Error, &format!("not valid JSON: {e}"));
                continue;
            }
        };
        r.examples += 1;
        let Some(obj) = v.as_object() else {
            push(
                &mut r,
                no,
                Severity::Error,
                "an example must be a JSON object",
            );
            continue;
        };
        for k in obj.keys().filter(|k| !EXAMPLE_KEYS.contains(&k.as_str())) {
            push(
                &mut r,
                no,
                Severity::Warning,
                &format!("unrecognised key `{k}`"),
            );
        }
        let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
            push(&mut r, no, Severity::Error, "missing `messages` list");
            continue;
        };
        if messages.is_empty() {
            push(&mut r, no, Severity::Error, "`messages` is empty");
            continue;
        }
        let tokens = check_messages(&mut r, no, messages, count);
        r.total_tokens += tokens;
        r.billed_tokens_per_epoch += tokens.min(limit);
        r.max_example_tokens = r.max_example_tokens.max(tokens);
        if tokens > limit {
            push(
                &mut r,
                no,
                Severity::Warning,
                &format!("{tokens} tokens, over the {limit}-token limit: it will be truncated"),
            );
        }
        let key = Value::Array(messages.clone()).to_string();
        if let Some(first) = seen.get(&key) {
            push(
                &mut r,
                no,
                Severity::Warning,
                &format!("duplicate of line {first}"),
            );
        } else {
            seen.insert(key, no);
        }
    }
    if r.examples < MIN_EXAMPLES {
        let msg = format!(
            "{} examples: fine-tuning needs at least {MIN_EXAMPLES} (50 to 100 usually help)",
            r.examples
        );
        push(&mut r, 0, Severity::Error, &msg);
    }
    r
}

fn push(r: &mut FinetuneReport, line: usize, severity: Severity, message: &str) {
    r.findings.push(Finding {
        line,
        severity,
        message: message.to_string(),
    });
}

/// Checks one example's messages and returns its token count.
fn check_messages(
    r: &mut FinetuneReport,
    no: usize,
    messages: &[Value],
    count: &dyn Fn(&str) -> usize,
) -> u64 {
    let mut tokens = 3u64;
    let mut assistants = 0;
    let mut roles: Vec<&str> = Vec::new();
    for (j, m) in messages.iter().enumerate() {
        let at = format!("message {}", j + 1);
        let Some(mo) = m.as_object() else {
            push(r, no, Severity::Error, &format!("{at} is not an object"));
            continue;
        };
        for k in mo.keys().filter(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
            push(
                r,
                no,
                Severity::Error,
                &format!("{at}: unrecognised key `{k}`"),
            );
        }
        let role = mo.get("role").and_then(Value::as_str).unwrap_or("");
        if !ROLES.contains(&role) {
            push(
                r,
                no,
                Severity::Error,
                &format!("{at}: role `{role}` is not one of system, user, assistant, tool"),
            );
        }
        roles.push(role);
        if role == "assistant" {
            assistants += 1;
        }
        if role == "system" && j > 0 {
            push(
                r,
                no,
                Severity::Error,
                &format!("{at}: a system message must come first"),
            );
        }
        let calls = mo.contains_key("tool_calls") || mo.contains_key("function_call");
        let content = mo.get("content");
        let text = match content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            Some(Value::Null) | None if role == "assistant" && calls => String::new(),
            Some(Value::Null) | None => {
                push(r, no, Severity::Error, &format!("{at}: missing `content`"));
                String::new()
            }
            Some(_) => {
                push(
                    r,
                    no,
                    Severity::Error,
                    &format!("{at}: `content` must be a string"),
                );
                String::new()
            }
        };
        if let Some(w) = mo.get("weight") {
            let ok = role == "assistant" && matches!(w.as_u64(), Some(0 | 1));
            if !ok {
                push(
                    r,
                    no,
                    Severity::Error,
                    &format!("{at}: `weight` must be 0 or 1, on assistant messages only"),
                );
            }
        }
        tokens += 3 + count(role) as u64 + count(&text) as u64;
        if let Some(name) = mo.get("name").and_then(Value::as_str) {
            tokens += 1 + count(name) as u64;
        }
        if let Some(c) = mo.get("tool_calls").or(mo.get("function_call")) {
            tokens += count(&c.to_string()) as u64;
        }
    }
    if assistants == 0 {
        push(
            r,
            no,
            Severity::Error,
            "no assistant message: nothing to learn from",
        );
    }
    if let Some(first) = roles.iter().find(|r| **r != "system")
        && *first != "user"
    {
        push(
            r,
            no,
            Severity::Warning,
            &format!("the first message after the system prompt is `{first}`, not `user`"),
        );
    }
    if roles.last().is_some_and(|l| *l != "assistant") && assistants > 0 {
        push(
            r,
            no,
            Severity::Warning,
            "messages after the last assistant message are not trained on",
        );
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn example(q: &str, a: &str) -> String {
        serde_json::json!({"messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": q},
            {"role": "assistant", "content": a}
        ]})
        .to_string()
    }

    #[test]
    fn a_clean_file_passes_and_is_counted() {
        let text: Vec<String> = (0..10).map(|i| example(&format!("q {i}"), "yes")).collect();
        let r = validate_chat_jsonl(&text.join("\n"), &words, 1000);
        assert_eq!(r.findings, []);
        assert_eq!(r.examples, 10);
        // Per example, counting words: 3 + system (3+1+3) + user (3+1+2) + assistant
        // (3+1+1) = 21.
        assert_eq!(r.total_tokens, 210);
        assert_eq!(r.billed_tokens_per_epoch, 210);
    }

    #[test]
    fn problems_are_reported_with_line_numbers() {
        let mut lines: Vec<String> = (0..9).map(|i| example(&format!("q {i}"), "yes")).collect();
        lines.push(example("q 0", "yes"));
        lines.push("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}".into());
        lines.push("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"bot\", \"content\": \"x\"}]}".into());
        lines.push("not json".into());
        lines.push(example(&"word ".repeat(50), "ok"));
        let r = validate_chat_jsonl(&lines.join("\n"), &words, 40);
        let at = |line: usize| -> Vec<String> {
            r.findings
                .iter()
                .filter(|f| f.line == line)
                .map(|f| f.message.clone())
                .collect()
        };
        assert!(at(10).iter().any(|m| m.contains("duplicate of line 1")));
        assert!(at(11).iter().any(|m| m.contains("no assistant message")));
        let l12 = at(12);
        assert!(
            l12.iter()
                .any(|m| m.contains("system message must come first"))
        );
        assert!(l12.iter().any(|m| m.contains("role `bot`")));
        assert!(at(13).iter().any(|m| m.contains("not valid JSON")));
        assert!(at(14).iter().any(|m| m.contains("truncated")));
        assert_eq!(
            r.billed_tokens_per_epoch,
            r.total_tokens - (r.max_example_tokens - 40)
        );
        assert!(r.errors() >= 4);
    }

    #[test]
    fn too_few_examples_is_an_error() {
        let r = validate_chat_jsonl(&example("a", "b"), &words, 100);
        assert!(
            r.findings
                .iter()
                .any(|f| f.line == 0 && f.message.contains("at least 10"))
        );
    }
}
