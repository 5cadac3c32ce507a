//! Post-processing of model answers: trimming, code fences stripped, JSON found inside
//! mixed text, and results formatted as text, JSON or JSON Lines.

use serde_json::Value;

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    /// One pretty-printed JSON document.
    Json,
    /// One compact JSON document per line.
    Jsonl,
}

/// Trims an answer and removes a Markdown code fence wrapped around all of it.
pub fn strip_code_fences(text: &str) -> String {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t.to_string();
    };
    // Drop the info string (```json) up to the end of the first line.
    let body = rest.split_once('\n').map_or("", |(_, b)| b);
    let body = body.trim_end();
    let body = body.strip_suffix("```").unwrap_or(body);
    body.trim().to_string()
}

/// Finds the JSON value in an answer: the whole text, a fenced block, or the first
/// balanced `{...}` / `[...]` that parses.
pub fn extract_json(text: &str) -> Option<Value> {
    let stripped = strip_code_fences(text);
    if let Ok(v) = serde_json::from_str::<Value>(&stripped) {
        return Some(v);
    }
    // A fenced block somewhere inside the text.
    if let Some(start) = text.find("```") {
        let after = &text[start..];
        if let Some(end) = after[3..].find("```") {
            let block = strip_code_fences(&after[..end + 6]);
            if let Ok(v) = serde_json::from_str::<Value>(&block) {
                return Some(v);
            }
        }
    }
    for (i, c) in text.char_indices() {
        if (c == '{' || c == '[')
            && let Some(end) = balanced_end(&text[i..])
            && let Ok(v) = serde_json::from_str::<Value>(&text[i..i + end])
            && (v.is_object() || v.is_array())
        {
            return Some(v);
        }
    }
    None
}

/// Formats a value: `Text` prints strings bare and other values as pretty JSON.
pub fn format_value(value: &Value, format: OutputFormat) -> String {
    match format {
        OutputFormat::Text => match value {
            Value::String(s) => s.clone(),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        },
        OutputFormat::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        OutputFormat::Jsonl => serde_json::to_string(value).unwrap_or_default(),
    }
}

/// The byte length of the balanced bracket group at the start of `s`, strings respected.
fn balanced_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fences_are_stripped() {
        assert_eq!(strip_code_fences("```json\n{\"a\": 1}\n```"), "{\"a\": 1}");
        assert_eq!(strip_code_fences("  plain  "), "plain");
    }

    #[test]
    fn json_is_found_in_mixed_text() {
        assert_eq!(extract_json("{\"a\":1}"), Some(json!({"a": 1})));
        assert_eq!(
            extract_json("Sure! Here it is:\n```json\n{\"a\": \"}\"}\n```\nBye"),
            Some(json!({"a": "}"}))
        );
        assert_eq!(
            extract_json("The answer is {\"label\": \"positive\", \"x\": [1, {\"y\": 2}]} ok"),
            Some(json!({"label": "positive", "x": [1, {"y": 2}]}))
        );
        assert_eq!(extract_json("no json {here"), None);
    }

    #[test]
    fn formats() {
        let v = json!({"a": 1});
        assert_eq!(format_value(&v, OutputFormat::Jsonl), "{\"a\":1}");
        assert_eq!(format_value(&json!("hi"), OutputFormat::Text), "hi");
    }
}
