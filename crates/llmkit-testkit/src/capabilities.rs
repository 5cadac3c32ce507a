//! A compatible server without some features (`--no-json-schema`, `--no-stream-options`,
//! `--no-tools`): the OpenAI-shaped errors it answers chat requests that use them with,
//! worded as vLLM, llama.cpp and older Azure API versions word them; and, without
//! `json_schema`, a model that follows a JSON Schema quoted in its instructions when asked
//! for `json_object`, as an instruction-tuned model does.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::config::MockConfig;
use crate::errors::ApiError;
use crate::tokens::content_text;

/// The error a chat request gets for using a feature this server lacks, if it uses one.
pub(crate) fn rejection(cfg: &MockConfig, body: &Value) -> Option<ApiError> {
    let format = body
        .pointer("/response_format/type")
        .and_then(Value::as_str);
    if let (Some(status), Some("json_schema")) = (cfg.no_json_schema, format) {
        return Some(if status >= 500 {
            // llama.cpp before it knew `json_schema`: a 500 naming the field.
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "response_format type must be one of \"text\" or \"json_object\", but got: json_schema",
            )
        } else {
            // vLLM's request validation.
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BadRequestError",
                "1 validation error for ChatCompletionRequest\nresponse_format.type\n  Input should be 'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]",
            )
        });
    }
    if cfg.no_stream_options && body.get("stream_options").is_some_and(|v| !v.is_null()) {
        return Some(
            ApiError::invalid_request("Unrecognized request argument supplied: stream_options")
                .with_param("stream_options"),
        );
    }
    let tools = body.get("tools").and_then(Value::as_array);
    if cfg.no_tools && tools.is_some_and(|t| !t.is_empty()) {
        return Some(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
        ));
    }
    None
}

/// A `json_object` request whose system (or developer) messages quote a JSON Schema, turned
/// into the `json_schema` request the mock answers with an instance of it; `None` otherwise.
pub(crate) fn with_quoted_schema(body: &Value) -> Option<Value> {
    let format = body
        .pointer("/response_format/type")
        .and_then(Value::as_str);
    if format != Some("json_object") {
        return None;
    }
    let schema = body
        .get("messages")
        .and_then(Value::as_array)?
        .iter()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        })
        .find_map(|m| quoted_schema(&content_text(m.get("content").unwrap_or(&Value::Null))))?;
    let mut body = body.clone();
    body["response_format"] = json!({
        "type": "json_schema",
        "json_schema": {"name": "quoted", "schema": schema},
    });
    Some(body)
}

/// The first JSON object in `text` that looks like a schema (it has `type` or `properties`).
fn quoted_schema(text: &str) -> Option<Value> {
    text.match_indices('{').find_map(|(i, _)| {
        let mut values = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(v)) if v.get("properties").is_some() || v.get("type").is_some() => Some(v),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(extra: Value) -> Value {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        body
    }

    #[test]
    fn each_missing_feature_is_rejected_only_when_used() {
        let schema = chat(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "s", "schema": {"type": "object"}}}}));
        let none = MockConfig::default();
        assert!(rejection(&none, &schema).is_none());
        let cfg = MockConfig {
            no_json_schema: Some(400),
            no_stream_options: true,
            no_tools: true,
            ..MockConfig::default()
        };
        let e = rejection(&cfg, &schema).unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("response_format"), "{}", e.message);
        let e = rejection(
            &MockConfig {
                no_json_schema: Some(500),
                ..MockConfig::default()
            },
            &schema,
        )
        .unwrap();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.message.contains("response_format"));
        let plain = chat(json!({"response_format": {"type": "json_object"}}));
        assert!(rejection(&cfg, &plain).is_none());
        let streamed = chat(json!({"stream": true, "stream_options": {"include_usage": true}}));
        assert_eq!(
            rejection(&cfg, &streamed).unwrap().param,
            Some("stream_options")
        );
        assert!(rejection(&cfg, &chat(json!({"stream": true}))).is_none());
        let tools = chat(json!({"tools": [{"type": "function", "function": {"name": "f"}}]}));
        assert!(
            rejection(&cfg, &tools)
                .unwrap()
                .message
                .contains("tool choice")
        );
        assert!(rejection(&cfg, &chat(json!({"tools": []}))).is_none());
    }

    #[test]
    fn a_schema_in_the_instructions_is_followed() {
        let body = json!({"model": "m", "response_format": {"type": "json_object"}, "messages": [
            {"role": "system", "content": "Be brief. {not json}\nReply with JSON only, valid against this JSON Schema:\n{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}} thanks"},
            {"role": "user", "content": "hi"}]});
        let rewritten = with_quoted_schema(&body).unwrap();
        assert_eq!(
            rewritten["response_format"]["json_schema"]["schema"]["properties"]["a"]["type"],
            "integer"
        );
        // No schema quoted, or not JSON mode: nothing to follow.
        let mut bare = body.clone();
        bare["messages"][0]["content"] = json!("Be brief.");
        assert!(with_quoted_schema(&bare).is_none());
        let mut text = body.clone();
        text["response_format"] = json!({"type": "text"});
        assert!(with_quoted_schema(&text).is_none());
    }
}
