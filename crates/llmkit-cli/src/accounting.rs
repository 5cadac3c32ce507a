//! Builds the accounting step of the request pipeline (response cache, budgets, usage
//! ledger) from the flags and config; the storage itself lives in `llmkit-store`.

use std::sync::Arc;

use anyhow::Result;
use llmkit_client::Accounting;
use llmkit_store::{AccountingConfig, Budgets, CachePolicy, Store, StoreAccounting, StoreError};

use crate::app::Ctx;
use crate::cli::CacheMode;
use crate::error::CliError;

/// The open store and the one accounting instance of this process (so `--max-cost`
/// covers every request of the invocation).
pub struct StoreHandle {
    pub store: Arc<Store>,
    pub accounting: Arc<StoreAccounting>,
}

/// The accounting the flags and config ask for. Every request is recorded in the ledger,
/// so this is always on; `--no-cache` only turns the cache off.
pub fn accounting(ctx: &Ctx) -> Result<Option<Arc<dyn Accounting>>> {
    let handle = handle(ctx)?;
    Ok(Some(Arc::clone(&handle.accounting) as Arc<dyn Accounting>))
}

/// The store, opened on first use.
pub fn store(ctx: &Ctx) -> Result<Arc<Store>> {
    Ok(Arc::clone(&handle(ctx)?.store))
}

fn handle(ctx: &Ctx) -> Result<&StoreHandle> {
    if let Some(h) = ctx.store.get() {
        return Ok(h);
    }
    let store = Arc::new(Store::open(&ctx.settings.store_path).map_err(store_error)?);
    let cfg = config(ctx, ctx.global.max_cost);
    let accounting = Arc::new(StoreAccounting::new(Arc::clone(&store), cfg));
    // Another call may have won the race; either value is equivalent.
    let _ = ctx.store.set(StoreHandle { store, accounting });
    ctx.store
        .get()
        .ok_or_else(|| anyhow::anyhow!("the store could not be opened"))
}

/// The accounting of a command that enforces `--max-cost` itself over a whole resumable job
/// (batch, eval): the same cache, budgets and ledger, without the per-invocation cap, which
/// would turn rows into errors where the job should stop resumably.
pub fn accounting_uncapped(ctx: &Ctx) -> Result<Arc<dyn Accounting>> {
    let store = store(ctx)?;
    Ok(Arc::new(StoreAccounting::new(store, config(ctx, None))))
}

fn config(ctx: &Ctx, max_cost: Option<f64>) -> AccountingConfig {
    let s = &ctx.settings;
    AccountingConfig {
        budgets: Budgets {
            daily_usd: s.budget_daily_usd,
            monthly_usd: s.budget_monthly_usd,
        },
        max_cost_usd: max_cost,
        cache: if ctx.global.no_cache {
            CachePolicy::Off
        } else {
            match ctx.global.cache.unwrap_or_default() {
                CacheMode::Auto => CachePolicy::Auto,
                CacheMode::Always => CachePolicy::Always,
            }
        },
        cache_ttl_secs: s.cache_ttl_secs,
        ..AccountingConfig::new(s.catalog.clone())
    }
}

/// A store error as the CLI shows it: message plus hint.
pub fn store_error(e: StoreError) -> anyhow::Error {
    let hint = e.hint();
    CliError::failure(e.to_string(), hint).into()
}

impl Ctx {
    /// Writes queued ledger rows (called once before the process exits).
    pub fn flush_store(&self) -> Result<()> {
        match self.store.get() {
            Some(h) => h.store.flush().map_err(store_error),
            None => Ok(()),
        }
    }
}
