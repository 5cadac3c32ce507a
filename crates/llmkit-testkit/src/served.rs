//! What the server served: one record per answered model request (when, which report it
//! belongs to, model and tokens, read from the answer's own `usage`), the source of the
//! organisation usage and cost reports.

use serde_json::Value;

use crate::response::{Frame, Reply, ReplyBody};

/// Which usage report a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Chat, legacy completions and the Responses API: `/organization/usage/completions`.
    Completions,
    /// Embeddings: billed in the costs report, but not part of the completions usage.
    Embeddings,
}

/// One served request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServedRow {
    /// Unix seconds.
    pub ts: u64,
    pub kind: Kind,
    pub model: String,
    /// Every input token, cached ones included.
    pub input: u64,
    pub cached: u64,
    pub output: u64,
}

/// The served requests, in the order they were answered.
#[derive(Debug, Default)]
pub(crate) struct Served {
    rows: Vec<ServedRow>,
}

impl Served {
    /// Records `reply` when it carries a usage (a whole answer, or a stream's usage chunk or
    /// `response.completed` event); answers without one (a background response still
    /// queued, a stream that did not ask for usage) are not recorded.
    pub(crate) fn record(&mut self, kind: Kind, reply: &Reply, ts: u64) {
        let found = match &reply.body {
            ReplyBody::Json(v) => usage_of(v),
            ReplyBody::Frames(frames) => frames.iter().rev().find_map(frame_usage),
            ReplyBody::Bytes(_) => None,
        };
        if let Some((model, input, cached, output)) = found {
            self.rows.push(ServedRow {
                ts,
                kind,
                model,
                input,
                cached,
                output,
            });
        }
    }

    pub(crate) fn rows(&self) -> &[ServedRow] {
        &self.rows
    }
}

/// The usage in one SSE frame's `data:` JSON, if any.
fn frame_usage(frame: &Frame) -> Option<(String, u64, u64, u64)> {
    let Frame::Data(bytes) = frame else {
        return None;
    };
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| usage_of(&v))
}

/// `(model, input, cached, output)` of a chat or completions answer (`prompt_tokens`...), a
/// Responses object (`input_tokens`...), or a Responses event that carries one.
fn usage_of(v: &Value) -> Option<(String, u64, u64, u64)> {
    let object = if v["response"].is_object() {
        &v["response"]
    } else {
        v
    };
    let usage = object.get("usage").filter(|u| u.is_object())?;
    let model = object["model"].as_str()?.to_string();
    let count = |a: &str, b: &str| usage[a].as_u64().or_else(|| usage[b].as_u64());
    let input = count("prompt_tokens", "input_tokens")?;
    let output = count("completion_tokens", "output_tokens").unwrap_or(0);
    let cached = usage
        .pointer("/prompt_tokens_details/cached_tokens")
        .or_else(|| usage.pointer("/input_tokens_details/cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some((model, input, cached, output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::sse_data;
    use serde_json::json;

    #[test]
    fn answers_streams_and_responses_are_recorded_with_their_usage() {
        let mut served = Served::default();
        let chat = json!({"model": "gpt-4o-mini", "usage": {"prompt_tokens": 9,
            "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}}});
        served.record(Kind::Completions, &Reply::json(chat), 10);
        let stream = Reply::sse(vec![
            sse_data(r#"{"model":"gpt-4o","usage":null}"#),
            sse_data(r#"{"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":7}}"#),
            sse_data("[DONE]"),
        ]);
        served.record(Kind::Completions, &stream, 11);
        let event = json!({"type": "response.completed", "response": {"model": "gpt-4.1",
            "usage": {"input_tokens": 4, "output_tokens": 1}}});
        served.record(
            Kind::Completions,
            &Reply::sse(vec![sse_data(&event.to_string())]),
            12,
        );
        let embed = json!({"model": "text-embedding-3-small", "usage": {"prompt_tokens": 6}});
        served.record(Kind::Embeddings, &Reply::json(embed), 13);
        served.record(
            Kind::Completions,
            &Reply::json(json!({"status": "queued"})),
            14,
        );
        let got: Vec<(&str, u64, u64, u64)> = served
            .rows()
            .iter()
            .map(|r| (r.model.as_str(), r.input, r.cached, r.output))
            .collect();
        assert_eq!(
            got,
            [
                ("gpt-4o-mini", 9, 2, 3),
                ("gpt-4o", 5, 0, 7),
                ("gpt-4.1", 4, 0, 1),
                ("text-embedding-3-small", 6, 0, 0)
            ]
        );
        assert_eq!(served.rows()[3].kind, Kind::Embeddings);
    }
}
