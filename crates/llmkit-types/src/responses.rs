//! The Responses API wire types: the `POST /v1/responses` request and the input and output
//! items (messages, function calls and their outputs, reasoning).
//!
//! Decoding is lenient as everywhere in this crate: an item, content part, tool or text format
//! this version does not know is kept whole as raw JSON (`Other`), and unknown fields are kept
//! in `extra`. The response object is in `responses_object.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::ImageDetail;
use crate::common::{Role, null_as_default};

/// `include` value that returns reasoning items' encrypted content, so that reasoning carries
/// over between turns without anything stored at the provider (`store: false`).
pub const INCLUDE_REASONING_ENCRYPTED: &str = "reasoning.encrypted_content";

/// `POST /v1/responses` request body (the spec's `CreateResponse`).
///
/// Unset fields are not serialised; fields this type does not know (and `-o KEY=VALUE`
/// options) are kept in `extra` and serialised unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateResponseRequest {
    pub model: String,
    pub input: ResponseInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ResponseTool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ResponseToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// Fields llmkit does not model, passed through untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CreateResponseRequest {
    /// A request with the two required fields; set the rest with the chained setters.
    pub fn new(model: impl Into<String>, input: impl Into<ResponseInput>) -> Self {
        Self {
            model: model.into(),
            input: input.into(),
            ..Self::default()
        }
    }

    pub fn instructions(mut self, v: impl Into<String>) -> Self {
        self.instructions = Some(v.into());
        self
    }

    pub fn previous_response_id(mut self, v: impl Into<String>) -> Self {
        self.previous_response_id = Some(v.into());
        self
    }

    pub fn store(mut self, v: bool) -> Self {
        self.store = Some(v);
        self
    }

    pub fn background(mut self, v: bool) -> Self {
        self.background = Some(v);
        self
    }

    pub fn max_output_tokens(mut self, v: u32) -> Self {
        self.max_output_tokens = Some(v);
        self
    }

    pub fn temperature(mut self, v: f64) -> Self {
        self.temperature = Some(v);
        self
    }

    pub fn top_p(mut self, v: f64) -> Self {
        self.top_p = Some(v);
        self
    }

    pub fn reasoning(mut self, effort: Option<&str>, summary: Option<&str>) -> Self {
        self.reasoning = Some(ReasoningConfig {
            effort: effort.map(str::to_string),
            summary: summary.map(str::to_string),
            ..ReasoningConfig::default()
        });
        self
    }

    /// Adds one `include` value (once).
    pub fn include(mut self, v: impl Into<String>) -> Self {
        let v = v.into();
        let list = self.include.get_or_insert_with(Vec::new);
        if !list.contains(&v) {
            list.push(v);
        }
        self
    }

    /// `store: false` with the reasoning returned encrypted, so that a conversation carries
    /// its reasoning forward without anything kept at the provider.
    pub fn stateless(self) -> Self {
        self.store(false).include(INCLUDE_REASONING_ENCRYPTED)
    }

    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    pub fn is_background(&self) -> bool {
        self.background == Some(true)
    }
}

/// `input`: a plain string (one user message) or a list of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponseInput {
    Text(String),
    Items(Vec<ResponseItem>),
}

impl Default for ResponseInput {
    fn default() -> Self {
        Self::Items(Vec::new())
    }
}

impl From<&str> for ResponseInput {
    fn from(s: &str) -> Self {
        Self::Text(s.to_string())
    }
}

impl From<String> for ResponseInput {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<Vec<ResponseItem>> for ResponseInput {
    fn from(items: Vec<ResponseItem>) -> Self {
        Self::Items(items)
    }
}

impl ResponseInput {
    /// The input as items (a string becomes one user message).
    pub fn to_items(&self) -> Vec<ResponseItem> {
        match self {
            Self::Text(s) => vec![ResponseItem::message(Role::User, s.clone())],
            Self::Items(items) => items.clone(),
        }
    }
}

/// One input or output item. Input and output share their item types (a reasoning item or a
/// function call the model produced goes back into the next request's input as it is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResponseItem {
    #[serde(rename = "message")]
    Message(MessageItem),
    #[serde(rename = "function_call")]
    FunctionCall(FunctionCallItem),
    #[serde(rename = "function_call_output")]
    FunctionCallOutput(FunctionCallOutputItem),
    #[serde(rename = "reasoning")]
    Reasoning(ReasoningItem),
    /// An item type llmkit does not model (web search calls, MCP items...), kept verbatim.
    #[serde(untagged)]
    Other(Value),
}

impl ResponseItem {
    /// A message with plain string content.
    pub fn message(role: Role, text: impl Into<String>) -> Self {
        Self::Message(MessageItem {
            role,
            content: ItemContent::Text(text.into()),
            ..MessageItem::default()
        })
    }

    /// A message made of content parts.
    pub fn message_parts(role: Role, parts: Vec<ContentItem>) -> Self {
        Self::Message(MessageItem {
            role,
            content: ItemContent::Parts(parts),
            ..MessageItem::default()
        })
    }

    /// The output of the function call `call_id`.
    pub fn function_output(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Self::FunctionCallOutput(FunctionCallOutputItem {
            id: None,
            call_id: call_id.into(),
            output: ItemContent::Text(output.into()),
            status: None,
            extra: Map::new(),
        })
    }

    /// The `type` of this item as sent on the wire.
    pub fn kind(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::FunctionCall(_) => "function_call",
            Self::FunctionCallOutput(_) => "function_call_output",
            Self::Reasoning(_) => "reasoning",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

/// A message item: `role` with string content or typed parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub role: Role,
    pub content: ItemContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageItem {
    /// The text of the message: the string, or its text parts (input or output) joined.
    pub fn text(&self) -> String {
        self.content.text()
    }
}

/// Message content or a function's output: a string or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ItemContent {
    Text(String),
    Parts(Vec<ContentItem>),
}

impl Default for ItemContent {
    fn default() -> Self {
        Self::Text(String::new())
    }
}

impl ItemContent {
    /// The text parts joined (images, files and unknown parts are skipped).
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => {
                        Some(text.as_str())
                    }
                    _ => None,
                })
                .collect(),
        }
    }
}

/// One content part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    InputText {
        text: String,
    },
    /// An image by URL (or `data:` URI) or by uploaded file id. The spec requires `detail`.
    InputImage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        #[serde(default = "auto_detail")]
        detail: ImageDetail,
    },
    /// A file (a PDF) inline as a `data:` URI, by URL or by uploaded file id.
    InputFile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_url: Option<String>,
    },
    OutputText {
        #[serde(default)]
        text: String,
        #[serde(default, deserialize_with = "null_as_default")]
        annotations: Vec<Value>,
        #[serde(default, deserialize_with = "null_as_default")]
        logprobs: Vec<Value>,
    },
    Refusal {
        #[serde(default)]
        refusal: String,
    },
    #[serde(untagged)]
    Other(Value),
}

fn auto_detail() -> ImageDetail {
    ImageDetail::Auto
}

/// A function call the model made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub call_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The arguments as a JSON-encoded string.
    #[serde(default, deserialize_with = "null_as_default")]
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The result of a function call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub call_id: String,
    pub output: ItemContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A reasoning item: its summary and, with `include: ["reasoning.encrypted_content"]`, the
/// reasoning itself encrypted for the next turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub summary: Vec<SummaryPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ReasoningItem {
    /// The summary parts' text joined with blank lines.
    pub fn summary_text(&self) -> String {
        self.summary
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// One part of a reasoning summary (`summary_text`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryPart {
    #[serde(rename = "type", default = "summary_text_type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
}

impl SummaryPart {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            kind: summary_text_type(),
            text: text.into(),
        }
    }
}

fn summary_text_type() -> String {
    "summary_text".to_string()
}

/// A tool the model may call. Only function tools are modelled; built-in tools (web search,
/// file search, MCP...) pass through as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResponseTool {
    #[serde(rename = "function")]
    Function(FunctionTool),
    #[serde(untagged)]
    Other(Value),
}

/// A function tool. Unlike chat's, the definition is flat, and the spec requires
/// `parameters` and `strict` to be present (null allowed), so they are always serialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `tool_choice`: `"none" | "auto" | "required"`, a named function, or another form kept raw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponseToolChoice {
    Mode(String),
    Function(NamedFunctionChoice),
    Other(Value),
}

/// Forces a call of the named function (`{"type": "function", "name": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedFunctionChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

impl ResponseToolChoice {
    pub fn function(name: impl Into<String>) -> Self {
        Self::Function(NamedFunctionChoice {
            kind: "function".into(),
            name: name.into(),
        })
    }
}

/// `reasoning`: effort and summary for reasoning models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text`: the output format and verbosity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text.format`: free text, any JSON object, or JSON valid against a schema (flat, unlike
/// chat's `response_format`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
    #[serde(untagged)]
    Other(Value),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_minimal_request_serialises_only_what_is_set() {
        let req = CreateResponseRequest::new("gpt-5", "hi");
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"model": "gpt-5", "input": "hi"})
        );
        let req = CreateResponseRequest::new("gpt-5", "hi")
            .stateless()
            .include(INCLUDE_REASONING_ENCRYPTED);
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["store"], false);
        assert_eq!(v["include"], json!(["reasoning.encrypted_content"]));
    }

    #[test]
    fn requests_round_trip_with_unknown_fields_and_items() {
        let raw = json!({
            "model": "gpt-5",
            "input": [
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"},
                    {"type": "input_audio_future", "x": 1}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
                 "encrypted_content": "enc"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"}
            ],
            "tools": [
                {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": true},
                {"type": "web_search"}
            ],
            "tool_choice": {"type": "function", "name": "f"},
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": true},
                     "verbosity": "low"},
            "truncation": "auto",
            "prompt_cache_key": "k"
        });
        let req: CreateResponseRequest = serde_json::from_value(raw.clone()).unwrap();
        let ResponseInput::Items(items) = &req.input else {
            panic!("items")
        };
        assert_eq!(items.len(), 5);
        assert!(matches!(items[4], ResponseItem::Other(_)));
        assert_eq!(items[4].kind(), "web_search_call");
        assert!(matches!(
            req.tools.as_ref().unwrap()[1],
            ResponseTool::Other(_)
        ));
        assert_eq!(req.extra.get("truncation"), Some(&json!("auto")));
        assert_eq!(serde_json::to_value(&req).unwrap(), raw);
    }
}
