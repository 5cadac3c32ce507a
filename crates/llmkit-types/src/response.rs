//! The chat completion response, its stream chunk, and an accumulator that folds chunks into a response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::{FunctionCall, ToolCall};
use crate::common::{FinishReason, Role, ServiceTier, Usage, null_as_default};

/// `POST /v1/chat/completions` response body (non-streamed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default = "chat_object")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatCompletionResponse {
    /// The first choice's text, or "" when there is none.
    pub fn text(&self) -> &str {
        self.choices
            .first()
            .and_then(|c| c.message.content.as_deref())
            .unwrap_or("")
    }

    /// The first choice's finish reason.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.choices.first().and_then(|c| c.finish_reason.as_ref())
    }
}

fn chat_object() -> String {
    "chat.completion".to_string()
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_string()
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    #[serde(default)]
    pub logprobs: Option<Value>,
}

/// The assistant message of a choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub role: Role,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Fields such as `reasoning_content` (DeepSeek, vLLM) or `annotations`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One server-sent chunk of a streamed chat completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatCompletionChunk {
    /// The text delta of the first choice, if any.
    pub fn delta_text(&self) -> Option<&str> {
        self.choices
            .first()
            .and_then(|c| c.delta.content.as_deref())
    }
}

/// One choice's delta inside a chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

/// The incremental part of a streamed message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A piece of a tool call; pieces with the same `index` concatenate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    #[serde(default)]
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

/// A piece of a function call's name or arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// Folds stream chunks into the response a non-streamed request would have returned.
#[derive(Debug, Default)]
pub struct ChunkAccumulator {
    response: ChatCompletionResponse,
}

impl ChunkAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatCompletionChunk) {
        let r = &mut self.response;
        if r.id.is_empty() {
            r.id.clone_from(&chunk.id);
        }
        if r.model.is_empty() {
            r.model.clone_from(&chunk.model);
        }
        if r.created == 0 {
            r.created = chunk.created;
        }
        if chunk.system_fingerprint.is_some() {
            r.system_fingerprint.clone_from(&chunk.system_fingerprint);
        }
        if chunk.service_tier.is_some() {
            r.service_tier.clone_from(&chunk.service_tier);
        }
        if chunk.usage.is_some() {
            r.usage.clone_from(&chunk.usage);
        }
        for c in &chunk.choices {
            let idx = c.index as usize;
            while r.choices.len() <= idx {
                let index = u32::try_from(r.choices.len()).unwrap_or(u32::MAX);
                r.choices.push(Choice {
                    index,
                    ..Choice::default()
                });
            }
            let choice = &mut r.choices[idx];
            if let Some(role) = &c.delta.role {
                choice.message.role = role.clone();
            }
            if let Some(text) = &c.delta.content {
                choice
                    .message
                    .content
                    .get_or_insert_with(String::new)
                    .push_str(text);
            }
            if let Some(text) = &c.delta.refusal {
                choice
                    .message
                    .refusal
                    .get_or_insert_with(String::new)
                    .push_str(text);
            }
            for tc in c.delta.tool_calls.iter().flatten() {
                merge_tool_call(choice, tc);
            }
            for (k, v) in &c.delta.extra {
                if let (Some(Value::String(old)), Value::String(add)) =
                    (choice.message.extra.get_mut(k), v)
                {
                    old.push_str(add);
                } else if !v.is_null() {
                    choice.message.extra.insert(k.clone(), v.clone());
                }
            }
            if c.finish_reason.is_some() {
                choice.finish_reason.clone_from(&c.finish_reason);
            }
        }
    }

    /// Text received so far for choice `index`.
    pub fn text(&self, index: usize) -> &str {
        self.response
            .choices
            .get(index)
            .and_then(|c| c.message.content.as_deref())
            .unwrap_or("")
    }

    /// The accumulated response.
    pub fn finish(self) -> ChatCompletionResponse {
        self.response
    }
}

fn merge_tool_call(choice: &mut Choice, tc: &ToolCallDelta) {
    let calls = choice.message.tool_calls.get_or_insert_with(Vec::new);
    let idx = tc.index as usize;
    while calls.len() <= idx {
        calls.push(ToolCall {
            id: String::new(),
            kind: "function".into(),
            function: FunctionCall {
                name: String::new(),
                arguments: String::new(),
            },
        });
    }
    let call = &mut calls[idx];
    if let Some(id) = &tc.id {
        call.id.clone_from(id);
    }
    if let Some(kind) = &tc.kind {
        call.kind.clone_from(kind);
    }
    if let Some(f) = &tc.function {
        if let Some(name) = &f.name {
            call.function.name.push_str(name);
        }
        if let Some(args) = &f.arguments {
            call.function.arguments.push_str(args);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lenient_response_from_compatible_server() {
        // Shapes seen from vLLM / llama.cpp / Groq: empty finish_reason, unknown tier,
        // missing usage, missing logprobs, extra reasoning field.
        let v = json!({
            "id": "x", "created": 1, "model": "m",
            "service_tier": "on_demand",
            "choices": [{"index": 0, "finish_reason": "",
                "message": {"role": "assistant", "content": "hi", "reasoning_content": "hmm"}}]
        });
        let r: ChatCompletionResponse = serde_json::from_value(v).unwrap();
        assert_eq!(r.text(), "hi");
        assert_eq!(r.finish_reason(), Some(&FinishReason::Other(String::new())));
        assert_eq!(r.service_tier, Some(ServiceTier::Other("on_demand".into())));
        assert!(r.usage.is_none());
        assert_eq!(r.choices[0].message.extra["reasoning_content"], "hmm");
    }

    #[test]
    fn minimal_response_decodes() {
        let r: ChatCompletionResponse =
            serde_json::from_value(json!({"choices": [{"message": {"content": "ok"}}]})).unwrap();
        assert_eq!(r.text(), "ok");
        let r: ChatCompletionResponse = serde_json::from_value(json!({"choices": null})).unwrap();
        assert_eq!(r.text(), "");
    }

    #[test]
    fn accumulator_rebuilds_text_and_tool_calls() {
        let chunks = [
            json!({"id": "c", "model": "m", "created": 5, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
            json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "lo"}}]}),
            json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
            json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
        ];
        let mut acc = ChunkAccumulator::new();
        for c in chunks {
            acc.push(&serde_json::from_value(c).unwrap());
        }
        let r = acc.finish();
        assert_eq!(r.text(), "Hello");
        assert_eq!(r.model, "m");
        assert_eq!(r.usage.unwrap().total_tokens, 5);
        let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.function.arguments, "{\"a\":1}");
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
    }
}
