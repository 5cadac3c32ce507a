//! `llmkit qa`: a question answered from `--context` files only, with the supporting quote.

use anyhow::Result;

use crate::app::Ctx;
use crate::cli::QaArgs;
use crate::commands::tasks::{finish, joined, read_inputs, runner, task_error};
use crate::error::CliError;
use crate::output;

pub async fn run(ctx: &Ctx, args: QaArgs) -> Result<()> {
    let question = args.question.join(" ");
    if question.trim().is_empty() {
        return Err(CliError::usage("the question is empty", "pass a QUESTION argument").into());
    }
    let items = read_inputs(&args.context, false)?;
    let context = joined(&items);
    let r = runner(
        ctx,
        &args.model,
        args.context_window,
        "qa",
        Some(&args.structured),
    )
    .await?;
    let a = llmkit_tasks::qa(&r, &context, &question)
        .await
        .map_err(task_error)?;
    finish(ctx, &r);
    if args.json {
        return output::json(&a);
    }
    output::line(&a.answer)?;
    if a.found {
        output::line(&format!("> {}", a.quote.trim()))?;
    }
    Ok(())
}
