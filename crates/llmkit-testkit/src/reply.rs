//! What chat and legacy completions share: request parameters (`n`, `stop`, `max_tokens`,
//! streaming), the shaping of a reply choice, usage objects and the SSE frame sequence.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::response::{Frame, sse_data};
use crate::tokens::{estimate_text, pieces};

/// A `: keep-alive` comment is sent after the role chunk and then every this many steps.
const KEEP_ALIVE_EVERY: usize = 32;

/// A last user message starting with this scripts the reply: the rest of the message is sent.
pub const MOCK_REPLY: &str = "MOCK_REPLY:";
/// Default context window of every model.
const CONTEXT_DEFAULT: u64 = 128_000;
/// Context window of models whose name contains `ctx4k`.
const CONTEXT_SMALL: u64 = 4_096;
const MAX_N: u64 = 128;

/// Generation parameters common to `/chat/completions` and `/completions`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GenParams {
    pub model: String,
    pub n: u64,
    pub max_tokens: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

impl GenParams {
    pub(crate) fn parse(body: &Value) -> Result<Self, ApiError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::missing_param("model"))?
            .to_string();
        check_model(&model)?;
        let n = match body.get("n") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_N).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "{v} is not a valid value for 'n': expected an integer from 1 to {MAX_N}."
                    ))
                    .with_param("n")
                })?,
        };
        let max_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_u64));
        let stop = match body.get("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            model,
            n,
            max_tokens,
            stop,
            stream,
            include_usage,
        })
    }

    /// The context window of this request's model.
    pub(crate) fn context_limit(&self) -> u64 {
        context_limit(&self.model)
    }
}

/// Rejects the model names reserved for "does not exist" tests.
pub(crate) fn check_model(model: &str) -> Result<(), ApiError> {
    if model.starts_with("nonexistent") || model.starts_with("unknown-") {
        return Err(ApiError::model_not_found(model));
    }
    Ok(())
}

pub(crate) fn context_limit(model: &str) -> u64 {
    if model.contains("ctx4k") {
        CONTEXT_SMALL
    } else {
        CONTEXT_DEFAULT
    }
}

/// One generated choice: the streamed pieces and why generation ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    pub pieces: Vec<String>,
    pub finish_reason: &'static str,
}

impl Choice {
    /// Cuts `full` at the first stop string, then at `max_tokens` pieces.
    pub(crate) fn shape(full: &str, params: &GenParams) -> Self {
        let cut = params
            .stop
            .iter()
            .filter_map(|s| full.find(s.as_str()))
            .min()
            .map_or(full, |at| &full[..at]);
        let mut pieces = pieces(cut);
        let mut finish_reason = "stop";
        if let Some(max) = params.max_tokens
            && pieces.len() as u64 > max
        {
            pieces.truncate(max as usize);
            finish_reason = "length";
        }
        Self {
            pieces,
            finish_reason,
        }
    }

    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    pub(crate) fn tokens(&self) -> u64 {
        self.pieces.len() as u64
    }
}

/// The scripted reply if `text` starts with `MOCK_REPLY:` (one following space is dropped).
pub(crate) fn scripted(text: &str) -> Option<&str> {
    text.strip_prefix(MOCK_REPLY)
        .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
}

/// What the token bucket is charged up front: the prompt plus the completion budget.
pub(crate) fn rate_cost(prompt_tokens: u64, params: &GenParams) -> u64 {
    prompt_tokens + params.max_tokens.unwrap_or(0) * params.n
}

/// Estimate for a bare text prompt (legacy completions, embeddings).
pub(crate) fn prompt_tokens(texts: &[String]) -> u64 {
    texts.iter().map(|t| estimate_text(t)).sum()
}

/// OpenAI's `usage` object.
pub(crate) fn usage(prompt: u64, completion: u64) -> Value {
    usage_cached(prompt, completion, 0)
}

/// OpenAI's `usage` object with `cached` of the prompt tokens served from the prompt cache.
pub(crate) fn usage_cached(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached.min(prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// The chunks of one streamed answer, in the order they are sent.
#[derive(Debug, Default)]
pub(crate) struct StreamPlan {
    /// Sent before the fault point (the role chunks).
    pub head: Vec<Value>,
    /// Content chunks, one group per step; a step holds one piece of every choice.
    pub steps: Vec<Vec<Value>>,
    /// The chunks carrying `finish_reason`.
    pub finals: Vec<Value>,
    /// The trailing usage chunk, when `stream_options.include_usage` asked for it.
    pub usage: Option<Value>,
}

impl StreamPlan {
    /// Lays the chunks out as SSE frames, paced at `tokens_per_sec` when set, ending in `[DONE]`.
    pub(crate) fn into_frames(self, tokens_per_sec: Option<f64>) -> Vec<Frame> {
        let pause = tokens_per_sec
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(1.0 / t));
        let mut frames: Vec<Frame> = self.head.iter().map(|c| sse_data(&c.to_string())).collect();
        frames.push(Frame::FaultPoint);
        let keep_alive = || Frame::Data(Bytes::from_static(b": keep-alive\n\n"));
        frames.push(keep_alive());
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 && i % KEEP_ALIVE_EVERY == 0 {
                frames.push(keep_alive());
            }
            if let Some(p) = pause {
                frames.push(Frame::Pause(p));
            }
            frames.extend(step.iter().map(|c| sse_data(&c.to_string())));
        }
        frames.extend(self.finals.iter().map(|c| sse_data(&c.to_string())));
        if let Some(u) = &self.usage {
            frames.push(sse_data(&u.to_string()));
        }
        frames.push(sse_data("[DONE]"));
        frames
    }
}

/// Groups the pieces of several choices into steps: step `k` holds piece `k` of each choice.
pub(crate) fn interleave<T, F>(choices: &[Vec<T>], mut chunk: F) -> Vec<Vec<Value>>
where
    F: FnMut(usize, &T) -> Value,
{
    let longest = choices.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .map(|k| {
            choices
                .iter()
                .enumerate()
                .filter_map(|(i, pieces)| pieces.get(k).map(|p| chunk(i, p)))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(body: Value) -> GenParams {
        GenParams::parse(&body).unwrap()
    }

    #[test]
    fn parses_defaults_and_options() {
        let p = params(json!({"model": "m"}));
        assert_eq!(
            (p.n, p.max_tokens, p.stream, p.include_usage),
            (1, None, false, false)
        );
        let p = params(
            json!({"model": "m", "n": 3, "max_tokens": 5, "stop": ["a", ""],
                              "stream": true, "stream_options": {"include_usage": true}}),
        );
        assert_eq!(
            (p.n, p.max_tokens, p.stop.clone()),
            (3, Some(5), vec!["a".to_string()])
        );
        assert!(p.stream && p.include_usage);
        assert_eq!(
            params(json!({"model": "m", "max_completion_tokens": 2})).max_tokens,
            Some(2)
        );
        assert_eq!(params(json!({"model": "m", "stop": "x"})).stop, ["x"]);
    }

    #[test]
    fn rejects_bad_params() {
        assert_eq!(
            GenParams::parse(&json!({})).unwrap_err().param,
            Some("model")
        );
        assert_eq!(
            GenParams::parse(&json!({"model": "m", "n": 0}))
                .unwrap_err()
                .param,
            Some("n")
        );
        let e = GenParams::parse(&json!({"model": "unknown-x"})).unwrap_err();
        assert_eq!(e.code, Some("model_not_found"));
        assert!(check_model("nonexistent").is_err() && check_model("gpt-4o").is_ok());
    }

    #[test]
    fn stop_then_max_tokens() {
        let p = params(json!({"model": "m", "stop": ["END", "three"]}));
        let c = Choice::shape("one two three END", &p);
        assert_eq!((c.text().as_str(), c.finish_reason), ("one two ", "stop"));
        let p = params(json!({"model": "m", "max_tokens": 2}));
        let c = Choice::shape("one two three", &p);
        assert_eq!(
            (c.text().as_str(), c.finish_reason, c.tokens()),
            ("one two", "length", 2)
        );
        let c = Choice::shape("one two", &p);
        assert_eq!(c.finish_reason, "stop");
    }

    #[test]
    fn scripted_replies() {
        assert_eq!(scripted("MOCK_REPLY: hi there"), Some("hi there"));
        assert_eq!(scripted("MOCK_REPLY:x"), Some("x"));
        assert_eq!(scripted("hello"), None);
        assert_eq!(context_limit("gpt-ctx4k"), 4096);
    }
}
