//! Shared request building for generating commands: sampling flags, the pre-flight
//! context-window check, and the JSON result shape.

use std::time::Duration;

use llmkit_client::ChatResult;
use llmkit_types::{ChatCompletionRequest, Stop, Usage};
use serde_json::{Value, json};

use crate::app::Ctx;
use crate::cli::ModelArgs;
use crate::error::CliError;

/// Applies the sampling flags to a chat request.
pub fn apply_sampling(
    mut req: ChatCompletionRequest,
    args: &ModelArgs,
) -> Result<ChatCompletionRequest, CliError> {
    req.temperature = args.temperature;
    req.top_p = args.top_p;
    req.max_tokens = args.max_tokens;
    req.seed = args.seed;
    req.stop = stop_of(args)?;
    Ok(req)
}

/// The `stop` field from repeated `--stop` flags (at most four, as OpenAI allows).
pub fn stop_of(args: &ModelArgs) -> Result<Option<Stop>, CliError> {
    if args.stop.len() > 4 {
        return Err(CliError::usage(
            format!(
                "{} stop sequences given; the API accepts at most 4",
                args.stop.len()
            ),
            "pass --stop at most four times",
        ));
    }
    if args.stop.iter().any(String::is_empty) {
        return Err(CliError::usage(
            "an empty --stop sequence",
            "give --stop some text",
        ));
    }
    Ok((!args.stop.is_empty()).then(|| Stop::Many(args.stop.clone())))
}

/// Refuses, before anything is sent, a prompt that cannot fit a known remote model's
/// context window, showing the token count against the limit.
pub fn check_context(ctx: &Ctx, req: &ChatCompletionRequest) -> Result<(), CliError> {
    if req.model.starts_with("local:") {
        return Ok(());
    }
    let Some(info) = ctx.settings.models.info(&req.model) else {
        return Ok(());
    };
    let prompt = llmkit_client::count_chat_tokens(&req.model, &req.messages) as u64;
    let budget = u64::from(req.output_budget().unwrap_or(0));
    let window = u64::from(info.context_window);
    if prompt + budget > window {
        return Err(CliError::usage(
            format!(
                "context length exceeded: the prompt is {prompt} tokens{} but {}'s context window is {window} tokens",
                if budget > 0 {
                    format!(" + {budget} for output")
                } else {
                    String::new()
                },
                req.model
            ),
            "shorten the input, lower --max-tokens, or use a model with a larger context window",
        ));
    }
    Ok(())
}

/// The `--json` result shared by `ask`, `complete` and the local backend: `text` (or
/// `choices` when n > 1), `finish_reason`, `usage`, `model`, `latency_ms`, `request_id`.
pub fn result_json(backend: &str, res: &ChatResult, n: u32) -> Value {
    let resp = &res.response;
    let meta = &res.meta;
    let usage = resp.usage.clone().unwrap_or_else(|| Usage::new(0, 0));
    let mut out = serde_json::Map::new();
    if n > 1 {
        let choices: Vec<Value> = resp
            .choices
            .iter()
            .map(|c| {
                json!({
                    "index": c.index,
                    "text": c.message.content.clone().unwrap_or_default(),
                    "finish_reason": c.finish_reason,
                })
            })
            .collect();
        out.insert("choices".into(), Value::Array(choices));
    } else {
        out.insert("text".into(), json!(resp.text()));
        out.insert("finish_reason".into(), json!(resp.finish_reason()));
    }
    out.insert("usage".into(), json!(usage));
    out.insert("model".into(), json!(resp.model));
    out.insert("latency_ms".into(), json!(millis(meta.latency)));
    if let Some(t) = meta.ttft {
        out.insert("ttft_ms".into(), json!(millis(t)));
    }
    out.insert("request_id".into(), json!(meta.request_id));
    out.insert("backend".into(), json!(backend));
    out.insert("attempts".into(), json!(meta.attempts));
    out.insert("cached".into(), json!(res.cache_hit));
    Value::Object(out)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
