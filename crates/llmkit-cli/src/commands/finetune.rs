//! `llmkit finetune`: the subcommands, and `validate`, which checks chat fine-tuning JSONL
//! before upload and estimates the tokens and cost of one epoch. The remote jobs are in
//! `finetune_jobs.rs`, the export of sessions in `finetune_export.rs`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_eval::{FinetuneReport, Severity, validate_chat_jsonl};
use llmkit_tasks::TokenCounter;
use serde_json::json;

use crate::app::Ctx;
use crate::error::CliError;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct FinetuneArgs {
    #[command(subcommand)]
    pub command: FinetuneCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FinetuneCommand {
    /// Check a chat fine-tuning JSONL file: format, roles and order, an assistant message
    /// per example, at least 10 examples, the token limit, duplicates; count tokens.
    Validate(ValidateArgs),
    /// Validate, upload and start a fine-tuning job; prints the job id.
    Create(crate::commands::finetune_jobs::CreateArgs),
    /// Show a job's events and training metrics live until it ends; prints the model name.
    Follow(crate::commands::finetune_jobs::FollowArgs),
    /// List fine-tuning jobs, newest first.
    List(crate::commands::finetune_jobs::ListArgs),
    /// Show one job (and its checkpoints).
    Show(crate::commands::finetune_jobs::JobArgs),
    /// Cancel a job that has not finished.
    Cancel(crate::commands::finetune_jobs::JobArgs),
    /// Print a job's events, oldest first.
    Events(crate::commands::finetune_jobs::EventsArgs),
    /// Export stored chat sessions as training JSONL.
    FromSessions(crate::commands::finetune_export::FromSessionsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The JSONL file (one `{"messages": [...]}` per line).
    pub file: PathBuf,
    /// The model to be tuned (for token counting and prices).
    #[arg(short, long, default_value = "gpt-4o-mini")]
    pub model: String,
    /// The per-example token limit of that model (longer examples are truncated).
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_tokens_per_example: u64,
    /// Training price in USD per million tokens, when the catalogue has none.
    #[arg(long, value_name = "USD")]
    pub training_price: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: FinetuneArgs) -> Result<()> {
    use crate::commands::{finetune_export, finetune_jobs};
    match args.command {
        FinetuneCommand::Validate(a) => validate(&a),
        FinetuneCommand::Create(a) => finetune_jobs::create(ctx, a).await,
        FinetuneCommand::Follow(a) => finetune_jobs::follow(ctx, a).await,
        FinetuneCommand::List(a) => finetune_jobs::list(ctx, a).await,
        FinetuneCommand::Show(a) => finetune_jobs::show(ctx, a).await,
        FinetuneCommand::Cancel(a) => finetune_jobs::cancel(ctx, a).await,
        FinetuneCommand::Events(a) => finetune_jobs::events(ctx, a).await,
        FinetuneCommand::FromSessions(a) => finetune_export::from_sessions(ctx, &a),
    }
}

/// Validates a training file: the report, or a usage error when it cannot be read.
pub(crate) fn check_file(file: &Path, model: &str, limit: u64) -> Result<FinetuneReport> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::usage(
            format!("cannot read {}: {e}", file.display()),
            "pass a JSONL file of chat examples",
        )
    })?;
    let counter = TokenCounter::for_model(model);
    let count = |t: &str| counter.count(t);
    Ok(validate_chat_jsonl(&text, &count, limit))
}

/// `FILE:LINE: error: message` lines, one per finding.
pub(crate) fn findings_text(file: &Path, report: &FinetuneReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let at = if f.line == 0 {
            file.display().to_string()
        } else {
            format!("{}:{}", file.display(), f.line)
        };
        out.push_str(&format!("{at}: {sev}: {}\n", f.message));
    }
    out
}

/// The error for a file with errors in its report.
pub(crate) fn invalid_file(file: &Path, report: &FinetuneReport) -> anyhow::Error {
    let first = report
        .findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .map(|f| format!(" (first: line {}: {})", f.line, f.message))
        .unwrap_or_default();
    CliError::failure(
        format!(
            "{} is not valid fine-tuning data: {} error(s){first}",
            file.display(),
            report.errors()
        ),
        Some("fix the errors listed above (line numbers are 1-based)".to_string()),
    )
    .into()
}

fn validate(args: &ValidateArgs) -> Result<()> {
    let report = check_file(&args.file, &args.model, args.max_tokens_per_example)?;
    // A price given on the command line wins over the built-in training prices.
    let cost = args
        .training_price
        .or_else(|| llmkit_client::training_price_per_mtok(&args.model))
        .map(|p| report.billed_tokens_per_epoch as f64 * p / 1e6);
    if args.json {
        output::json(&json!({
            "file": args.file.display().to_string(),
            "model": args.model,
            "report": report,
            "cost_per_epoch_usd": cost,
        }))?;
    } else {
        let mut out = findings_text(&args.file, &report);
        out.push_str(&format!(
            "{} examples, {} tokens ({} billed per epoch), longest example {} tokens\n",
            report.examples,
            report.total_tokens,
            report.billed_tokens_per_epoch,
            report.max_example_tokens
        ));
        out.push_str(&match cost {
            Some(c) => format!("estimated cost per epoch: ${c:.4}\n"),
            None => format!(
                "estimated cost per epoch: unknown (no training price for {}; pass \
                 --training-price USD_PER_MTOK)\n",
                args.model
            ),
        });
        out.push_str(&format!(
            "{} error(s), {} warning(s)\n",
            report.errors(),
            report.warnings()
        ));
        output::write(&out)?;
    }
    if report.errors() > 0 {
        return Err(invalid_file(&args.file, &report));
    }
    Ok(())
}
