//! The mock's answer to one `POST /v1/responses`: the output items (a reasoning item when the
//! request asks for reasoning, then a message or a forced function call), the response
//! object in OpenAI's shape, and its stream of events.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::reply::{MOCK_REPLY, scripted};
use crate::response::Frame;
use crate::schema_instance::schema_instance;
use crate::tokens::{content_text, estimate_messages, pieces};
use crate::tool_script::{self, Next};

/// A last user message that is exactly this is answered with the number of user turns the
/// mock saw in the conversation (after resolving `previous_response_id`), so tests can check
/// that context carried over.
pub const MOCK_TURNS: &str = "MOCK_TURNS";
/// The `include` value that asks for encrypted reasoning.
pub(crate) const INCLUDE_ENCRYPTED: &str = "reasoning.encrypted_content";
/// The prefix of the encrypted reasoning the mock hands out (and accepts back).
pub(crate) const ENCRYPTED_PREFIX: &str = "enc_mock_";

/// What the model answers with: text, or function calls (several in one step with a
/// `MOCK_TOOLS:` script).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Text(String),
    Calls(Vec<FnCall>),
}

/// One function call of an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FnCall {
    pub name: String,
    pub arguments: String,
}

/// One generated response before it is laid out as JSON or events.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    pub id: String,
    pub seq: u64,
    pub created: u64,
    pub model: String,
    /// The reasoning summary's pieces, when the request asked for reasoning.
    pub reasoning: Option<Reasoning>,
    pub answer: Answer,
    /// The answer's streamed pieces (text, or the call's arguments), cut by `max_output_tokens`.
    pub pieces: Vec<String>,
    pub incomplete: bool,
    pub input_tokens: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Reasoning {
    pub summary: Vec<String>,
    pub encrypted: bool,
}

impl Generated {
    pub(crate) fn output_tokens(&self) -> u64 {
        self.pieces.len() as u64 + self.reasoning_tokens()
    }

    fn reasoning_tokens(&self) -> u64 {
        // Hidden reasoning costs something even without a summary.
        self.reasoning
            .as_ref()
            .map_or(0, |r| (r.summary.len() as u64).max(8))
    }

    fn reasoning_item(&self, r: &Reasoning) -> Value {
        let text = r.summary.concat();
        let summary = if text.is_empty() {
            json!([])
        } else {
            json!([{"type": "summary_text", "text": text}])
        };
        json!({
            "type": "reasoning",
            "id": format!("rs_mock{:06}", self.seq),
            "summary": summary,
            "encrypted_content": r.encrypted.then(|| format!("{ENCRYPTED_PREFIX}{:06}", self.seq)),
            "status": "completed",
        })
    }

    fn status(&self, done: bool) -> &'static str {
        match (done, self.incomplete) {
            (false, _) => "in_progress",
            (true, true) => "incomplete",
            (true, false) => "completed",
        }
    }

    fn message_item(&self, text: &str, done: bool) -> Value {
        let content = if done {
            json!([output_text(text)])
        } else {
            json!([])
        };
        json!({
            "type": "message",
            "id": format!("msg_mock{:06}", self.seq),
            "status": self.status(done),
            "role": "assistant",
            "content": content,
        })
    }

    /// The `k`th function call's item, with `arguments` as streamed so far.
    fn call_item(&self, k: usize, call: &FnCall, arguments: &str, done: bool) -> Value {
        json!({
            "type": "function_call",
            "id": format!("fc_mock{:06}_{k}", self.seq),
            "call_id": format!("call_mock{:06}_{k}", self.seq),
            "name": call.name,
            "arguments": arguments,
            "status": self.status(done),
        })
    }

    /// The output items of the finished response.
    pub(crate) fn output(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .reasoning
            .iter()
            .map(|r| self.reasoning_item(r))
            .collect();
        match &self.answer {
            Answer::Text(_) => out.push(self.message_item(&self.pieces.concat(), true)),
            Answer::Calls(calls) => out.extend(
                calls
                    .iter()
                    .enumerate()
                    .map(|(k, c)| self.call_item(k, c, &c.arguments, true)),
            ),
        }
        out
    }

    /// The response object with `status` and `output` (usage only once finished).
    pub(crate) fn object(&self, body: &Value, status: &str, output: Vec<Value>) -> Value {
        let finished = matches!(status, "completed" | "incomplete");
        let field = |k: &str, default: Value| {
            body.get(k)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default)
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": field("background", json!(false)),
            "error": null,
            "incomplete_details": (status == "incomplete").then(|| json!({"reason": "max_output_tokens"})),
            "instructions": field("instructions", Value::Null),
            "max_output_tokens": field("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": field("parallel_tool_calls", json!(true)),
            "previous_response_id": field("previous_response_id", Value::Null),
            "reasoning": field("reasoning", Value::Null),
            "service_tier": "default",
            "store": field("store", json!(true)),
            "temperature": field("temperature", json!(1.0)),
            "text": field("text", json!({"format": {"type": "text"}})),
            "tool_choice": field("tool_choice", json!("auto")),
            "tools": field("tools", json!([])),
            "top_p": field("top_p", json!(1.0)),
            "truncation": "disabled",
            "usage": finished.then(|| self.usage()),
            "metadata": field("metadata", json!({})),
        })
    }

    fn usage(&self) -> Value {
        let output = self.output_tokens();
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens()},
            "total_tokens": self.input_tokens + output,
        })
    }

    /// The final status: `incomplete` when `max_output_tokens` cut the answer.
    pub(crate) fn final_status(&self) -> &'static str {
        if self.incomplete {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The answer as SSE events, in the order OpenAI sends them, paced at `tokens_per_sec`.
    /// Stream faults strike after `response.in_progress`, before any output.
    pub(crate) fn frames(&self, body: &Value, tokens_per_sec: Option<f64>) -> Vec<Frame> {
        let pause = tokens_per_sec
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(1.0 / t));
        let mut ev = Events::default();
        let opening = self.object(body, "in_progress", Vec::new());
        ev.push("response.created", json!({"response": opening.clone()}));
        ev.push("response.in_progress", json!({"response": opening}));
        ev.frames.push(Frame::FaultPoint);
        let mut index = 0;
        if let Some(r) = &self.reasoning {
            self.reasoning_events(&mut ev, r, pause);
            index += 1;
        }
        self.answer_events(&mut ev, index, pause);
        let status = self.final_status();
        let kind = if self.incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        ev.push(
            kind,
            json!({"response": self.object(body, status, self.output())}),
        );
        ev.frames
    }

    fn reasoning_events(&self, ev: &mut Events, r: &Reasoning, pause: Option<Duration>) {
        let item = self.reasoning_item(r);
        let id = item["id"].clone();
        let mut added = item.clone();
        added["summary"] = json!([]);
        added["status"] = json!("in_progress");
        ev.push(
            "response.output_item.added",
            json!({"output_index": 0, "item": added}),
        );
        if !r.summary.is_empty() {
            let part = |text: &str| json!({"type": "summary_text", "text": text});
            let at = json!({"item_id": id, "output_index": 0, "summary_index": 0});
            ev.push(
                "response.reasoning_summary_part.added",
                merge(&at, json!({"part": part("")})),
            );
            for piece in &r.summary {
                ev.pause(pause);
                ev.push(
                    "response.reasoning_summary_text.delta",
                    merge(&at, json!({"delta": piece})),
                );
            }
            let text = r.summary.concat();
            ev.push(
                "response.reasoning_summary_text.done",
                merge(&at, json!({"text": text})),
            );
            ev.push(
                "response.reasoning_summary_part.done",
                merge(&at, json!({"part": part(&text)})),
            );
        }
        ev.push(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
    }

    fn answer_events(&self, ev: &mut Events, index: usize, pause: Option<Duration>) {
        let calls = match &self.answer {
            Answer::Text(_) => None,
            Answer::Calls(calls) => Some(calls),
        };
        if let Some(calls) = calls {
            for (k, call) in calls.iter().enumerate() {
                self.call_events(ev, index + k, k, call, pause);
            }
            return;
        }
        let added = self.message_item("", false);
        let id = added["id"].clone();
        ev.push(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        let full = self.pieces.concat();
        {
            {
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                ev.push(
                    "response.content_part.added",
                    merge(&at, json!({"part": output_text("")})),
                );
                for piece in &self.pieces {
                    ev.pause(pause);
                    ev.push(
                        "response.output_text.delta",
                        merge(&at, json!({"delta": piece, "logprobs": []})),
                    );
                }
                ev.push(
                    "response.output_text.done",
                    merge(&at, json!({"text": full, "logprobs": []})),
                );
                ev.push(
                    "response.content_part.done",
                    merge(&at, json!({"part": output_text(&full)})),
                );
            }
        }
        ev.push(
            "response.output_item.done",
            json!({"output_index": index, "item": self.message_item(&full, true)}),
        );
    }

    /// One function call's events: the item added, its arguments in deltas, done.
    fn call_events(
        &self,
        ev: &mut Events,
        index: usize,
        k: usize,
        call: &FnCall,
        pause: Option<Duration>,
    ) {
        let added = self.call_item(k, call, "", false);
        let at = json!({"item_id": added["id"].clone(), "output_index": index});
        ev.push(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        for piece in pieces(&call.arguments) {
            ev.pause(pause);
            ev.push(
                "response.function_call_arguments.delta",
                merge(&at, json!({"delta": piece})),
            );
        }
        ev.push(
            "response.function_call_arguments.done",
            merge(&at, json!({"arguments": call.arguments})),
        );
        ev.push(
            "response.output_item.done",
            json!({"output_index": index, "item": self.call_item(k, call, &call.arguments, true)}),
        );
    }
}

/// Numbered SSE events as frames.
#[derive(Default)]
struct Events {
    frames: Vec<Frame>,
    seq: u64,
}

impl Events {
    fn push(&mut self, kind: &str, fields: Value) {
        let mut data = json!({"type": kind, "sequence_number": self.seq});
        if let (Some(d), Value::Object(f)) = (data.as_object_mut(), fields) {
            d.extend(f);
        }
        self.seq += 1;
        self.frames.push(Frame::Data(Bytes::from(format!(
            "event: {kind}\ndata: {data}\n\n"
        ))));
    }

    fn pause(&mut self, pause: Option<Duration>) {
        if let Some(p) = pause {
            self.frames.push(Frame::Pause(p));
        }
    }
}

fn merge(base: &Value, more: Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Value::Object(m)) = (out.as_object_mut(), more) {
        o.extend(m);
    }
    out
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// The text of an input or output item, for token estimates and the echo.
pub(crate) fn item_text(item: &Value) -> String {
    match item.get("type").and_then(Value::as_str) {
        Some("function_call") => format!(
            "{}{}",
            item.get("name").and_then(Value::as_str).unwrap_or(""),
            item.get("arguments").and_then(Value::as_str).unwrap_or("")
        ),
        Some("function_call_output") => content_text(item.get("output").unwrap_or(&Value::Null)),
        Some("reasoning") => String::new(),
        _ => content_text(item.get("content").unwrap_or(&Value::Null)),
    }
}

/// Input tokens of a conversation's items, estimated as chat messages are.
pub(crate) fn estimate_items(items: &[Value], instructions: Option<&str>) -> u64 {
    let mut messages: Vec<Value> = items
        .iter()
        .map(|i| match i.get("content") {
            Some(c) if i.get("type").and_then(Value::as_str) != Some("function_call_output") => {
                json!({"content": c})
            }
            _ => json!({"content": item_text(i)}),
        })
        .collect();
    if let Some(text) = instructions {
        messages.push(json!({"content": text}));
    }
    estimate_messages(&messages)
}

/// Whether an item is a user message.
fn is_user(item: &Value) -> bool {
    item.get("role").and_then(Value::as_str) == Some("user")
        && matches!(
            item.get("type").and_then(Value::as_str),
            None | Some("message")
        )
}

/// Picks the answer: a scripted reply wins, then a `MOCK_TOOLS:` script, then
/// `MOCK_TURNS`, then a forced function call, then the text format, then the echo of the last
/// user message.
pub(crate) fn answer(body: &Value, conversation: &[Value]) -> Result<Answer, ApiError> {
    let at_user = conversation.iter().rposition(is_user);
    let last_user = at_user
        .map(|i| item_text(&conversation[i]))
        .unwrap_or_default();
    if let Some(script) = scripted(&last_user) {
        return Ok(Answer::Text(script.to_string()));
    }
    // The steps taken since the user's message: each response's calls are one step.
    let since: &[Value] = at_user.map_or(&[], |i| &conversation[i + 1..]);
    let done = steps_taken(since);
    let results: Vec<String> = since
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call_output"))
        .map(item_text)
        .collect();
    match tool_script::next(&last_user, done, &results) {
        Some(Ok(Next::Calls(calls))) => {
            return Ok(Answer::Calls(
                calls
                    .into_iter()
                    .map(|c| FnCall {
                        name: c.name,
                        arguments: c.arguments,
                    })
                    .collect(),
            ));
        }
        Some(Ok(Next::Text(t))) => return Ok(Answer::Text(t)),
        Some(Err(e)) => return Err(e),
        None => {}
    }
    Ok(unscripted(body, conversation, last_user))
}

/// The tool-call steps among `items`: runs of consecutive `function_call` items, each run
/// one response's calls.
fn steps_taken(items: &[Value]) -> usize {
    let is_call = |i: &Value| i.get("type").and_then(Value::as_str) == Some("function_call");
    items
        .iter()
        .enumerate()
        .filter(|(k, i)| is_call(i) && (*k == 0 || !is_call(&items[k - 1])))
        .count()
}

fn unscripted(body: &Value, conversation: &[Value], last_user: String) -> Answer {
    if last_user.trim() == MOCK_TURNS {
        let turns = conversation.iter().filter(|i| is_user(i)).count();
        return Answer::Text(format!("turns: {turns}"));
    }
    if let Some(tool) = forced_tool(body) {
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let params = tool
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        return Answer::Calls(vec![FnCall {
            name,
            arguments: schema_instance(&params).to_string(),
        }]);
    }
    let format = body.pointer("/text/format");
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_schema") => {
            let schema = format
                .and_then(|f| f.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            Answer::Text(schema_instance(&schema).to_string())
        }
        Some("json_object") => Answer::Text(json!({ "text": last_user }).to_string()),
        _ => Answer::Text(last_user),
    }
}

/// The function tool the request forces (`"required"` → the first function tool, or the one
/// named by `{"type": "function", "name"}`), if any.
fn forced_tool(body: &Value) -> Option<&Value> {
    let mut functions = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"));
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => functions.next(),
        Some(choice @ Value::Object(_)) => {
            let name = choice.get("name").and_then(Value::as_str)?;
            functions.find(|t| t.get("name").and_then(Value::as_str) == Some(name))
        }
        _ => None,
    }
}

/// The reasoning the request asks for: a summary (when `reasoning.summary` is set) that
/// restates the question, and encrypted content when `include` asks for it.
pub(crate) fn reasoning(body: &Value, conversation: &[Value]) -> Option<Reasoning> {
    let config = body.get("reasoning").filter(|r| r.is_object())?;
    let wants_summary = config.get("summary").is_some_and(|s| !s.is_null());
    let summary = if wants_summary {
        let last_user = conversation
            .iter()
            .rev()
            .find(|i| is_user(i))
            .map(item_text)
            .unwrap_or_default();
        let topic: Vec<&str> = last_user
            .strip_prefix(MOCK_REPLY)
            .unwrap_or(&last_user)
            .split_whitespace()
            .take(8)
            .collect();
        pieces(&format!("Considering the request: {}.", topic.join(" ")))
    } else {
        Vec::new()
    };
    let encrypted = body
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(INCLUDE_ENCRYPTED)));
    Some(Reasoning { summary, encrypted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": text})
    }

    #[test]
    fn answers_follow_the_request() {
        let conv = [user("first"), user("hello there")];
        assert_eq!(
            answer(&json!({}), &conv).unwrap(),
            Answer::Text("hello there".into())
        );
        assert_eq!(
            answer(&json!({}), &[user("MOCK_REPLY: hi")]).unwrap(),
            Answer::Text("hi".into())
        );
        assert_eq!(
            answer(&json!({}), &[user("a"), user("MOCK_TURNS")]).unwrap(),
            Answer::Text("turns: 2".into())
        );
        let body = json!({"tools": [{"type": "function", "name": "f",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}],
            "tool_choice": "required"});
        assert_eq!(
            answer(&body, &conv).unwrap(),
            Answer::Calls(vec![FnCall {
                name: "f".into(),
                arguments: "{\"x\":0}".into()
            }])
        );
        let body = json!({"text": {"format": {"type": "json_object"}}});
        assert_eq!(
            answer(&body, &[user("q")]).unwrap(),
            Answer::Text("{\"text\":\"q\"}".into())
        );
    }

    #[test]
    fn tool_scripts_step_through_function_call_outputs() {
        let script = r#"MOCK_TOOLS: [[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]]"#;
        let Answer::Calls(calls) = answer(&json!({}), &[user(script)]).unwrap() else {
            panic!("no calls")
        };
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, "{\"x\":1}");
        let after = [
            user(script),
            json!({"type": "function_call", "call_id": "c0", "name": "a", "arguments": "{}"}),
            json!({"type": "function_call", "call_id": "c1", "name": "b", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "c0", "output": "one"}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "two"}),
        ];
        assert_eq!(
            answer(&json!({}), &after).unwrap(),
            Answer::Text("tool results: one | two".into())
        );
        assert!(answer(&json!({}), &[user("MOCK_TOOLS: nope")]).is_err());
    }

    #[test]
    fn reasoning_only_when_asked() {
        assert!(reasoning(&json!({}), &[user("q")]).is_none());
        let r = reasoning(&json!({"reasoning": {"effort": "low"}}), &[user("q")]).unwrap();
        assert!(r.summary.is_empty() && !r.encrypted);
        let r = reasoning(
            &json!({"reasoning": {"summary": "auto"}, "include": [INCLUDE_ENCRYPTED]}),
            &[user("why is the sky blue")],
        )
        .unwrap();
        assert_eq!(
            r.summary.concat(),
            "Considering the request: why is the sky blue."
        );
        assert!(r.encrypted);
    }
}
