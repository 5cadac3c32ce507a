//! Conversion between Chat Completions and the Responses API: a chat request becomes a
//! `CreateResponseRequest`, a response becomes a chat completion, and stream events become
//! chat chunks, so that code built on chat (the request pipeline, sessions, the tasks)
//! drives either API unchanged.
//!
//! A reasoning summary travels in the chat message's `reasoning_content` field, the name
//! compatible servers (vLLM, DeepSeek) already use for a model's reasoning.

use serde_json::{Map, Value, json};

use crate::chat::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, MessageContent, ResponseFormat,
    ToolCall, ToolChoice,
};
use crate::common::{FinishReason, Role};
use crate::response::{
    ChatCompletionChunk, ChatCompletionResponse, Choice, ChunkChoice, Delta, FunctionCallDelta,
    ResponseMessage, ToolCallDelta,
};
use crate::responses::{
    ContentItem, CreateResponseRequest, FunctionCallItem, FunctionTool, ReasoningConfig,
    ReasoningItem, ResponseInput, ResponseItem, ResponseTool, ResponseToolChoice, TextConfig,
    TextFormat,
};
use crate::responses_object::{ResponseObject, ResponseStatus};
use crate::responses_stream::ResponseStreamEvent;

/// The chat message field that carries reasoning text.
pub const REASONING_FIELD: &str = "reasoning_content";
/// The field of an assistant chat message (and of a streamed delta) that carries the
/// Responses API's encrypted reasoning items, so that a conversation sent whole each turn
/// with `store: false` hands the model its earlier reasoning back. llmkit's own: it is
/// turned into reasoning input items on the Responses API and removed before a request
/// goes over Chat Completions.
pub const REASONING_ITEMS_FIELD: &str = "llmkit_reasoning_items";
/// The smallest `max_output_tokens` the Responses API accepts.
pub const MIN_OUTPUT_TOKENS: u32 = 16;

/// Chat options the Responses API has no equivalent for, by name, when `req` sets them (the
/// caller decides whether that is an error or a notice).
pub fn unsupported_chat_options(req: &ChatCompletionRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    if req.n.is_some_and(|n| n > 1) {
        out.push("n");
    }
    if !req.stop_list().is_empty() {
        out.push("stop");
    }
    let set = [
        ("seed", req.seed.is_some()),
        ("presence_penalty", req.presence_penalty.is_some()),
        ("frequency_penalty", req.frequency_penalty.is_some()),
        ("logit_bias", req.logit_bias.is_some()),
    ];
    out.extend(set.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
    // Audio input is a Chat Completions part (the audio models are served there).
    let audio = req.messages.iter().any(|m| {
        matches!(&m.content, Some(MessageContent::Parts(parts))
            if parts.iter().any(|p| matches!(p, ContentPart::InputAudio { .. })))
    });
    if audio {
        out.push("input_audio");
    }
    out
}

/// The Responses request for a chat request. Messages keep their roles and order; tool calls
/// and tool results become `function_call` and `function_call_output` items; the options
/// Responses shares are renamed (`max_completion_tokens` → `max_output_tokens`, raised to the
/// API's minimum of 16; `reasoning_effort` → `reasoning.effort`; `response_format` →
/// `text.format`); an extra `verbosity` moves to `text.verbosity`; other extra fields pass
/// through. Options without an equivalent ([`unsupported_chat_options`]) are left out.
pub fn chat_to_responses(req: &ChatCompletionRequest) -> CreateResponseRequest {
    let mut extra = req.extra.clone();
    let verbosity = match extra.remove("verbosity") {
        Some(Value::String(v)) => Some(v),
        Some(other) => {
            extra.insert("verbosity".into(), other);
            None
        }
        None => None,
    };
    if let Some(user) = &req.user {
        extra.insert("user".into(), Value::String(user.clone()));
    }
    if let Some(n) = req.top_logprobs {
        extra.insert("top_logprobs".into(), json!(n));
    }
    let format = req.response_format.as_ref().map(text_format);
    let text = (format.is_some() || verbosity.is_some()).then(|| TextConfig {
        format,
        verbosity,
        extra: Map::new(),
    });
    CreateResponseRequest {
        model: req.model.clone(),
        input: ResponseInput::Items(req.messages.iter().flat_map(message_items).collect()),
        store: req.store,
        stream: req.stream,
        tools: req.tools.as_ref().map(|tools| {
            tools
                .iter()
                .map(|t| {
                    ResponseTool::Function(FunctionTool {
                        name: t.function.name.clone(),
                        description: t.function.description.clone(),
                        parameters: t.function.parameters.clone(),
                        strict: t.function.strict,
                    })
                })
                .collect()
        }),
        tool_choice: req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Mode(m) => ResponseToolChoice::Mode(m.clone()),
            ToolChoice::Named(n) => ResponseToolChoice::function(n.function.name.clone()),
        }),
        parallel_tool_calls: req.parallel_tool_calls,
        max_output_tokens: req.output_budget().map(|n| n.max(MIN_OUTPUT_TOKENS)),
        temperature: req.temperature,
        top_p: req.top_p,
        reasoning: req.reasoning_effort.as_ref().map(|e| ReasoningConfig {
            effort: Some(e.clone()),
            ..ReasoningConfig::default()
        }),
        text,
        service_tier: req.service_tier.clone(),
        metadata: req.metadata.clone(),
        extra,
        ..CreateResponseRequest::default()
    }
}

fn text_format(f: &ResponseFormat) -> TextFormat {
    match f {
        ResponseFormat::Text => TextFormat::Text,
        ResponseFormat::JsonObject => TextFormat::JsonObject,
        ResponseFormat::JsonSchema { json_schema } => TextFormat::JsonSchema {
            name: json_schema.name.clone(),
            schema: json_schema
                .schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"})),
            description: json_schema.description.clone(),
            strict: json_schema.strict,
        },
    }
}

/// The items of one chat message.
fn message_items(m: &ChatMessage) -> Vec<ResponseItem> {
    let mut out = Vec::new();
    match m.role {
        Role::Tool => {
            out.push(ResponseItem::function_output(
                m.tool_call_id.clone().unwrap_or_default(),
                m.text_content(),
            ));
            return out;
        }
        Role::Assistant => {
            // The encrypted reasoning that led to this turn goes back before it.
            if let Some(Value::Array(items)) = m.extra.get(REASONING_ITEMS_FIELD) {
                out.extend(
                    items
                        .iter()
                        .filter_map(|i| serde_json::from_value::<ReasoningItem>(i.clone()).ok())
                        .filter(|r| r.encrypted_content.is_some())
                        .map(ResponseItem::Reasoning),
                );
            }
            let text = m.text_content();
            if !text.is_empty() {
                out.push(ResponseItem::message(Role::Assistant, text));
            }
            for tc in m.tool_calls.iter().flatten() {
                out.push(ResponseItem::FunctionCall(FunctionCallItem {
                    call_id: tc.id.clone(),
                    name: tc.function.name.clone(),
                    arguments: tc.function.arguments.clone(),
                    ..FunctionCallItem::default()
                }));
            }
            return out;
        }
        _ => {}
    }
    // `function` (the old name of `tool`) and roles a caller invented are sent as user turns:
    // the Responses API knows only user, assistant, system and developer.
    let role = match &m.role {
        Role::System | Role::Developer | Role::User => m.role.clone(),
        _ => Role::User,
    };
    out.push(match &m.content {
        None => ResponseItem::message(role, ""),
        Some(MessageContent::Text(t)) => ResponseItem::message(role, t.clone()),
        Some(MessageContent::Parts(parts)) => {
            ResponseItem::message_parts(role, parts.iter().map(content_item).collect())
        }
    });
    out
}

fn content_item(p: &ContentPart) -> ContentItem {
    match p {
        ContentPart::Text { text } => ContentItem::InputText { text: text.clone() },
        ContentPart::ImageUrl { image_url } => ContentItem::InputImage {
            image_url: Some(image_url.url.clone()),
            file_id: None,
            detail: image_url
                .detail
                .clone()
                .unwrap_or(crate::chat::ImageDetail::Auto),
        },
        ContentPart::Refusal { refusal } => ContentItem::InputText {
            text: refusal.clone(),
        },
        ContentPart::File { file } => ContentItem::InputFile {
            file_id: file.file_id.clone(),
            filename: file.filename.clone(),
            file_data: file.file_data.clone(),
            file_url: None,
        },
        // Audio and unknown parts pass as they are; a server that cannot take them says so.
        other => ContentItem::Other(serde_json::to_value(other).unwrap_or(Value::Null)),
    }
}

/// Why a response ended, in chat's terms.
fn finish_reason(r: &ResponseObject) -> FinishReason {
    let reason = r
        .incomplete_details
        .as_ref()
        .and_then(|d| d.reason.as_deref());
    match (&r.status, reason) {
        (ResponseStatus::Incomplete, Some("content_filter")) => FinishReason::ContentFilter,
        (ResponseStatus::Incomplete, _) => FinishReason::Length,
        _ if !r.function_calls().is_empty() => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// The chat completion a response amounts to: its output text, function calls as tool calls
/// (their `call_id` as the id), the reasoning summary in `reasoning_content`, and usage.
pub fn response_to_chat(r: &ResponseObject) -> ChatCompletionResponse {
    let text = r.output_text();
    let calls: Vec<ToolCall> = r
        .function_calls()
        .into_iter()
        .map(|c| ToolCall {
            id: c.call_id.clone(),
            kind: "function".into(),
            function: FunctionCall {
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            },
        })
        .collect();
    let mut extra = Map::new();
    let summary = r.reasoning_summary();
    if !summary.is_empty() {
        extra.insert(REASONING_FIELD.into(), Value::String(summary));
    }
    let encrypted: Vec<Value> = r.output.iter().filter_map(encrypted_reasoning).collect();
    if !encrypted.is_empty() {
        extra.insert(REASONING_ITEMS_FIELD.into(), Value::Array(encrypted));
    }
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    ChatCompletionResponse {
        id: r.id.clone(),
        object: "chat.completion".into(),
        created: r.created_at,
        model: r.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Role::Assistant,
                content,
                refusal: r.refusal(),
                tool_calls: (!calls.is_empty()).then_some(calls),
                extra,
            },
            finish_reason: Some(finish_reason(r)),
            logprobs: None,
        }],
        usage: r.usage.as_ref().map(|u| u.to_chat_usage()),
        system_fingerprint: None,
        service_tier: r.service_tier.clone(),
        extra: Map::new(),
    }
}

/// A reasoning item that carries encrypted content, as the JSON to send back next turn
/// (id and encrypted content; the summary is not needed to continue).
fn encrypted_reasoning(item: &ResponseItem) -> Option<Value> {
    match item {
        ResponseItem::Reasoning(r) if r.encrypted_content.is_some() => {
            let back = ReasoningItem {
                id: r.id.clone(),
                summary: Vec::new(),
                encrypted_content: r.encrypted_content.clone(),
                status: None,
                extra: Map::new(),
            };
            serde_json::to_value(back).ok()
        }
        _ => None,
    }
}

/// Turns stream events into the chat chunks a chat stream of the same answer would carry.
/// Stateful: it numbers function calls as chat's tool-call indexes.
#[derive(Debug, Default)]
pub struct ChunkTranslator {
    id: String,
    model: String,
    created: u64,
    /// `output_index` of each function call, in order: the position is its tool-call index.
    calls: Vec<usize>,
}

impl ChunkTranslator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The chunks for one event (none for events that carry nothing chat can show).
    pub fn push(&mut self, event: &ResponseStreamEvent) -> Vec<ChatCompletionChunk> {
        use ResponseStreamEvent as E;
        match event {
            E::Created { response, .. } => {
                self.id.clone_from(&response.id);
                self.model.clone_from(&response.model);
                self.created = response.created_at;
                vec![self.chunk(Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                })]
            }
            E::OutputTextDelta { delta, .. } => vec![self.chunk(Delta {
                content: Some(delta.clone()),
                ..Delta::default()
            })],
            E::RefusalDelta { delta, .. } => vec![self.chunk(Delta {
                refusal: Some(delta.clone()),
                ..Delta::default()
            })],
            E::ReasoningSummaryTextDelta { delta, .. } => {
                let mut d = Delta::default();
                d.extra
                    .insert(REASONING_FIELD.into(), Value::String(delta.clone()));
                vec![self.chunk(d)]
            }
            E::OutputItemAdded {
                output_index,
                item: ResponseItem::FunctionCall(c),
                ..
            } => {
                self.calls.push(*output_index);
                let index = self.call_index(*output_index);
                vec![self.tool_delta(
                    index,
                    Some(c.call_id.clone()),
                    Some(c.name.clone()),
                    c.arguments.clone(),
                )]
            }
            E::FunctionCallArgumentsDelta {
                output_index,
                delta,
                ..
            } => {
                let index = self.call_index(*output_index);
                vec![self.tool_delta(index, None, None, delta.clone())]
            }
            E::OutputItemDone { item, .. } => match encrypted_reasoning(item) {
                Some(r) => {
                    let mut d = Delta::default();
                    d.extra
                        .insert(REASONING_ITEMS_FIELD.into(), Value::Array(vec![r]));
                    vec![self.chunk(d)]
                }
                None => Vec::new(),
            },
            E::Completed { response, .. } | E::Incomplete { response, .. } => {
                let mut last = self.chunk(Delta::default());
                last.choices[0].finish_reason = Some(finish_reason(response));
                let mut out = vec![last];
                if let Some(u) = &response.usage {
                    let mut usage = self.chunk(Delta::default());
                    usage.choices.clear();
                    usage.usage = Some(u.to_chat_usage());
                    out.push(usage);
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn call_index(&self, output_index: usize) -> u32 {
        let i = self
            .calls
            .iter()
            .position(|o| *o == output_index)
            .unwrap_or(0);
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    fn tool_delta(
        &self,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    ) -> ChatCompletionChunk {
        self.chunk(Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index,
                kind: id.as_ref().map(|_| "function".to_string()),
                id,
                function: Some(FunctionCallDelta {
                    name,
                    arguments: Some(arguments),
                }),
            }]),
            ..Delta::default()
        })
    }

    fn chunk(&self, delta: Delta) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: None,
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
            service_tier: None,
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::chat::{FunctionDef, ImageUrl, Tool};
    use crate::response::ChunkAccumulator;

    #[test]
    fn a_chat_request_becomes_items_and_renamed_options() {
        let mut req = ChatCompletionRequest::new(
            "gpt-5",
            vec![
                ChatMessage::system("be brief"),
                ChatMessage::user_parts(vec![
                    ContentPart::Text {
                        text: "look".into(),
                    },
                    ContentPart::ImageUrl {
                        image_url: ImageUrl {
                            url: "https://example.com/a.png".into(),
                            detail: None,
                        },
                    },
                ]),
                ChatMessage::assistant_tool_calls(vec![ToolCall {
                    id: "call_1".into(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: "f".into(),
                        arguments: "{}".into(),
                    },
                }]),
                ChatMessage::tool_result("call_1", "42"),
            ],
        )
        .max_tokens(5)
        .stop(vec!["x".into()]);
        req.reasoning_effort = Some("low".into());
        req.extra.insert("verbosity".into(), json!("high"));
        req.tools = Some(vec![Tool::function(FunctionDef {
            name: "f".into(),
            description: None,
            parameters: Some(json!({"type": "object"})),
            strict: None,
        })]);
        let r = chat_to_responses(&req);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["max_output_tokens"], 16);
        assert_eq!(v["reasoning"], json!({"effort": "low"}));
        assert_eq!(v["text"], json!({"verbosity": "high"}));
        assert_eq!(
            v["tools"][0],
            json!({"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": null})
        );
        let input = v["input"].as_array().unwrap();
        assert_eq!(
            input[0],
            json!({"type": "message", "role": "system", "content": "be brief"})
        );
        assert_eq!(input[1]["content"][1]["detail"], "auto");
        assert_eq!(input[2]["type"], "function_call");
        assert_eq!(
            input[3],
            json!({"type": "function_call_output", "call_id": "call_1", "output": "42"})
        );
        assert_eq!(unsupported_chat_options(&req), ["stop"]);
        // Audio goes over chat, where the audio models are.
        let audio = ChatCompletionRequest::new(
            "gpt-4o-audio-preview",
            vec![ChatMessage::user_parts(vec![ContentPart::InputAudio {
                input_audio: crate::chat::InputAudio {
                    data: "UklGRg==".into(),
                    format: "wav".into(),
                },
            }])],
        );
        assert_eq!(unsupported_chat_options(&audio), ["input_audio"]);
    }

    fn sample() -> ResponseObject {
        serde_json::from_value(json!({
            "id": "resp_1", "status": "completed", "model": "gpt-5", "created_at": 5,
            "output": [
                {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "hmm"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi", "annotations": []}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
            ],
            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
        }))
        .unwrap()
    }

    #[test]
    fn a_response_becomes_a_chat_completion() {
        let c = response_to_chat(&sample());
        assert_eq!(c.text(), "hi");
        assert_eq!(c.finish_reason(), Some(&FinishReason::ToolCalls));
        let m = &c.choices[0].message;
        assert_eq!(m.extra[REASONING_FIELD], "hmm");
        assert_eq!(m.tool_calls.as_ref().unwrap()[0].id, "c1");
        assert_eq!(c.usage.unwrap().total_tokens, 5);
        let mut r = sample();
        r.output.retain(|i| matches!(i, ResponseItem::Message(_)));
        r.status = ResponseStatus::Incomplete;
        assert_eq!(
            response_to_chat(&r).finish_reason(),
            Some(&FinishReason::Length)
        );
    }

    #[test]
    fn events_become_chunks_that_accumulate_to_the_same_answer() {
        let events: Vec<ResponseStreamEvent> = [
            json!({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "model": "gpt-5"}}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "hm"}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "m"}),
            json!({"type": "response.output_text.delta", "output_index": 1, "delta": "h"}),
            json!({"type": "response.output_text.delta", "output_index": 1, "delta": "i"}),
            json!({"type": "response.output_item.added", "output_index": 2,
                   "item": {"type": "function_call", "call_id": "c1", "name": "f", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{}"}),
            json!({"type": "response.completed", "response": sample()}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        let mut t = ChunkTranslator::new();
        let mut acc = ChunkAccumulator::new();
        for e in &events {
            for c in t.push(e) {
                acc.push(&c);
            }
        }
        let streamed = acc.finish();
        let whole = response_to_chat(&sample());
        assert_eq!(streamed.text(), whole.text());
        assert_eq!(
            streamed.choices[0].message.extra[REASONING_FIELD],
            whole.choices[0].message.extra[REASONING_FIELD]
        );
        assert_eq!(
            streamed.choices[0].message.tool_calls,
            whole.choices[0].message.tool_calls
        );
        assert_eq!(streamed.finish_reason(), whole.finish_reason());
        assert_eq!(streamed.usage, whole.usage);
    }
}
