//! `llmkit extract`: per input, an object valid against the user's JSON Schema.

use anyhow::Result;

use crate::app::Ctx;
use crate::cli::ExtractArgs;
use crate::commands::tasks::{emit, finish, read_inputs, runner};
use crate::error::CliError;
use crate::input;

pub(crate) async fn run(ctx: &Ctx, args: ExtractArgs) -> Result<()> {
    let schema_text = input::read_text_file(&args.schema)?;
    let schema: serde_json::Value = serde_json::from_str(&schema_text).map_err(|e| {
        CliError::usage(
            format!("invalid JSON Schema: {} is not valid JSON: {e}", args.schema.display()),
            "--schema takes a JSON Schema file such as {\"type\": \"object\", \"properties\": {...}}",
        )
    })?;
    llmkit_tasks::check_schema(&schema)?;
    let items = read_inputs(&args.input.inputs, args.input.html)?;
    let r = runner(
        ctx,
        &args.input.model,
        args.input.context_window,
        "extract",
        Some(&args.structured),
        &args.input.tools,
    )
    .await?;
    let mut results = Vec::new();
    for item in &items {
        let v = llmkit_tasks::extract(&r, &item.text, &schema).await?;
        let text = serde_json::to_string_pretty(&v)?;
        results.push((item.name.clone(), v, text));
    }
    finish(ctx, &r);
    emit(&results, args.input.json)
}
