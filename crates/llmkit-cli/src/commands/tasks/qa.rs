//! `llmkit qa`: a question answered from `--context` files only, with the supporting quote.

use anyhow::Result;

use crate::app::Ctx;
use crate::cli::QaArgs;
use crate::commands::tasks::{finish, joined, read_inputs, runner};
use crate::error::CliError;
use crate::output;

pub(crate) async fn run(ctx: &Ctx, args: QaArgs) -> Result<()> {
    let question = args.question.join(" ");
    if question.trim().is_empty() {
        return Err(CliError::usage("the question is empty", "pass a QUESTION argument").into());
    }
    if let Some(name) = &args.kb.kb {
        if args.tools.any() {
            return Err(CliError::usage(
                "tools cannot be combined with --kb",
                "answer from the knowledge base without tools, or pass --context files",
            )
            .into());
        }
        let one = crate::commands::kb::grounded::OneShot {
            command: "qa",
            model: &args.model,
            system: None,
            kb_args: &args.kb,
            json: args.json,
        };
        return crate::commands::kb::grounded::answer_once(ctx, name, &question, one).await;
    }
    let rules = crate::commands::kb::rules::load(args.kb.rules.as_deref())?;
    let items = read_inputs(&args.context, false)?;
    let context = joined(&items);
    let mut r = runner(
        ctx,
        &args.model,
        args.context_window,
        "qa",
        Some(&args.structured),
        &args.tools,
    )
    .await?;
    if let Some(rb) = &rules {
        r = r.system_suffix(rb.prompt());
    }
    let a = llmkit_tasks::qa(&r, &context, &question).await?;
    finish(ctx, &r);
    let violations = crate::commands::kb::rules::check(rules.as_ref(), &a.answer);
    if args.json {
        let mut v = serde_json::to_value(&a)?;
        if rules.is_some() {
            v["rule_violations"] = serde_json::to_value(&violations)?;
        }
        return output::json(&v);
    }
    output::line(&a.answer)?;
    if a.found {
        output::line(&format!("> {}", a.quote.trim()))?;
    }
    Ok(())
}
