//! OpenAI-shaped error replies (`{"error": {message, type, param, code}}`) with their HTTP status.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// An error the mock answers with, in OpenAI's wire shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
    /// Extra response headers (e.g. `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON body, exactly as OpenAI nests it.
    pub(crate) fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub(crate) fn invalid_json_body() -> Self {
        Self::invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but \
             what was sent was not valid JSON.)",
        )
    }

    pub(crate) fn missing_param(param: &'static str) -> Self {
        Self::invalid_request(format!("you must provide a {param} parameter")).with_param(param)
    }

    pub(crate) fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .with_code("model_not_found")
    }

    pub(crate) fn context_length(limit: u64, used: u64) -> Self {
        Self::invalid_request(format!(
            "This model's maximum context length is {limit} tokens. However, your messages \
             resulted in {used} tokens. Please reduce the length of the messages."
        ))
        .with_param("messages")
        .with_code("context_length_exceeded")
    }

    pub(crate) fn invalid_api_key(given: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            format!(
                "Incorrect API key provided: {}. You can find your API key in your account \
                 settings.",
                redact_key(given)
            ),
        )
        .with_code("invalid_api_key")
    }

    pub(crate) fn missing_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an Authorization \
             header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
        .with_code("invalid_api_key")
    }

    pub(crate) fn unknown_url(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Invalid URL ({method} {path})"),
        )
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        )
    }

    pub(crate) fn overloaded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The engine is currently overloaded, please try again later.",
        )
    }
}

/// Shows a key the way OpenAI does: a short prefix, dots, and the last four characters.
pub(crate) fn redact_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_openai_shape() {
        let b = ApiError::model_not_found("x").body();
        assert_eq!(
            b,
            json!({"error": {
                "message": "The model `x` does not exist or you do not have access to it.",
                "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
        );
    }

    #[test]
    fn keys_are_redacted() {
        assert_eq!(redact_key("sk-abcdefghijklmnop"), "sk-...mnop");
        assert_eq!(redact_key("short"), "*****");
        assert_eq!(redact_key(""), "");
    }
}
