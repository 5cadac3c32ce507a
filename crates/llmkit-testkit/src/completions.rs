//! `POST /v1/completions` (legacy): echoes each prompt, with the same `n`/`stop`/`max_tokens` rules.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::reply::{
    Choice, GenParams, StreamPlan, interleave, prompt_tokens, rate_cost, scripted, usage,
};
use crate::response::{Call, Handled, Reply};

pub(crate) fn handle(body: &Value, call: &Call) -> Result<Handled, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid_json_body());
    }
    let params = GenParams::parse(body)?;
    let prompts = prompts(body.get("prompt"));
    let prompt_tokens = prompt_tokens(&prompts);
    if prompt_tokens > params.context_limit() {
        return Err(
            ApiError::context_length(params.context_limit(), prompt_tokens).with_param("prompt"),
        );
    }
    // Choice `p * n + i` answers prompt `p`, as OpenAI numbers them.
    let choices: Vec<Choice> = prompts
        .iter()
        .flat_map(|p| {
            let text = scripted(p).unwrap_or(p);
            (0..params.n).map(move |_| text)
        })
        .map(|text| Choice::shape(text, &params))
        .collect();
    let completion_tokens: u64 = choices.iter().map(Choice::tokens).sum();
    let id = format!("cmpl-mock{:06}", call.seq);
    let chunk = |choices: Value| {
        json!({
            "id": id,
            "object": "text_completion",
            "created": call.created,
            "model": params.model,
            "system_fingerprint": "fp_mock",
            "choices": choices,
        })
    };
    let reply = if params.stream {
        let pieces: Vec<Vec<String>> = choices.iter().map(|c| c.pieces.clone()).collect();
        let steps = interleave(&pieces, |i, piece| {
            chunk(json!([{"text": piece, "index": i, "logprobs": null, "finish_reason": null}]))
        });
        let finals = choices
            .iter()
            .enumerate()
            .map(|(i, c)| {
                chunk(json!([{"text": "", "index": i, "logprobs": null, "finish_reason": c.finish_reason}]))
            })
            .collect();
        let usage_chunk = params.include_usage.then(|| {
            let mut c = chunk(json!([]));
            c["usage"] = usage(prompt_tokens, completion_tokens);
            c
        });
        let plan = StreamPlan {
            head: Vec::new(),
            steps,
            finals,
            usage: usage_chunk,
        };
        Reply::sse(plan.into_frames(call.tokens_per_sec))
    } else {
        let mut v = chunk(
            choices
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({"text": c.text(), "index": i, "logprobs": null, "finish_reason": c.finish_reason})
                })
                .collect(),
        );
        v["usage"] = usage(prompt_tokens, completion_tokens);
        Reply::json(v)
    };
    Ok(Handled {
        reply,
        charge: Some((params.model.clone(), rate_cost(prompt_tokens, &params))),
    })
}

/// The prompts of a request: a string, a list of strings, or token lists (shown as numbers).
fn prompts(prompt: Option<&Value>) -> Vec<String> {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(tokens) => tokens
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match prompt {
        None | Some(Value::Null) => vec![String::new()],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![as_text(&Value::Array(items.clone()))]
        }
        Some(Value::Array(items)) if items.is_empty() => vec![String::new()],
        Some(Value::Array(items)) => items.iter().map(as_text).collect(),
        Some(v) => vec![as_text(v)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ReplyBody;

    #[test]
    fn echoes_each_prompt_n_times() {
        let call = Call {
            seq: 1,
            created: 1,
            tokens_per_sec: None,
            cached_tokens: 0,
        };
        let h = handle(
            &json!({"model": "m", "prompt": ["a b", "MOCK_REPLY: z"], "n": 2}),
            &call,
        )
        .unwrap();
        let ReplyBody::Json(v) = h.reply.body else {
            panic!("json expected")
        };
        let texts: Vec<&str> = v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["a b", "a b", "z", "z"]);
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["usage"]["prompt_tokens"], 1 + 4);
    }

    #[test]
    fn prompt_shapes() {
        assert_eq!(prompts(None), [""]);
        assert_eq!(prompts(Some(&json!("x"))), ["x"]);
        assert_eq!(prompts(Some(&json!([1, 2]))), ["1 2"]);
        assert_eq!(prompts(Some(&json!([[1], [2, 3]]))), ["1", "2 3"]);
    }
}
