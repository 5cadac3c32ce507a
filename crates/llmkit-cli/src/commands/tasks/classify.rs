//! `llmkit classify`: the best label (or with `--multi` every fitting label) per input.

use anyhow::Result;
use llmkit_tasks::ClassifyOptions;

use crate::app::Ctx;
use crate::cli::ClassifyArgs;
use crate::commands::tasks::{emit, finish, read_inputs, runner};

pub(crate) async fn run(ctx: &Ctx, args: ClassifyArgs) -> Result<()> {
    // Bad labels are refused before any model is loaded.
    let opts = ClassifyOptions::new(&args.labels, args.multi)?;
    let items = read_inputs(&args.input.inputs, args.input.html)?;
    let r = runner(
        ctx,
        &args.input.model,
        args.input.context_window,
        "classify",
        Some(&args.structured),
        &args.input.tools,
    )
    .await?;
    let mut results = Vec::new();
    for item in &items {
        let c = llmkit_tasks::classify(&r, &item.text, &opts).await?;
        let text = c
            .labels
            .iter()
            .map(|l| format!("{} ({:.2})", l.label, l.confidence))
            .collect::<Vec<_>>()
            .join("\n");
        results.push((item.name.clone(), c.to_json(), text));
    }
    finish(ctx, &r);
    emit(&results, args.input.json)
}
