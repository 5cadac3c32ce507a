//! `llmkit complete`: continue a prompt through `/v1/completions`, falling back to chat when
//! the server or model has no completions endpoint.

use anyhow::Result;
use llmkit_client::{ChatResult, ClientError, Pipeline, Response};
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, CompletionRequest,
    ResponseMessage,
};

use crate::app::PipelineSpec;
use crate::app::{Ctx, notice};
use crate::cli::CompleteArgs;
use crate::commands::request::{result_json, stop_of};
use crate::{input, output};

/// The instruction used when a chat model stands in for a completions endpoint.
const CONTINUE_INSTRUCTION: &str = "Continue the user's text. Reply with the continuation only, \
without repeating the text and without any commentary.";

pub(crate) async fn run(ctx: &Ctx, args: CompleteArgs) -> Result<()> {
    let prompt = if args.prompt == "-" {
        input::read_stdin()?
    } else {
        args.prompt.clone()
    };
    if prompt.is_empty() {
        return Err(crate::error::CliError::usage(
            "the prompt is empty",
            "pass the text to continue as PROMPT",
        )
        .into());
    }
    let stop = stop_of(&args.model)?;
    let opened = ctx.open_chat(args.model.model.as_deref()).await?;
    let mut req = CompletionRequest::new(opened.model.clone(), prompt.clone());
    req.max_tokens = args.model.max_tokens;
    req.temperature = args.model.temperature;
    req.top_p = args.model.top_p;
    req.seed = args.model.seed;
    req.stop = stop;
    if args.n > 1 {
        req.n = Some(args.n);
    }

    let kind = opened.backend.kind();
    let res = match opened.backend.completions(&req).await {
        Ok(r) => as_chat_shape(r),
        Err(e) if no_completions_endpoint(&e) => {
            notice("the server has no completions endpoint for this model; using chat instead");
            let pipe = ctx.pipeline(opened.backend, PipelineSpec::new("complete"))?;
            chat_fallback(&pipe, &req, prompt).await?
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        return output::json(&result_json(kind, &res, args.n));
    }
    for (i, c) in res.response.choices.iter().enumerate() {
        if i > 0 {
            output::line("\n---")?;
        }
        let text = c.message.content.as_deref().unwrap_or("");
        output::write(text)?;
        if !text.ends_with('\n') {
            output::write("\n")?;
        }
    }
    Ok(())
}

/// 404/405 (but not an unknown model), or OpenAI's "this is a chat model" 400/404.
fn no_completions_endpoint(e: &ClientError) -> bool {
    if e.is_model_not_found() {
        return false;
    }
    let message = e
        .api_error()
        .map(|b| b.message.to_lowercase())
        .unwrap_or_default();
    matches!(e.status(), Some(404 | 405 | 501))
        || message.contains("not supported in the v1/completions")
        || message.contains("chat model")
}

async fn chat_fallback(
    pipe: &Pipeline,
    req: &CompletionRequest,
    prompt: String,
) -> Result<ChatResult> {
    let mut chat = ChatCompletionRequest::new(
        req.model.clone(),
        vec![
            ChatMessage::system(CONTINUE_INSTRUCTION),
            ChatMessage::user(prompt),
        ],
    );
    chat.max_tokens = req.max_tokens;
    chat.temperature = req.temperature;
    chat.top_p = req.top_p;
    chat.n = req.n;
    chat.stop = req.stop.clone();
    chat.seed = req.seed;
    Ok(pipe.chat(&chat).await?)
}

/// Puts a completions response in the chat shape so output code is shared.
fn as_chat_shape(r: Response<llmkit_types::CompletionResponse>) -> ChatResult {
    let body = r.body;
    let choices = body
        .choices
        .into_iter()
        .map(|c| Choice {
            index: c.index,
            message: ResponseMessage {
                content: Some(c.text),
                ..ResponseMessage::default()
            },
            finish_reason: c.finish_reason,
            logprobs: c.logprobs,
        })
        .collect();
    ChatResult {
        response: ChatCompletionResponse {
            id: body.id,
            created: body.created,
            model: body.model,
            choices,
            usage: body.usage,
            system_fingerprint: body.system_fingerprint,
            ..ChatCompletionResponse::default()
        },
        meta: r.meta,
        cache_hit: false,
        redactions: Vec::new(),
    }
}
