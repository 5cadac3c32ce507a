//! `llmkit ask`: one question, answered streamed, whole, or as JSON.

use anyhow::Result;
use futures::StreamExt;
use llmkit_types::{ChatCompletionRequest, FinishReason, ResponseFormat};

use crate::app::{Ctx, notice};
use crate::cli::AskArgs;
use crate::commands::request::{apply_sampling, check_context, one_shot, result_json, stop_of};
use crate::error::CliError;
use crate::{input, output};

pub async fn run(ctx: &Ctx, args: AskArgs) -> Result<()> {
    let prompt = input::prompt_from(args.prompt.as_deref())?;
    let format = response_format(args.format.as_deref())?;
    // Reject bad flag combinations before a model is loaded or a request sent.
    stop_of(&args.model)?;
    let opened = ctx.open_chat(args.model.model.as_deref()).await?;
    let mut req = ChatCompletionRequest::new(
        opened.model.clone(),
        one_shot(args.system.as_deref(), prompt),
    );
    req = apply_sampling(req, &args.model)?;
    if args.n > 1 {
        req.n = Some(args.n);
    }
    req.response_format = format;
    check_context(ctx, &req)?;

    let pipe = ctx.pipeline(opened.backend, "ask")?;
    if args.json || args.no_stream || args.n > 1 {
        let res = pipe.chat(&req).await?;
        ctx.show_redactions(&res.redactions);
        if args.json {
            return output::json(&result_json(pipe.backend().kind(), &res, args.n));
        }
        if args.n > 1 {
            for (i, c) in res.response.choices.iter().enumerate() {
                if i > 0 {
                    output::line("")?;
                }
                output::line(&format!("[{}]", c.index + 1))?;
                output::line(c.message.content.as_deref().unwrap_or("").trim_end())?;
            }
        } else {
            output::line(res.response.text().trim_end())?;
        }
        warn_if_cut(res.response.finish_reason());
        return Ok(());
    }

    let mut stream = pipe.chat_stream(&req).await?;
    ctx.show_redactions(stream.redactions());
    // Whether the output so far ends a line, so the final newline is added only once.
    let mut at_line_start = true;
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // Keep what was printed on its own line before the error.
                if !at_line_start {
                    output::write("\n")?;
                }
                return Err(e.into());
            }
        };
        if let Some(text) = chunk.delta_text() {
            if !text.is_empty() {
                output::write(text)?;
                at_line_start = text.ends_with('\n');
            }
        }
        if let Some(f) = chunk.choices.first().and_then(|c| c.finish_reason.clone()) {
            finish = Some(f);
        }
    }
    if !at_line_start {
        output::write("\n")?;
    }
    warn_if_cut(finish.as_ref());
    Ok(())
}

/// `--format json` asks for any JSON object; `--format FILE.json` for JSON valid against the
/// schema in FILE.
fn response_format(arg: Option<&str>) -> Result<Option<ResponseFormat>, CliError> {
    let Some(arg) = arg else { return Ok(None) };
    if arg == "json" {
        return Ok(Some(ResponseFormat::JsonObject));
    }
    if arg == "text" {
        return Ok(Some(ResponseFormat::Text));
    }
    let text = input::read_text_file(std::path::Path::new(arg))?;
    let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CliError::usage(
            format!("{arg} is not valid JSON: {e}"),
            "--format takes `json`, `text`, or a JSON Schema file",
        )
    })?;
    if !schema.is_object() {
        return Err(CliError::usage(
            format!("{arg} does not hold a JSON Schema object"),
            "a schema file holds an object such as {\"type\": \"object\", \"properties\": {...}}",
        ));
    }
    Ok(Some(ResponseFormat::json_schema("response", schema)))
}

fn warn_if_cut(finish: Option<&FinishReason>) {
    if finish == Some(&FinishReason::Length) {
        notice("note: the answer was cut at the token limit (raise --max-tokens for more)");
    }
}
