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
pub(super) fn apply_sampling(
    mut req: ChatCompletionRequest,
    args: &ModelArgs,
) -> Result<ChatCompletionRequest, CliError> {
    req.temperature = args.temperature;
    req.top_p = args.top_p;
    req.max_tokens = args.max_tokens;
    req.seed = args.seed;
    req.stop = stop_of(args)?;
    if let Some(e) = &args.reasoning_effort {
        req.reasoning_effort = Some(e.clone());
    }
    if let Some(t) = &args.service_tier {
        req.service_tier = Some(t.clone());
    }
    if let Some(v) = &args.verbosity {
        req.extra
            .insert("verbosity".into(), Value::String(v.clone()));
    }
    apply_options(req, &args.options)
}

/// Applies `-o KEY=VALUE` request fields: VALUE as JSON when it parses, else as a string.
/// The request goes through its JSON form so that a known field (`-o temperature=0.2`) lands
/// in its typed slot and is checked like the body an SDK would send.
pub(super) fn apply_options(
    req: ChatCompletionRequest,
    options: &[String],
) -> Result<ChatCompletionRequest, CliError> {
    if options.is_empty() {
        return Ok(req);
    }
    let mut body = serde_json::to_value(&req)
        .map_err(|e| CliError::failure(format!("cannot encode the request: {e}"), None))?;
    for opt in options {
        let (key, value) = parse_option(opt)?;
        if let Value::Object(map) = &mut body {
            map.insert(key, value);
        }
    }
    serde_json::from_value(body).map_err(|e| {
        CliError::usage(
            format!("a -o value does not fit its field: {e}"),
            "check the field's type in the API reference (numbers and booleans unquoted)",
        )
    })
}

/// One `-o KEY=VALUE`: the key, and the value as JSON when it parses, else as a string.
fn parse_option(opt: &str) -> Result<(String, Value), CliError> {
    let Some((key, raw)) = opt.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
        return Err(CliError::usage(
            format!("-o `{opt}` is not KEY=VALUE"),
            "write request fields as -o KEY=VALUE, e.g. -o logprobs=true",
        ));
    };
    let key = key.trim();
    if matches!(key, "model" | "messages" | "stream") {
        return Err(CliError::usage(
            format!("-o cannot set `{key}`"),
            "use -m for the model; messages and streaming are set by the command",
        ));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

/// The request fields beyond sampling that the flags set (`--reasoning-effort`,
/// `--verbosity`, `--service-tier`, `-o`), checked against the request type, for commands
/// that build their requests elsewhere (batch rows).
pub(super) fn extra_fields(args: &ModelArgs) -> Result<serde_json::Map<String, Value>, CliError> {
    let probe = ChatCompletionRequest::new("probe", Vec::new());
    apply_sampling(probe, args)?;
    let mut out = serde_json::Map::new();
    let named = [
        ("reasoning_effort", &args.reasoning_effort),
        ("verbosity", &args.verbosity),
        ("service_tier", &args.service_tier),
    ];
    for (key, value) in named {
        if let Some(v) = value {
            out.insert(key.to_string(), Value::String(v.clone()));
        }
    }
    for opt in &args.options {
        let (key, value) = parse_option(opt)?;
        out.insert(key, value);
    }
    Ok(out)
}

/// The `stop` field from repeated `--stop` flags (at most four, as OpenAI allows).
pub(super) fn stop_of(args: &ModelArgs) -> Result<Option<Stop>, CliError> {
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
pub(super) fn check_context(ctx: &Ctx, req: &ChatCompletionRequest) -> Result<(), CliError> {
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
pub(super) fn result_json(backend: &str, res: &ChatResult, n: u32) -> Value {
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

#[cfg(test)]
mod tests {
    use llmkit_types::ChatMessage;

    use super::*;

    #[test]
    fn options_land_in_typed_fields_or_extra() {
        let req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        let opts = [
            "temperature=0.25".to_string(),
            "logprobs=true".to_string(),
            "prompt_cache_key=team-a".to_string(),
            r#"metadata={"team":"a"}"#.to_string(),
        ];
        let req = apply_options(req, &opts).unwrap();
        assert_eq!(req.temperature, Some(0.25));
        assert_eq!(req.logprobs, Some(true));
        assert_eq!(req.extra["prompt_cache_key"], "team-a");
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["metadata"]["team"], "a");
        for bad in ["novalue", "=x", "model=gpt-4o", "temperature=\"hot\""] {
            let req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
            assert!(apply_options(req, &[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
