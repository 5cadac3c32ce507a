//! llmkit-accounting: the accounting step of the request pipeline. It prices requests from
//! the model catalogue, estimates them before they are sent, holds them against
//! `--max-cost` and the stored budgets, serves and fills the response cache, and writes one
//! ledger row per request; and it reconciles the ledger with the organisation's own usage
//! and cost reports (`reconcile`).
//!
//! It is wiring between `llmkit-client` (the `Accounting` trait, the catalogue, token
//! counts) and `llmkit-store` (pure SQLite persistence), so that neither depends on the
//! other. The CLI and the gateway plug it into their pipelines. This crate never reads the
//! environment or prints: the caller passes an [`AccountingConfig`].

mod backing;
mod estimate;
mod reconcile;
mod step;

pub use backing::{Backing, BackingError};
pub use estimate::{
    Estimate, completion_prompt_tokens, estimate_completion_cost, estimate_cost,
    estimate_embedding_cost, is_local,
};
pub use reconcile::{
    DEFAULT_THRESHOLD, DayModel, Finding, ReconcileOptions, Reconciliation, Side, Status,
    model_key, parse_utc_day, percent, reconcile, utc_day,
};
pub use step::{AccountingConfig, CachePolicy, DEFAULT_CACHE_TTL_SECS, StoreAccounting};
