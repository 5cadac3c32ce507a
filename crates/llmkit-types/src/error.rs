//! The OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::null_as_default;

/// The envelope of an error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ApiErrorBody,
}

/// An API error. `code` and `param` are kept as raw JSON because compatible servers send
/// numbers where OpenAI sends strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<Value>,
    #[serde(default)]
    pub code: Option<Value>,
}

impl ApiErrorBody {
    /// The error code as a string (`"insufficient_quota"`, `"429"`...).
    pub fn code_str(&self) -> Option<String> {
        match &self.code {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl ErrorResponse {
    /// Parses an error body leniently: OpenAI's envelope, a bare `{message}` object, or a
    /// plain-text body are all turned into an [`ApiErrorBody`].
    pub fn parse_lenient(body: &[u8]) -> Option<ApiErrorBody> {
        if let Ok(e) = serde_json::from_slice::<ErrorResponse>(body) {
            return Some(e.error);
        }
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            if let Some(Value::String(msg)) = map.get("error").or_else(|| map.get("message")) {
                return Some(ApiErrorBody {
                    message: msg.clone(),
                    ..ApiErrorBody::default()
                });
            }
            if let Some(Value::String(msg)) = map.get("detail") {
                return Some(ApiErrorBody {
                    message: msg.clone(),
                    ..ApiErrorBody::default()
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openai_and_compatible_errors() {
        let e = ErrorResponse::parse_lenient(
            br#"{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        )
        .unwrap();
        assert_eq!(e.code_str().as_deref(), Some("insufficient_quota"));
        let e = ErrorResponse::parse_lenient(br#"{"error":{"message":"x","code":400}}"#).unwrap();
        assert_eq!(e.code_str().as_deref(), Some("400"));
        let e = ErrorResponse::parse_lenient(br#"{"error":"model not loaded"}"#).unwrap();
        assert_eq!(e.message, "model not loaded");
        assert!(ErrorResponse::parse_lenient(b"<html>").is_none());
    }
}
