//! `POST /v1/chat/completions`: deterministic replies (echo, `MOCK_REPLY:`, JSON-schema
//! instances, forced tool calls), streamed or not, in OpenAI's exact shapes.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::reply::{Choice, GenParams, StreamPlan, interleave, rate_cost, scripted, usage_cached};
use crate::response::{Call, Handled, Reply};
use crate::schema_instance::schema_instance;
use crate::tokens::{content_text, estimate_messages};
use crate::tool_script::{self, Next, ScriptedCall};

const FINGERPRINT: &str = "fp_mock";

/// What the assistant answers with.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Text(String),
    ToolCall {
        name: String,
        arguments: String,
    },
    /// A `MOCK_TOOLS:` step: several calls, each sent whole.
    Scripted(Vec<ScriptedCall>),
}

pub(crate) fn handle(body: &Value, call: &Call) -> Result<Handled, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid_json_body());
    }
    let params = GenParams::parse(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::missing_param("messages"))?;
    if messages.is_empty() {
        return Err(
            ApiError::invalid_request("[] is too short - 'messages'").with_param("messages")
        );
    }
    let prompt_tokens = estimate_messages(messages);
    if prompt_tokens > params.context_limit() {
        return Err(ApiError::context_length(
            params.context_limit(),
            prompt_tokens,
        ));
    }
    let answer = answer(body, messages)?;
    let choices: Vec<Choice> = (0..params.n).map(|_| shape(&answer, &params)).collect();
    let completion_tokens: u64 = choices.iter().map(Choice::tokens).sum();
    let ids = Ids::new(call, &params.model);
    let reply = if params.stream {
        let plan = stream_plan(
            &ids,
            &answer,
            &choices,
            &params,
            (prompt_tokens, call.cached_tokens),
        );
        Reply::sse(plan.into_frames(call.tokens_per_sec))
    } else {
        Reply::json(json!({
            "id": ids.id,
            "object": "chat.completion",
            "created": ids.created,
            "model": ids.model,
            "choices": choices.iter().enumerate().map(|(i, c)| json!({
                "index": i,
                "message": message(&answer, c, &ids, i),
                "logprobs": null,
                "finish_reason": c.finish_reason,
            })).collect::<Vec<_>>(),
            "usage": usage_cached(prompt_tokens, completion_tokens, call.cached_tokens),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }))
    };
    Ok(Handled {
        reply,
        charge: Some((params.model.clone(), rate_cost(prompt_tokens, &params))),
    })
}

/// Picks the answer: a scripted reply wins, then a forced tool call, then the response format,
/// then the echo of the last user message.
fn answer(body: &Value, messages: &[Value]) -> Result<Answer, ApiError> {
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default();
    if let Some(script) = scripted(&last_user) {
        return Ok(Answer::Text(script.to_string()));
    }
    let since_user: &[Value] = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map_or(&[], |i| &messages[i + 1..]);
    let done = since_user
        .iter()
        .filter(|m| {
            m.get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    let results: Vec<String> = since_user
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .collect();
    match tool_script::next(&last_user, done, &results) {
        Some(Ok(Next::Calls(calls))) => return Ok(Answer::Scripted(calls)),
        Some(Ok(Next::Text(t))) => return Ok(Answer::Text(t)),
        Some(Err(e)) => return Err(e),
        None => {}
    }
    if let Some(tool) = forced_tool(body)? {
        let name = tool
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let params = tool
            .pointer("/function/parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let arguments = schema_instance(&params).to_string();
        return Ok(Answer::ToolCall { name, arguments });
    }
    let format = body.get("response_format");
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_schema") => {
            let schema = format
                .and_then(|f| f.pointer("/json_schema/schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            Ok(Answer::Text(schema_instance(&schema).to_string()))
        }
        Some("json_object") => Ok(Answer::Text(json!({ "text": last_user }).to_string())),
        _ => Ok(Answer::Text(last_user)),
    }
}

/// The tool the request forces (`tool_choice: "required"` → the first tool, or a named one).
fn forced_tool(body: &Value) -> Result<Option<&Value>, ApiError> {
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => Ok(tools.first()),
        Some(choice @ Value::Object(_)) => {
            let Some(name) = choice.pointer("/function/name").and_then(Value::as_str) else {
                return Ok(None);
            };
            tools
                .iter()
                .find(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name))
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "Invalid value for 'tool_choice': no function named '{name}' was \
                         specified in the 'tools' parameter."
                    ))
                    .with_param("tool_choice")
                })
        }
        _ => Ok(None),
    }
}

/// Tool-call arguments are cut by `max_tokens` but never by `stop`.
fn shape(answer: &Answer, params: &GenParams) -> Choice {
    match answer {
        Answer::Text(t) => Choice::shape(t, params),
        Answer::ToolCall { arguments, .. } => {
            let no_stop = GenParams {
                stop: Vec::new(),
                ..params.clone()
            };
            let mut c = Choice::shape(arguments, &no_stop);
            if c.finish_reason == "stop" {
                c.finish_reason = "tool_calls";
            }
            c
        }
        Answer::Scripted(calls) => {
            let all: String = calls.iter().map(|c| c.arguments.as_str()).collect();
            let mut c = Choice::shape(
                &all,
                &GenParams {
                    stop: Vec::new(),
                    max_tokens: None,
                    ..params.clone()
                },
            );
            c.finish_reason = "tool_calls";
            c
        }
    }
}

fn scripted_calls(calls: &[ScriptedCall], ids: &Ids, index: usize) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(k, c)| {
            json!({
                "id": ids.call_id(index * 100 + k),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })
        })
        .collect()
}

/// Identifiers shared by every chunk of one answer.
struct Ids {
    id: String,
    created: u64,
    model: String,
    seq: u64,
}

impl Ids {
    fn new(call: &Call, model: &str) -> Self {
        Self {
            id: format!("chatcmpl-mock{:06}", call.seq),
            created: call.created,
            model: model.to_string(),
            seq: call.seq,
        }
    }

    fn call_id(&self, index: usize) -> String {
        format!("call_mock{:06}_{index}", self.seq)
    }

    fn chunk(&self, choices: Value, with_usage: bool) -> Value {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        });
        if with_usage {
            c["usage"] = Value::Null;
        }
        c
    }
}

fn message(answer: &Answer, choice: &Choice, ids: &Ids, index: usize) -> Value {
    match answer {
        Answer::Text(_) => json!({
            "role": "assistant",
            "content": choice.text(),
            "refusal": null,
            "annotations": [],
        }),
        Answer::ToolCall { name, .. } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": [{
                "id": ids.call_id(index),
                "type": "function",
                "function": {"name": name, "arguments": choice.text()},
            }],
            "annotations": [],
        }),
        Answer::Scripted(calls) => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": scripted_calls(calls, ids, index),
            "annotations": [],
        }),
    }
}

fn stream_plan(
    ids: &Ids,
    answer: &Answer,
    choices: &[Choice],
    params: &GenParams,
    (prompt_tokens, cached_tokens): (u64, u64),
) -> StreamPlan {
    let u = params.include_usage;
    let head = (0..choices.len())
        .map(|i| {
            let delta = match answer {
                Answer::Text(_) => json!({"role": "assistant", "content": "", "refusal": null}),
                Answer::ToolCall { name, .. } => json!({
                    "role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"index": 0, "id": ids.call_id(i), "type": "function",
                                    "function": {"name": name, "arguments": ""}}],
                }),
                Answer::Scripted(calls) => {
                    let calls: Vec<Value> = scripted_calls(calls, ids, i)
                        .into_iter()
                        .enumerate()
                        .map(|(k, mut c)| {
                            c["index"] = json!(k);
                            c
                        })
                        .collect();
                    json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": calls})
                }
            };
            ids.chunk(
                json!([{"index": i, "delta": delta, "logprobs": null, "finish_reason": null}]),
                u,
            )
        })
        .collect();
    let pieces: Vec<Vec<String>> = choices.iter().map(|c| c.pieces.clone()).collect();
    let steps = interleave(&pieces, |i, piece| {
        let delta = match answer {
            Answer::Text(_) => json!({"content": piece}),
            Answer::ToolCall { .. } => {
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            }
            // Sent whole in the first chunk; the pieces only count the tokens.
            Answer::Scripted(_) => json!({}),
        };
        ids.chunk(
            json!([{"index": i, "delta": delta, "logprobs": null, "finish_reason": null}]),
            u,
        )
    });
    let finals = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            ids.chunk(
                json!([{"index": i, "delta": {}, "logprobs": null, "finish_reason": c.finish_reason}]),
                u,
            )
        })
        .collect();
    let usage_chunk = u.then(|| {
        let completion = choices.iter().map(Choice::tokens).sum();
        let mut c = ids.chunk(json!([]), false);
        c["usage"] = usage_cached(prompt_tokens, completion, cached_tokens);
        c
    });
    StreamPlan {
        head,
        steps,
        finals,
        usage: usage_chunk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ReplyBody;

    fn call() -> Call {
        Call {
            seq: 7,
            created: 1,
            tokens_per_sec: None,
            cached_tokens: 0,
        }
    }

    fn run(body: Value) -> Value {
        match handle(&body, &call()).unwrap().reply.body {
            ReplyBody::Json(v) => v,
            other => panic!("not json: {other:?}"),
        }
    }

    #[test]
    fn echoes_the_last_user_message() {
        let v = run(json!({"model": "m", "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]}
        ]}));
        assert_eq!(v["choices"][0]["message"]["content"], "hello there");
        assert_eq!(v["id"], "chatcmpl-mock000007");
        assert_eq!(v["usage"]["completion_tokens"], 2);
    }

    #[test]
    fn forced_tool_calls_carry_schema_arguments() {
        let v = run(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters":
                {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}],
            "tool_choice": "required"}),
        );
        let tool_call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(tool_call["function"]["name"], "f");
        assert_eq!(tool_call["function"]["arguments"], "{\"x\":0}");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        let e = handle(
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tool_choice": {"type": "function", "function": {"name": "g"}}}),
            &call(),
        )
        .unwrap_err();
        assert_eq!(e.param, Some("tool_choice"));
    }

    #[test]
    fn json_object_wraps_the_echo() {
        let v = run(
            json!({"model": "m", "messages": [{"role": "user", "content": "a\"b"}],
            "response_format": {"type": "json_object"}}),
        );
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(text).unwrap(),
            json!({"text": "a\"b"})
        );
    }

    #[test]
    fn context_limits() {
        let big = "x".repeat(4 * 5000);
        let e = handle(
            &json!({"model": "m-ctx4k", "messages": [{"role": "user", "content": big}]}),
            &call(),
        )
        .unwrap_err();
        assert_eq!(e.code, Some("context_length_exceeded"));
        assert!(e.message.contains("maximum context length is 4096 tokens. However, your messages resulted in 5006 tokens."), "{}", e.message);
        let e = handle(&json!({"model": "m", "messages": []}), &call()).unwrap_err();
        assert_eq!(e.param, Some("messages"));
    }
}
