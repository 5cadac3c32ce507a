//! `llmkit finetune validate`: checks chat fine-tuning JSONL before upload and estimates
//! the tokens and cost of one epoch.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_eval::{Severity, validate_chat_jsonl};
use llmkit_tasks::TokenCounter;
use serde_json::json;

use crate::app::Ctx;
use crate::error::CliError;
use crate::output;

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    #[command(subcommand)]
    pub command: FinetuneCommand,
}

#[derive(Debug, Subcommand)]
pub enum FinetuneCommand {
    /// Check a chat fine-tuning JSONL file: format, roles and order, an assistant message
    /// per example, at least 10 examples, the token limit, duplicates; count tokens.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
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

pub fn run(_ctx: &Ctx, args: FinetuneArgs) -> Result<()> {
    match args.command {
        FinetuneCommand::Validate(a) => validate(&a),
    }
}

fn validate(args: &ValidateArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        CliError::usage(
            format!("cannot read {}: {e}", args.file.display()),
            "pass a JSONL file of chat examples",
        )
    })?;
    let counter = TokenCounter::for_model(&args.model);
    let count = |t: &str| counter.count(t);
    let report = validate_chat_jsonl(&text, &count, args.max_tokens_per_example);
    // The model catalogue carries inference prices only, so training cost needs a flag.
    let cost = args
        .training_price
        .map(|p| report.billed_tokens_per_epoch as f64 * p / 1e6);
    if args.json {
        output::json(&json!({
            "file": args.file.display().to_string(),
            "model": args.model,
            "report": report,
            "cost_per_epoch_usd": cost,
        }))?;
    } else {
        let mut out = String::new();
        for f in &report.findings {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let at = if f.line == 0 {
                args.file.display().to_string()
            } else {
                format!("{}:{}", args.file.display(), f.line)
            };
            out.push_str(&format!("{at}: {sev}: {}\n", f.message));
        }
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
        return Err(CliError::failure(
            format!("{} is not valid fine-tuning data", args.file.display()),
            Some("fix the errors listed above (line numbers are 1-based)".to_string()),
        )
        .into());
    }
    Ok(())
}
