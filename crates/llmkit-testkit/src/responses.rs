//! `/v1/responses`: create (whole or streamed), retrieve, delete, cancel, input items and
//! `input_tokens`, over an in-memory store of the responses served, which resolves
//! `previous_response_id` and plays background mode (`queued`, then `in_progress`, then
//! done, one step per poll; cancellable until then).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::reply::{check_model, context_limit};
use crate::response::{Call, Handled, Reply};
use crate::responses_reply::{
    Answer, ENCRYPTED_PREFIX, Generated, answer, estimate_items, reasoning,
};
use crate::tokens::pieces;

/// Item types the mock accepts in `input`.
const INPUT_TYPES: [&str; 4] = [
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
];
const ROLES: [&str; 4] = ["user", "assistant", "system", "developer"];

/// A response the mock served with `store` on.
#[derive(Debug, Clone)]
struct Stored {
    /// The finished response.
    response: Value,
    /// This request's input items, with ids.
    input: Vec<Value>,
    /// The whole conversation up to and including this response's output, for a later
    /// `previous_response_id`.
    history: Vec<Value>,
    background: bool,
    /// Polls left before a background response is done.
    polls_left: u32,
    cancelled: bool,
}

impl Stored {
    /// The response as a poll sees it now.
    fn current(&self) -> Value {
        if self.cancelled {
            let mut r = self.response.clone();
            r["status"] = json!("cancelled");
            r["output"] = json!([]);
            r["usage"] = Value::Null;
            return r;
        }
        match self.polls_left {
            0 => self.response.clone(),
            n => {
                let mut r = self.response.clone();
                r["status"] = json!(if n > 1 { "queued" } else { "in_progress" });
                r["output"] = json!([]);
                r["usage"] = Value::Null;
                r
            }
        }
    }

    fn is_done(&self) -> bool {
        self.cancelled || self.polls_left == 0
    }
}

/// The responses served, by id.
#[derive(Debug, Default)]
pub(crate) struct Responses {
    stored: BTreeMap<String, Stored>,
}

impl Responses {
    /// `POST /v1/responses`. `polls` is how many polls a background response takes.
    pub(crate) fn create(
        &mut self,
        body: &Value,
        call: &Call,
        polls: u32,
    ) -> Result<Handled, ApiError> {
        if !body.is_object() {
            return Err(ApiError::invalid_json_body());
        }
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::missing_param("model"))?
            .to_string();
        check_model(&model)?;
        let input = input_items(body, call.seq)?;
        let store = body.get("store").and_then(Value::as_bool).unwrap_or(true);
        let background = flag(body, "background");
        if background && !store {
            return Err(
                ApiError::invalid_request("Background mode requires `store` to be true.")
                    .with_param("background"),
            );
        }
        let mut conversation = match body.get("previous_response_id").and_then(Value::as_str) {
            Some(prev) => self
                .stored
                .get(prev)
                .map(|s| s.history.clone())
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "Previous response with id '{prev}' not found."
                    ))
                    .with_param("previous_response_id")
                    .with_code("previous_response_not_found")
                })?,
            None => Vec::new(),
        };
        conversation.extend(input.iter().cloned());
        let instructions = body.get("instructions").and_then(Value::as_str);
        let input_tokens = estimate_items(&conversation, instructions);
        if input_tokens > context_limit(&model) {
            return Err(
                ApiError::context_length(context_limit(&model), input_tokens).with_param("input"),
            );
        }
        let generated = generate(body, call, model, &conversation, input_tokens)?;
        let output = generated.output();
        let done = generated.object(body, generated.final_status(), output.clone());
        if store {
            conversation.extend(output);
            self.stored.insert(
                generated.id.clone(),
                Stored {
                    response: done.clone(),
                    input,
                    history: conversation,
                    background,
                    polls_left: if background { polls } else { 0 },
                    cancelled: false,
                },
            );
        }
        let max = body.get("max_output_tokens").and_then(Value::as_u64);
        let cost = input_tokens + max.unwrap_or(0);
        let reply = if flag(body, "stream") {
            Reply::sse(generated.frames(body, call.tokens_per_sec))
        } else if background {
            Reply::json(self.stored.get(&generated.id).map_or(done, Stored::current))
        } else {
            Reply::json(done)
        };
        Ok(Handled {
            reply,
            charge: Some((generated.model, cost)),
        })
    }

    /// `GET /v1/responses/{id}`: one poll (a background response moves one step on).
    pub(crate) fn retrieve(&mut self, id: &str) -> Result<Handled, ApiError> {
        let s = self.stored.get_mut(id).ok_or_else(|| not_found(id))?;
        if !s.cancelled {
            s.polls_left = s.polls_left.saturating_sub(1);
        }
        Ok(Handled::free(Reply::json(s.current())))
    }

    /// `DELETE /v1/responses/{id}`.
    pub(crate) fn delete(&mut self, id: &str) -> Result<Handled, ApiError> {
        self.stored.remove(id).ok_or_else(|| not_found(id))?;
        Ok(Handled::free(Reply::json(
            json!({"id": id, "object": "response.deleted", "deleted": true}),
        )))
    }

    /// `POST /v1/responses/{id}/cancel`: background responses that are not done yet.
    pub(crate) fn cancel(&mut self, id: &str) -> Result<Handled, ApiError> {
        let s = self.stored.get_mut(id).ok_or_else(|| not_found(id))?;
        if !s.background {
            return Err(ApiError::invalid_request(
                "Only responses created with background=true can be cancelled.",
            ));
        }
        if s.is_done() && !s.cancelled {
            return Err(ApiError::invalid_request(
                "Cannot cancel a response that has already completed.",
            ));
        }
        s.cancelled = true;
        Ok(Handled::free(Reply::json(s.current())))
    }

    /// `GET /v1/responses/{id}/input_items?limit=&order=&after=` (newest first by default).
    pub(crate) fn input_items(&self, id: &str, query: Option<&str>) -> Result<Handled, ApiError> {
        let s = self.stored.get(id).ok_or_else(|| not_found(id))?;
        let q = parse_query(query);
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(20)
            .clamp(1, 100);
        let mut items = s.input.clone();
        if q.get("order").map(String::as_str) != Some("asc") {
            items.reverse();
        }
        if let Some(after) = q.get("after") {
            let at = items
                .iter()
                .position(|i| i.get("id").and_then(Value::as_str) == Some(after.as_str()));
            items = at.map_or_else(Vec::new, |at| items.split_off(at + 1));
        }
        let has_more = items.len() > limit;
        items.truncate(limit);
        let id_of = |i: Option<&Value>| i.and_then(|v| v.get("id")).cloned().unwrap_or(Value::Null);
        Ok(Handled::free(Reply::json(json!({
            "object": "list",
            "data": items,
            "first_id": id_of(items.first()),
            "last_id": id_of(items.last()),
            "has_more": has_more,
        }))))
    }

    /// `POST /v1/responses/input_tokens`.
    pub(crate) fn input_tokens(&self, body: &Value, seq: u64) -> Result<Handled, ApiError> {
        if !body.is_object() {
            return Err(ApiError::invalid_json_body());
        }
        let mut conversation = match body.get("previous_response_id").and_then(Value::as_str) {
            Some(prev) => self
                .stored
                .get(prev)
                .map(|s| s.history.clone())
                .ok_or_else(|| not_found(prev))?,
            None => Vec::new(),
        };
        if body.get("input").is_some_and(|i| !i.is_null()) {
            conversation.extend(input_items(body, seq)?);
        }
        let n = estimate_items(
            &conversation,
            body.get("instructions").and_then(Value::as_str),
        );
        Ok(Handled::free(Reply::json(
            json!({"object": "response.input_tokens", "input_tokens": n}),
        )))
    }
}

fn generate(
    body: &Value,
    call: &Call,
    model: String,
    conversation: &[Value],
    input_tokens: u64,
) -> Result<Generated, ApiError> {
    let answer = answer(body, conversation)?;
    let full = match &answer {
        Answer::Text(t) => t.clone(),
        Answer::Calls(calls) => calls.iter().map(|c| c.arguments.as_str()).collect(),
    };
    let mut parts = pieces(&full);
    let max = body
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    let incomplete = max.is_some_and(|m| parts.len() > m);
    if let Some(m) = max {
        parts.truncate(m);
    }
    Ok(Generated {
        id: format!("resp_mock{:06}", call.seq),
        seq: call.seq,
        created: call.created,
        model,
        reasoning: reasoning(body, conversation),
        answer,
        pieces: parts,
        incomplete,
        input_tokens,
    })
}

/// The request's `input` as items with ids, checked: known item types and roles, and
/// reasoning carried back only as the mock encrypted it.
fn input_items(body: &Value, seq: u64) -> Result<Vec<Value>, ApiError> {
    let raw = match body.get("input") {
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) if body.get("previous_response_id").is_some() => Vec::new(),
        None | Some(Value::Null) => return Err(ApiError::missing_param("input")),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "Invalid type for 'input': expected a string or an array.",
            )
            .with_param("input"));
        }
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            check_item(&item)?;
            if item.get("id").is_none_or(Value::is_null) {
                item["id"] = json!(format!("in_mock{seq:06}_{i}"));
            }
            if item.get("type").is_none() {
                item["type"] = json!("message");
            }
            Ok(item)
        })
        .collect()
}

fn check_item(item: &Value) -> Result<(), ApiError> {
    let bad = |msg: String| Err(ApiError::invalid_request(msg).with_param("input"));
    if !item.is_object() {
        return bad("Invalid value for 'input': each item must be an object.".into());
    }
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    if !INPUT_TYPES.contains(&kind) {
        return bad(format!(
            "Invalid value for 'input[].type': '{kind}' is not supported."
        ));
    }
    match kind {
        "message" => {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("");
            if !ROLES.contains(&role) {
                return bad(format!("Invalid value for 'input[].role': '{role}'."));
            }
        }
        "function_call_output" | "function_call" => {
            if item.get("call_id").and_then(Value::as_str).is_none() {
                return bad("Missing required parameter: 'input[].call_id'.".into());
            }
        }
        _ => {
            if let Some(enc) = item.get("encrypted_content").and_then(Value::as_str)
                && !enc.starts_with(ENCRYPTED_PREFIX)
            {
                return Err(ApiError::invalid_request(
                    "The encrypted content for a reasoning item could not be verified.",
                )
                .with_param("input")
                .with_code("invalid_encrypted_content"));
            }
        }
    }
    Ok(())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("Response with id '{id}' not found."),
    )
}

fn flag(body: &Value, key: &str) -> bool {
    body.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ReplyBody;

    fn call(seq: u64) -> Call {
        Call {
            seq,
            created: 1,
            tokens_per_sec: None,
            cached_tokens: 0,
        }
    }

    fn json_of(h: Handled) -> Value {
        match h.reply.body {
            ReplyBody::Json(v) => v,
            other => panic!("not json: {other:?}"),
        }
    }

    #[test]
    fn previous_response_ids_chain_the_conversation() {
        let mut r = Responses::default();
        let first = json_of(
            r.create(&json!({"model": "m", "input": "hello"}), &call(1), 2)
                .unwrap(),
        );
        assert_eq!(first["status"], "completed");
        assert_eq!(first["output"][0]["content"][0]["text"], "hello");
        let second = json_of(
            r.create(
                &json!({"model": "m", "input": "MOCK_TURNS", "previous_response_id": first["id"]}),
                &call(2),
                2,
            )
            .unwrap(),
        );
        assert_eq!(second["output"][0]["content"][0]["text"], "turns: 2");
        assert!(second["usage"]["input_tokens"].as_u64() > first["usage"]["input_tokens"].as_u64());
        let e = r
            .create(
                &json!({"model": "m", "input": "x", "previous_response_id": "resp_nope"}),
                &call(3),
                2,
            )
            .unwrap_err();
        assert_eq!(e.code, Some("previous_response_not_found"));
        // `store: false` keeps nothing to chain from.
        let unstored = json_of(
            r.create(
                &json!({"model": "m", "input": "x", "store": false}),
                &call(4),
                2,
            )
            .unwrap(),
        );
        assert!(r.retrieve(unstored["id"].as_str().unwrap()).is_err());
    }

    #[test]
    fn background_responses_advance_per_poll_and_cancel() {
        let mut r = Responses::default();
        let body = json!({"model": "m", "input": "hi", "background": true});
        let created = json_of(r.create(&body, &call(1), 2).unwrap());
        assert_eq!(created["status"], "queued");
        let id = created["id"].as_str().unwrap();
        assert_eq!(json_of(r.retrieve(id).unwrap())["status"], "in_progress");
        assert_eq!(json_of(r.retrieve(id).unwrap())["status"], "completed");
        assert!(r.cancel(id).is_err());
        let other = json_of(r.create(&body, &call(2), 3).unwrap());
        let id = other["id"].as_str().unwrap();
        assert_eq!(json_of(r.cancel(id).unwrap())["status"], "cancelled");
        assert_eq!(json_of(r.retrieve(id).unwrap())["status"], "cancelled");
        let e = r
            .create(
                &json!({"model": "m", "input": "x", "background": true, "store": false}),
                &call(3),
                2,
            )
            .unwrap_err();
        assert_eq!(e.param, Some("background"));
    }

    #[test]
    fn items_are_checked_listed_and_deleted() {
        let mut r = Responses::default();
        let e = r
            .create(
                &json!({"model": "m", "input": [{"type": "reasoning", "id": "rs", "summary": [],
                "encrypted_content": "forged"}]}),
                &call(1),
                2,
            )
            .unwrap_err();
        assert_eq!(e.code, Some("invalid_encrypted_content"));
        let e = r
            .create(&json!({"model": "m", "input": [{"type": "message", "role": "robot", "content": "x"}]}), &call(1), 2)
            .unwrap_err();
        assert_eq!(e.param, Some("input"));
        let body = json!({"model": "m", "input": [
            {"role": "user", "content": "a"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "b"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}]}
        ]});
        let created = json_of(r.create(&body, &call(2), 2).unwrap());
        let id = created["id"].as_str().unwrap();
        let list = json_of(r.input_items(id, Some("order=asc&limit=1")).unwrap());
        assert_eq!(list["data"][0]["content"], "a");
        assert_eq!(list["has_more"], true);
        let count = json_of(r.input_tokens(&body, 3).unwrap());
        assert_eq!(count["input_tokens"], created["usage"]["input_tokens"]);
        assert_eq!(json_of(r.delete(id).unwrap())["deleted"], true);
        assert!(r.delete(id).is_err());
    }
}
