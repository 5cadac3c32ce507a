//! `llmkit summarize`: one summary of all inputs (map-reduce when they exceed the window).

use anyhow::Result;
use llmkit_tasks::{Length, SummarizeOptions, SummaryFormat};
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{SummarizeArgs, SummaryLength, SummaryStyle};
use crate::commands::tasks::{finish, joined, read_inputs, runner, stats_json};
use crate::output;

pub(crate) async fn run(ctx: &Ctx, args: SummarizeArgs) -> Result<()> {
    let items = read_inputs(&args.input.inputs, args.input.html)?;
    let text = joined(&items);
    let opts = SummarizeOptions {
        length: match args.length {
            SummaryLength::Short => Length::Short,
            SummaryLength::Medium => Length::Medium,
            SummaryLength::Long => Length::Long,
        },
        words: args.words,
        format: match args.format {
            SummaryStyle::Paragraph => SummaryFormat::Paragraph,
            SummaryStyle::Bullets => SummaryFormat::Bullets,
        },
        focus: args.focus.clone(),
    };
    let r = runner(
        ctx,
        &args.input.model,
        args.input.context_window,
        "summarize",
        None,
        &args.input.tools,
    )
    .await?;
    let summary = llmkit_tasks::summarize(&r, &text, &opts).await?;
    let stats = finish(ctx, &r);
    if args.input.json {
        let mut v = json!({ "summary": summary });
        if let (Some(o), serde_json::Value::Object(s)) = (v.as_object_mut(), stats_json(&r, &stats))
        {
            o.extend(s);
        }
        return output::json(&v);
    }
    output::line(&summary)
}
