//! `llmkit store path|vacuum|export`: the SQLite file itself.

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
    }
}
