//! `llmkit store path|vacuum|export|capabilities`: the SQLite file itself, and what it
//! remembers of servers.

use anyhow::Result;

use crate::app::Ctx;
use crate::cli::{StoreAction, StoreArgs};
use crate::output;

pub(crate) fn run(ctx: &Ctx, args: StoreArgs) -> Result<()> {
    match args.action {
        // The path needs no open store (it may not exist yet, or be the broken file).
        StoreAction::Path => output::line(&ctx.settings.paths.store.display().to_string()),
        StoreAction::Vacuum => {
            let (before, after) = ctx.store()?.vacuum()?;
            output::line(&format!("vacuumed: {before} → {after} bytes"))
        }
        StoreAction::Export { output: file } => {
            let value = ctx.store()?.export()?;
            match file {
                None => output::json(&value),
                Some(path) => {
                    let text = serde_json::to_string_pretty(&value)?;
                    std::fs::write(&path, text + "\n").map_err(|e| {
                        crate::error::CliError::failure(
                            format!("cannot write {}: {e}", path.display()),
                            Some("check that the directory exists and is writable".into()),
                        )
                    })?;
                    Ok(())
                }
            }
        }
        StoreAction::Capabilities { forget, all, json } => capabilities(ctx, forget, all, json),
    }
}

/// `llmkit store capabilities [--forget [--all]] [--json]`.
fn capabilities(ctx: &Ctx, forget: bool, all: bool, json: bool) -> Result<()> {
    let store = ctx.store()?;
    let current = crate::capabilities::server_key(&ctx.settings.client.base_url.value);
    if forget {
        let scope = (!all).then_some(current.as_str());
        let n = store.forget_missing_features(scope)?;
        let whose = if all {
            "every server"
        } else {
            current.as_str()
        };
        return output::line(&format!(
            "forgot {n} remembered missing feature(s) of {whose}"
        ));
    }
    let rows = store.missing_features(None)?;
    if json {
        return output::json(&serde_json::json!({ "missing_features": rows }));
    }
    if rows.is_empty() {
        return output::line("no server has rejected a feature yet");
    }
    for r in &rows {
        let first_line = r.message.lines().next().unwrap_or_default();
        output::line(&format!(
            "{}  {:<14}  {}  {}  {}",
            r.base_url,
            r.feature,
            r.status,
            store.local_datetime(r.learned),
            first_line
        ))?;
    }
    Ok(())
}
