//! `llmkit ask`: one question, answered streamed, whole, or as JSON.

use anyhow::Result;
use futures::StreamExt;
use llmkit_tools::Toolbox;
use llmkit_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, FinishReason, REASONING_FIELD,
    REASONING_ITEMS_FIELD, ResponseFormat,
};
use serde_json::Value;

use crate::app::PipelineSpec;
use crate::app::{Ctx, notice};
use crate::cli::AskArgs;
use crate::commands::request::{apply_sampling, check_context, result_json, stop_of};
use crate::commands::{attach, chat, roles, tools};
use crate::error::CliError;
use crate::{input, output};

/// Asks, recording the turn as a conversation (`-c`/`--cid` continue one).
pub(crate) async fn run(ctx: &Ctx, mut args: AskArgs) -> Result<()> {
    let prompt = input::prompt_from(args.prompt.as_deref())?;
    let format = response_format(args.format.as_deref())?;
    if let Some(name) = args.role.clone() {
        let (role, _) = roles::load(ctx, &name)?;
        role.apply_defaults(&mut args.model);
        if args.system.is_none() {
            args.system = Some(role.system_prompt()?);
        }
        if args.kb.kb.is_none() {
            args.kb.kb.clone_from(&role.kb);
        }
    }
    // Reject bad flag combinations before a model is loaded or a request sent.
    stop_of(&args.model)?;
    if let Some(name) = args.kb.kb.clone() {
        if !args.attach.attach.is_empty() {
            return Err(CliError::usage(
                "--attach cannot be combined with --kb",
                "ask about the attachment without --kb, or add the document to the knowledge base (`llmkit kb add`)",
            )
            .into());
        }
        return crate::commands::kb::ask(ctx, &args, &name, &prompt).await;
    }
    let rules = crate::commands::kb::rules::load(args.kb.rules.as_deref())?;
    // Tools are checked (files parsed, commands found, MCP servers started) before a
    // conversation is touched or a request sent.
    let toolbox = if args.tools.any() {
        Some(tools::open(ctx, &args.tools).await?)
    } else {
        None
    };
    let store = ctx.store()?;
    let existing = if args.continue_last {
        Some(store.latest_session()?.ok_or_else(|| {
            CliError::usage(
                "there is no previous conversation to continue",
                "ask without -c to start one",
            )
        })?)
    } else if let Some(id) = &args.cid {
        Some(store.get_session(id)?)
    } else {
        None
    };
    let model_flag = args
        .model
        .model
        .clone()
        .or_else(|| existing.as_ref().and_then(|s| s.model.clone()));
    let mut opened = ctx.open_chat(model_flag.as_deref()).await?;
    if args.background {
        opened.backend = background(opened.backend)?;
    }
    // Attachments are read and checked for the model before the conversation is touched.
    let attachments = attach::parts(
        ctx,
        &args.attach,
        &args.attach.attach,
        &opened.model,
        &opened.backend,
    )?;
    let fresh = existing.is_none();
    let mut session = match existing {
        Some(mut s) => {
            if args.system.is_some() {
                s.system.clone_from(&args.system);
            }
            s
        }
        None => store.create_session(None, "ask", Some(&opened.model), args.system.as_deref())?,
    };
    session.model = Some(opened.model.clone());
    store.update_session(&session)?;
    let user_id = if attachments.is_empty() {
        store.add_message(&session.id, "user", &prompt)?
    } else {
        let mut parts = vec![ContentPart::Text {
            text: prompt.clone(),
        }];
        parts.extend(attachments);
        store.add_chat_message(&session.id, &ChatMessage::user_parts(parts))?
    };
    let pipe = ctx.pipeline(
        opened.backend,
        PipelineSpec::new("ask").in_session(session.id.clone()),
    )?;
    let mut transcript = Vec::new();
    let result = async {
        let reserve = args.model.max_tokens.unwrap_or(0);
        let mut messages =
            chat::fit_history(ctx, &pipe, &store, &mut session, &opened.model, reserve).await?;
        if let Some(r) = &rules {
            crate::commands::kb::grounded::append_system(&mut messages, &r.prompt());
        }
        let mut req = ChatCompletionRequest::new(opened.model.clone(), messages);
        req = apply_sampling(req, &args.model)?;
        if args.n > 1 {
            req.n = Some(args.n);
        }
        req.response_format = format;
        if args.background {
            req.extra.insert("background".into(), Value::Bool(true));
        }
        check_context(ctx, &req)?;
        let tools = toolbox.as_ref().map(|t| (t, &mut transcript));
        answer(ctx, &args, &pipe, &req, rules.as_ref(), tools).await
    }
    .await;
    // Tool calls that ran stay in the conversation, whatever happened after them.
    for m in &transcript {
        store.add_chat_message(&session.id, m)?;
    }
    match result {
        Ok((text, reasoning)) => {
            crate::commands::kb::rules::check(rules.as_ref(), &text);
            if !text.is_empty() {
                chat::store_reply(&store, &session.id, &text, reasoning)?;
            }
            Ok(())
        }
        Err(e) if !transcript.is_empty() => Err(e),
        Err(e) => {
            // A failed turn leaves no trace in the conversation (the ledger keeps it).
            let _ = if fresh {
                store.delete_session(&session.id).map(|_| ())
            } else {
                store.truncate_messages(&session.id, user_id)
            };
            Err(e)
        }
    }
}

/// Sends the request and prints the answer; returns the (first) answer's text and the
/// encrypted reasoning items that came with it (Responses API), for the session.
async fn answer(
    ctx: &Ctx,
    args: &AskArgs,
    pipe: &llmkit_client::Pipeline,
    req: &ChatCompletionRequest,
    rules: Option<&llmkit_kb::RuleBase>,
    tools: Option<(&Toolbox, &mut Vec<ChatMessage>)>,
) -> Result<(String, Option<Value>)> {
    if tools.is_some() || args.json || args.no_stream || args.background || args.n > 1 {
        // With tools every step is a whole answer: a call's arguments are restored and
        // checked before the tool runs.
        let (res, tool_use) = match tools {
            Some((toolbox, transcript)) => {
                let done =
                    tools::run(pipe, toolbox, &args.tools, false, req.clone(), transcript).await?;
                (done.result, Some((done.steps, done.calls)))
            }
            None => (pipe.chat(req).await?, None),
        };
        ctx.show_redactions(&res.redactions);
        if ctx.settings.client.show_reasoning && !args.json {
            let first = res.response.choices.first();
            if let Some(Value::String(r)) = first.and_then(|c| c.message.extra.get(REASONING_FIELD))
            {
                notice(r.trim_end());
            }
        }
        let text = res.response.text().to_string();
        let reasoning = res
            .response
            .choices
            .first()
            .and_then(|c| c.message.extra.get(REASONING_ITEMS_FIELD))
            .cloned();
        if args.json {
            let mut v = result_json(pipe.backend().kind(), &res, args.n);
            if let Some(r) = rules {
                v["rule_violations"] = serde_json::json!(r.check(&text));
            }
            if let Some((steps, calls)) = tool_use {
                v["tools"] = serde_json::json!({"steps": steps, "calls": calls});
            }
            output::json(&v)?;
            return Ok((text, reasoning));
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
        return Ok((text, reasoning));
    }

    let mut stream = pipe.chat_stream(req).await?;
    ctx.show_redactions(stream.redactions());
    // Whether the output so far ends a line, so the final newline is added only once.
    let mut at_line_start = true;
    // Whether a reasoning summary was shown on stderr and its line is still open.
    let mut reasoning_open = false;
    let mut finish = None;
    let mut answer = String::new();
    let mut reasoning: Vec<Value> = Vec::new();
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
        if ctx.settings.client.show_reasoning
            && let Some(Value::String(r)) = chunk
                .choices
                .first()
                .and_then(|c| c.delta.extra.get(REASONING_FIELD))
        {
            crate::app::notice_part(r);
            reasoning_open = true;
        }
        if let Some(text) = chunk.delta_text()
            && !text.is_empty()
        {
            if std::mem::take(&mut reasoning_open) {
                crate::app::notice_part("\n");
            }
            output::write(text)?;
            answer.push_str(text);
            at_line_start = text.ends_with('\n');
        }
        if let Some(Value::Array(items)) = chunk
            .choices
            .first()
            .and_then(|c| c.delta.extra.get(REASONING_ITEMS_FIELD))
        {
            reasoning.extend(items.iter().cloned());
        }
        if let Some(f) = chunk.choices.first().and_then(|c| c.finish_reason.clone()) {
            finish = Some(f);
        }
    }
    if !at_line_start {
        output::write("\n")?;
    }
    warn_if_cut(finish.as_ref());
    Ok((
        answer,
        (!reasoning.is_empty()).then_some(Value::Array(reasoning)),
    ))
}

/// The backend for `--background`: an HTTP one whose background response Ctrl-C cancels
/// at the server (the first Ctrl-C; a second one ends the process at once).
fn background(backend: llmkit_client::Backend) -> Result<llmkit_client::Backend> {
    if backend.kind() != "http" {
        return Err(CliError::usage(
            "--background needs an API model (the Responses API's background mode)",
            "drop --background for the embedded local model",
        )
        .into());
    }
    let token = tokio_util::sync::CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            notice("cancelling the background response (Ctrl-C again to quit at once)");
            fire.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(crate::error::EXIT_INTERRUPTED);
            }
        }
    });
    Ok(backend.with_interrupt(token))
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
    // A schema the validator refuses would only fail on the server (or pass unchecked).
    llmkit_tasks::check_schema(&schema).map_err(|e| {
        CliError::usage(
            format!("{arg}: {e}"),
            e.hint().unwrap_or_else(|| "fix the JSON Schema".into()),
        )
    })?;
    Ok(Some(ResponseFormat::json_schema("response", schema)))
}

fn warn_if_cut(finish: Option<&FinishReason>) {
    if finish == Some(&FinishReason::Length) {
        notice("note: the answer was cut at the token limit (raise --max-tokens for more)");
    }
}
