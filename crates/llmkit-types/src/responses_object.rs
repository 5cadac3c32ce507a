//! The Responses API's response object (`object: "response"`): status, output items, usage,
//! error and incomplete details, and the small answers of the other endpoints (deletion,
//! input token count). An unknown status decodes into `ResponseStatus::Other`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::common::{
    CompletionTokensDetails, PromptTokensDetails, ServiceTier, Usage, null_as_default,
};
use crate::responses::{
    ContentItem, FunctionCallItem, ItemContent, MessageItem, ReasoningConfig, ResponseItem,
};

lenient_enum!(
    /// The state of a response.
    ResponseStatus {
        Queued => "queued",
        InProgress => "in_progress",
        Completed => "completed",
        Incomplete => "incomplete",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

// Written by hand because the variants come from `lenient_enum!`, where `#[default]` cannot go.
#[allow(clippy::derivable_impls)]
impl Default for ResponseStatus {
    fn default() -> Self {
        Self::Completed
    }
}

impl ResponseStatus {
    /// Whether the response will not change any more (anything but queued or in progress;
    /// an unknown status counts as final, so a poll loop always ends).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Queued | Self::InProgress)
    }
}

/// A response (`object: "response"`), as created, retrieved, or carried by stream events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default = "response_object")]
    pub object: String,
    /// Unix seconds; the spec allows a fractional number.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub created_at: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: ResponseStatus,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output: Vec<ResponseItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponseUsage>,
    #[serde(default)]
    pub error: Option<ResponseError>,
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn response_object() -> String {
    "response".to_string()
}

impl ResponseObject {
    /// The text of every output message, joined (what `output_text` is in OpenAI's SDKs).
    pub fn output_text(&self) -> String {
        self.output
            .iter()
            .filter_map(|item| match item {
                ResponseItem::Message(m) => Some(m.text()),
                _ => None,
            })
            .collect()
    }

    /// The reasoning summaries of the output, joined with blank lines.
    pub fn reasoning_summary(&self) -> String {
        self.output
            .iter()
            .filter_map(|item| match item {
                ResponseItem::Reasoning(r) if !r.summary.is_empty() => Some(r.summary_text()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// The function calls of the output, in order.
    pub fn function_calls(&self) -> Vec<&FunctionCallItem> {
        self.output
            .iter()
            .filter_map(|item| match item {
                ResponseItem::FunctionCall(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The refusal text of the output messages, if the model refused.
    pub fn refusal(&self) -> Option<String> {
        let text: String = self
            .output
            .iter()
            .filter_map(|item| match item {
                ResponseItem::Message(MessageItem {
                    content: ItemContent::Parts(parts),
                    ..
                }) => Some(parts),
                _ => None,
            })
            .flatten()
            .filter_map(|p| match p {
                ContentItem::Refusal { refusal } => Some(refusal.as_str()),
                _ => None,
            })
            .collect();
        (!text.is_empty()).then_some(text)
    }
}

/// `error` of a failed response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    #[serde(default, deserialize_with = "null_as_default")]
    pub code: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
}

/// Why a response is incomplete (`max_output_tokens`, `content_filter`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Token usage of a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseUsage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
}

impl ResponseUsage {
    pub fn cached_tokens(&self) -> u64 {
        self.input_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
    }

    pub fn reasoning_tokens(&self) -> u64 {
        self.output_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0)
    }

    /// The same counts in chat's shape (input → prompt, output → completion), so that the
    /// ledger, budgets and `usage` read one type.
    pub fn to_chat_usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            total_tokens: self
                .total_tokens
                .max(self.input_tokens + self.output_tokens),
            prompt_tokens_details: self.input_tokens_details.as_ref().map(|d| {
                PromptTokensDetails {
                    cached_tokens: d.cached_tokens,
                    audio_tokens: None,
                }
            }),
            completion_tokens_details: self.output_tokens_details.as_ref().map(|d| {
                CompletionTokensDetails {
                    reasoning_tokens: d.reasoning_tokens,
                    ..CompletionTokensDetails::default()
                }
            }),
        }
    }
}

/// Breakdown of input tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Breakdown of output tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/responses/input_tokens` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokenCount {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_tokens: u64,
}

/// `DELETE /v1/responses/{id}` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeletedResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub deleted: bool,
}

/// An integer that a server may send as a float or null.
fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn responses_decode_leniently() {
        let raw = json!({
            "id": "resp_1", "object": "response", "created_at": 1.7e9, "status": "thinking_hard",
            "model": "gpt-5", "error": null, "incomplete_details": null,
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "plan"}],
                 "encrypted_content": "gAAA"},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Hello", "annotations": []},
                             {"type": "output_text", "text": "!", "annotations": null, "logprobs": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
                {"type": "mystery_item", "payload": [1, 2]}
            ],
            "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                      "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 3}}
        });
        let r: ResponseObject = serde_json::from_value(raw).unwrap();
        assert_eq!(r.status, ResponseStatus::Other("thinking_hard".into()));
        assert!(r.status.is_terminal());
        assert_eq!(r.created_at, 1_700_000_000);
        assert_eq!(r.output_text(), "Hello!");
        assert_eq!(r.reasoning_summary(), "plan");
        assert_eq!(r.function_calls()[0].name, "f");
        assert!(matches!(r.output[3], ResponseItem::Other(_)));
        let u = r.usage.unwrap();
        assert_eq!((u.cached_tokens(), u.reasoning_tokens()), (4, 3));
        let chat = u.to_chat_usage();
        assert_eq!(
            (
                chat.prompt_tokens,
                chat.completion_tokens,
                chat.cached_tokens()
            ),
            (10, 5, 4)
        );
    }

    #[test]
    fn statuses_and_refusals() {
        for s in ["queued", "in_progress"] {
            assert!(!ResponseStatus::from(s).is_terminal());
        }
        for s in ["completed", "failed", "cancelled", "incomplete"] {
            assert!(ResponseStatus::from(s).is_terminal());
        }
        let r: ResponseObject = serde_json::from_value(json!({
            "output": [{"type": "message", "role": "assistant",
                        "content": [{"type": "refusal", "refusal": "no"}]}]
        }))
        .unwrap();
        assert_eq!(r.refusal().as_deref(), Some("no"));
        assert_eq!(r.output_text(), "");
    }
}
