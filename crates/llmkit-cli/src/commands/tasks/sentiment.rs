//! `llmkit sentiment`: label, score and evidence per input, as validated JSON.

use anyhow::Result;

use crate::app::Ctx;
use crate::cli::SentimentArgs;
use crate::commands::tasks::{emit, finish, read_inputs, runner};

pub(crate) async fn run(ctx: &Ctx, args: SentimentArgs) -> Result<()> {
    let items = read_inputs(&args.input.inputs, args.input.html)?;
    let r = runner(
        ctx,
        &args.input.model,
        args.input.context_window,
        "sentiment",
        Some(&args.structured),
        &args.input.tools,
    )
    .await?;
    let mut results = Vec::new();
    for item in &items {
        let s = llmkit_tasks::sentiment(&r, &item.text).await?;
        let text = if s.evidence.is_empty() {
            format!("{} ({:.2})", s.label, s.score)
        } else {
            format!(
                "{} ({:.2})\nevidence: {}",
                s.label,
                s.score,
                s.evidence
                    .iter()
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        results.push((item.name.clone(), serde_json::to_value(&s)?, text));
    }
    finish(ctx, &r);
    emit(&results, args.input.json)
}
