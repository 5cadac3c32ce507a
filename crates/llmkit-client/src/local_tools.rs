//! Tool calling on the embedded model, which has no tool format of its own: the tools are
//! described in the system prompt, and the call is made with constrained decoding, in two
//! steps like llama-cpp-python's chatml function calling. First a short decision, a JSON
//! object `{"action": "answer" | TOOL}`; then, for a tool, its arguments constrained to
//! that tool's JSON Schema, so they always parse and match it. `tool_choice: "required"` or
//! a named function skips the decision; after a tool result the model answers in text.

use llmkit_local::{ChatTurn, GenerateRequest, JsonConstraint};
use llmkit_types::{ChatCompletionRequest, FunctionDef, Role, ToolChoice};
use serde_json::{Value, json};

/// The most tokens of the decision object.
const DECISION_TOKENS: u32 = 24;
/// The answer to the decision that means "no tool".
pub(crate) const ANSWER: &str = "answer";

/// The tools a request offers, and how free the model is to use them.
#[derive(Debug, Clone)]
pub(crate) struct Offer<'a> {
    pub tools: Vec<&'a FunctionDef>,
    /// `tool_choice` names this function.
    pub forced: Option<&'a str>,
    /// `tool_choice: "required"`.
    pub required: bool,
}

impl Offer<'_> {
    pub(crate) fn get(&self, name: &str) -> Option<&FunctionDef> {
        self.tools.iter().copied().find(|t| t.name == name)
    }
}

/// The request's function tools, unless it has none or `tool_choice` is `"none"`.
pub(crate) fn offered(req: &ChatCompletionRequest) -> Option<Offer<'_>> {
    let tools: Vec<&FunctionDef> = req
        .tools
        .iter()
        .flatten()
        .filter(|t| t.kind == "function")
        .map(|t| &t.function)
        .collect();
    if tools.is_empty() {
        return None;
    }
    let (forced, required) = match &req.tool_choice {
        Some(ToolChoice::Mode(m)) if m == "none" => return None,
        Some(ToolChoice::Mode(m)) => (None, m == "required"),
        Some(ToolChoice::Named(n)) => (Some(n.function.name.as_str()), true),
        None => (None, false),
    };
    Some(Offer {
        tools,
        forced,
        required,
    })
}

/// The conversation as the model's template takes it: the tools described in the system
/// prompt, earlier calls as assistant text, tool results as user turns naming the tool.
pub(crate) fn turns(req: &ChatCompletionRequest, offer: &Offer<'_>) -> Vec<ChatTurn> {
    let mut described = String::from("You can call these tools:\n");
    for t in &offer.tools {
        let params = t
            .parameters
            .as_ref()
            .map_or_else(|| "{}".to_string(), Value::to_string);
        described.push_str(&format!(
            "- {}: {} Arguments (JSON Schema): {params}\n",
            t.name,
            t.description.as_deref().unwrap_or("")
        ));
    }
    let mut out: Vec<ChatTurn> = Vec::with_capacity(req.messages.len() + 1);
    let mut names: Vec<(String, String)> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer => out.push(ChatTurn::system(m.text_content())),
            Role::Assistant => {
                let mut text = m.text_content();
                for c in m.tool_calls.iter().flatten() {
                    names.push((c.id.clone(), c.function.name.clone()));
                    text.push_str(&format!(
                        "\nCalling {} with {}",
                        c.function.name, c.function.arguments
                    ));
                }
                out.push(ChatTurn::new("assistant", text.trim().to_string()));
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let name = names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map_or("the tool", |(_, n)| n.as_str());
                out.push(ChatTurn::user(format!(
                    "Result of {name}: {}",
                    m.text_content()
                )));
            }
            _ => out.push(ChatTurn::user(m.text_content())),
        }
    }
    match out.iter_mut().find(|t| t.role == "system") {
        Some(sys) => sys.content = format!("{}\n\n{described}", sys.content),
        None => out.insert(0, ChatTurn::system(described)),
    }
    out
}

/// True when the last message is a tool result: the model answers it in text.
pub(crate) fn answering_results(req: &ChatCompletionRequest) -> bool {
    req.messages.last().is_some_and(|m| m.role == Role::Tool)
}

/// The decision step: `{"action": "answer"}` or `{"action": TOOL}`.
pub(crate) fn decision_job(base: &GenerateRequest, offer: &Offer<'_>) -> GenerateRequest {
    let mut actions: Vec<&str> = offer.tools.iter().map(|t| t.name.as_str()).collect();
    if !offer.required {
        actions.push(ANSWER);
    }
    let mut job = base.clone();
    // A small model heeds the last turn most: the question to decide on goes there.
    let ask = format!(
        "Decide what to do next. If one of the tools ({}) can help, reply {{\"action\": \"TOOL\"}} \
         to call it{}.",
        offer
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if offer.required {
            ""
        } else {
            "; reply {\"action\": \"answer\"} only when no tool fits"
        }
    );
    match job.messages.last_mut() {
        Some(last) if last.role == "user" => last.content = format!("{}\n\n{ask}", last.content),
        _ => job.messages.push(ChatTurn::user(ask)),
    }
    job.json = Some(JsonConstraint::Schema(json!({
        "type": "object",
        "properties": {"action": {"enum": actions}},
        "required": ["action"],
        "additionalProperties": false,
    })));
    job.max_tokens = Some(DECISION_TOKENS);
    job.stop = Vec::new();
    job
}

/// The action a finished decision names (a tool's name or [`ANSWER`]).
pub(crate) fn decided(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()?
        .get("action")?
        .as_str()
        .map(str::to_string)
}

/// The arguments step for `tool`: a JSON object constrained to its schema.
pub(crate) fn call_job(base: &GenerateRequest, tool: &FunctionDef) -> GenerateRequest {
    let mut job = base.clone();
    append_system(
        &mut job.messages,
        &format!(
            "Call the tool {}. Reply with its arguments only, as one JSON object.",
            tool.name
        ),
    );
    let schema = tool
        .parameters
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object"}));
    job.json = Some(JsonConstraint::Schema(schema));
    job.stop = Vec::new();
    job
}

fn append_system(turns: &mut [ChatTurn], text: &str) {
    if let Some(sys) = turns.iter_mut().find(|t| t.role == "system") {
        sys.content = format!("{}\n{text}", sys.content);
    }
}

// The answer to a request with tools, and its stream form, on the local backend.

use std::time::Instant;

use llmkit_local::LocalModel;
use llmkit_types::{
    ChatCompletionChunk, ChatCompletionResponse, Choice, ChunkChoice, Delta, FinishReason,
    ResponseMessage,
};
use serde_json::Map;

use crate::error::ClientError;
use crate::http::Response;
use crate::local::{
    LocalBackend, chat_jobs, check_context, finish, index_u32, local_meta, new_id, now_secs,
    run_blocking, usage_of,
};
use crate::stream::{ChatStream, StreamEvent};

impl LocalBackend {
    /// One answer to a request with tools: a decision (unless a call is required, or the
    /// last message is a tool result), then either the call's schema-constrained arguments
    /// or a text answer.
    pub(crate) async fn chat_with_tools(
        &self,
        model: &LocalModel,
        req: &ChatCompletionRequest,
        offer: &Offer<'_>,
        started: Instant,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        let mut base = chat_jobs(req).swap_remove(0);
        base.messages = turns(req, offer);
        check_context(model, &base)?;
        let mut outputs = Vec::new();
        let tool = if let Some(name) = offer.forced {
            offer.get(name)
        } else if answering_results(req) && !offer.required {
            None
        } else if offer.required && offer.tools.len() == 1 {
            offer.tools.first().copied()
        } else {
            let job = decision_job(&base, offer);
            let out = run_blocking(model.clone(), vec![job]).await?.swap_remove(0);
            let action = decided(&out.text);
            outputs.push(out);
            action.and_then(|a| offer.get(&a))
        };
        let (message, finish_reason) = match tool {
            Some(t) => {
                let out = run_blocking(model.clone(), vec![call_job(&base, t)])
                    .await?
                    .swap_remove(0);
                let call = llmkit_types::ToolCall {
                    id: new_id("call"),
                    kind: "function".into(),
                    function: llmkit_types::FunctionCall {
                        name: t.name.clone(),
                        arguments: out.text.clone(),
                    },
                };
                outputs.push(out);
                let message = ResponseMessage {
                    role: Role::Assistant,
                    tool_calls: Some(vec![call]),
                    ..ResponseMessage::default()
                };
                (message, FinishReason::ToolCalls)
            }
            None => {
                let out = run_blocking(model.clone(), vec![base])
                    .await?
                    .swap_remove(0);
                let finish_reason = finish(out.finish_reason);
                let message = ResponseMessage {
                    role: Role::Assistant,
                    content: Some(out.text.clone()),
                    ..ResponseMessage::default()
                };
                outputs.push(out);
                (message, finish_reason)
            }
        };
        let body = ChatCompletionResponse {
            id: new_id("chatcmpl-local"),
            object: "chat.completion".into(),
            created: now_secs(),
            model: model.name().to_string(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(finish_reason),
                logprobs: None,
            }],
            usage: Some(usage_of(&outputs)),
            system_fingerprint: None,
            service_tier: None,
            extra: Map::new(),
        };
        Ok(Response {
            body,
            meta: local_meta(started, None),
        })
    }
}

/// A whole answer as a stream: one chunk with the message (text or tool calls), then the
/// usage chunk.
pub(crate) fn replay_stream(whole: Response<ChatCompletionResponse>) -> ChatStream {
    let Response { body, mut meta } = whole;
    let choices = body
        .choices
        .iter()
        .map(|c| ChunkChoice {
            index: c.index,
            delta: Delta {
                role: Some(Role::Assistant),
                content: c.message.content.clone(),
                tool_calls: c.message.tool_calls.as_ref().map(|calls| {
                    calls
                        .iter()
                        .enumerate()
                        .map(|(i, call)| llmkit_types::ToolCallDelta {
                            index: index_u32(i),
                            id: Some(call.id.clone()),
                            kind: Some(call.kind.clone()),
                            function: Some(llmkit_types::FunctionCallDelta {
                                name: Some(call.function.name.clone()),
                                arguments: Some(call.function.arguments.clone()),
                            }),
                        })
                        .collect()
                }),
                ..Delta::default()
            },
            finish_reason: c.finish_reason.clone(),
            logprobs: None,
        })
        .collect();
    let chunk = |choices, usage| ChatCompletionChunk {
        id: body.id.clone(),
        object: "chat.completion.chunk".into(),
        created: body.created,
        model: body.model.clone(),
        choices,
        usage,
        system_fingerprint: None,
        service_tier: None,
        extra: Map::new(),
    };
    meta.ttft = Some(meta.latency);
    let events = vec![
        StreamEvent::Meta(meta.clone()),
        StreamEvent::Chunk(Box::new(chunk(choices, None))),
        StreamEvent::Chunk(Box::new(chunk(Vec::new(), body.usage.clone()))),
    ];
    ChatStream::from_events(futures::stream::iter(events), meta)
}

#[cfg(test)]
mod tests {
    use llmkit_types::{ChatMessage, FunctionCall, Tool, ToolCall};

    use super::*;

    fn weather() -> Tool {
        Tool::function(FunctionDef {
            name: "get_weather".into(),
            description: Some("Weather for a city.".into()),
            parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            strict: None,
        })
    }

    #[test]
    fn tools_are_described_and_tool_turns_become_text() {
        let mut req = ChatCompletionRequest::new(
            "m",
            vec![
                ChatMessage::user("weather in Paris?"),
                ChatMessage::assistant_tool_calls(vec![ToolCall {
                    id: "c1".into(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into(),
                    },
                }]),
                ChatMessage::tool_result("c1", "sunny"),
            ],
        );
        req.tools = Some(vec![weather()]);
        let offer = offered(&req).unwrap();
        assert!(!offer.required && offer.forced.is_none());
        let t = turns(&req, &offer);
        assert_eq!(t[0].role, "system");
        assert!(t[0].content.contains("- get_weather: Weather for a city."));
        assert_eq!(t[2].content, r#"Calling get_weather with {"city":"Paris"}"#);
        assert_eq!(t[3].content, "Result of get_weather: sunny");
        assert!(answering_results(&req));
        req.tool_choice = Some(ToolChoice::Mode("none".into()));
        assert!(offered(&req).is_none());
    }

    #[test]
    fn the_decision_offers_answer_unless_a_call_is_required() {
        let mut req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        req.tools = Some(vec![weather()]);
        let base = GenerateRequest {
            messages: turns(&req, &offered(&req).unwrap()),
            ..GenerateRequest::default()
        };
        let job = decision_job(&base, &offered(&req).unwrap());
        let Some(JsonConstraint::Schema(s)) = &job.json else {
            panic!()
        };
        assert_eq!(
            s["properties"]["action"]["enum"],
            json!(["get_weather", "answer"])
        );
        req.tool_choice = Some(ToolChoice::Mode("required".into()));
        let job = decision_job(&base, &offered(&req).unwrap());
        let Some(JsonConstraint::Schema(s)) = &job.json else {
            panic!()
        };
        assert_eq!(s["properties"]["action"]["enum"], json!(["get_weather"]));
        assert_eq!(decided(r#"{"action": "answer"}"#).as_deref(), Some(ANSWER));
        assert_eq!(decided("nope"), None);
    }
}
