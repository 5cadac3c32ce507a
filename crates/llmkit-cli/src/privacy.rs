//! Builds the redaction step of the request pipeline from `--redact`, `--redact-kinds` and the
//! config (the detection itself lives in `llmkit-tasks`).

use std::sync::Arc;

use anyhow::Result;
use llmkit_client::Redact;

use crate::app::Ctx;

/// The redactor the flags and config ask for, or `None` when redaction is off.
pub fn redactor(ctx: &Ctx) -> Result<Option<Arc<dyn Redact>>> {
    if !ctx.global.redact && ctx.global.redact_kinds.is_empty() {
        return Ok(None);
    }
    Err(crate::error::CliError::usage(
        "--redact is not available in this build yet",
        "run without --redact",
    )
    .into())
}
