//! `llmkit translate`: Markdown-preserving translation with an optional enforced glossary.

use anyhow::Result;
use llmkit_tasks::{Glossary, TranslateOptions};
use serde_json::json;

use crate::app::{Ctx, notice};
use crate::cli::TranslateArgs;
use crate::commands::tasks::{finish, joined, read_inputs, runner, stats_json};
use crate::{input, output};

pub(crate) async fn run(ctx: &Ctx, args: TranslateArgs) -> Result<()> {
    let glossary = match &args.glossary {
        Some(path) => {
            let text = input::read_text_file(path)?;
            Glossary::parse(&text)?
        }
        None => Glossary::default(),
    };
    let items = read_inputs(&args.input.inputs, args.input.html)?;
    let text = joined(&items);
    let opts = TranslateOptions {
        to: args.to.clone(),
        from: args.from.clone(),
        glossary,
        strict: args.strict,
    };
    let r = runner(
        ctx,
        &args.input.model,
        args.input.context_window,
        "translate",
        None,
        &args.input.tools,
    )
    .await?;
    let t = llmkit_tasks::translate(&r, &text, &opts).await?;
    let stats = finish(ctx, &r);
    for (s, target) in &t.glossary_missing {
        notice(&format!(
            "warning: glossary term `{s}` should be translated as `{target}`, which the translation does not contain"
        ));
    }
    if !t.lost_spans.is_empty() {
        notice(&format!(
            "warning: the model dropped {} protected span(s) (code, URLs, placeholders); they were appended after their paragraph",
            t.lost_spans.len()
        ));
    }
    if args.input.json {
        let mut v = json!({
            "translation": t.text,
            "to": args.to,
            "glossary_missing": t.glossary_missing.iter().map(|(s, t)| json!({"source": s, "target": t})).collect::<Vec<_>>(),
            "lost_spans": t.lost_spans,
        });
        if let (Some(o), serde_json::Value::Object(s)) = (v.as_object_mut(), stats_json(&r, &stats))
        {
            o.extend(s);
        }
        return output::json(&v);
    }
    output::line(&t.text)
}
