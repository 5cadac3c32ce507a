//! `llmkit write`: text from a template and `--var key=value` pairs.

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::app::Ctx;
use crate::cli::WriteArgs;
use crate::commands::tasks::{finish, runner, stats_json, templates_dir};
use crate::error::CliError;
use crate::output;

pub(crate) async fn run(ctx: &Ctx, args: WriteArgs) -> Result<()> {
    let mut vars = Map::new();
    for kv in &args.vars {
        let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(CliError::usage(
                format!("`{kv}` is not KEY=VALUE"),
                "pass variables as --var topic=\"the launch\"",
            )
            .into());
        };
        vars.insert(k.trim().to_string(), Value::String(v.to_string()));
    }
    // Template problems (unknown name, missing variables) are reported before a model loads.
    llmkit_tasks::Templates::new(Some(templates_dir(ctx)))
        .render(&args.template, &Value::Object(vars.clone()))?;
    let r = runner(
        ctx,
        &args.model,
        args.context_window,
        "write",
        None,
        &args.tools,
    )
    .await?;
    let text = llmkit_tasks::write(&r, &args.template, &vars).await?;
    let stats = finish(ctx, &r);
    if args.json {
        let mut v = json!({ "text": text, "template": args.template });
        if let (Some(o), Value::Object(s)) = (v.as_object_mut(), stats_json(&r, &stats)) {
            o.extend(s);
        }
        return output::json(&v);
    }
    output::line(&text)
}
