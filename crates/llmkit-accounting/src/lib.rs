//! llmkit-accounting: the accounting step of the request pipeline. It prices requests from
//! the model catalogue, estimates them before they are sent, holds them against
//! `--max-cost` and the stored budgets, serves and fills the response cache, and writes one
//! ledger row per request.
//!
//! It is wiring between `llmkit-client` (the `Accounting` trait, the catalogue, token
//! counts) and `llmkit-store` (pure SQLite persistence), so that neither depends on the
//! other. The CLI and the gateway plug it into their pipelines. This crate never reads the
//! environment or prints: the caller passes an [`AccountingConfig`].

mod backing;
mod estimate;
mod step;

pub use backing::{Backing, BackingError};
pub use estimate::{
    Estimate, completion_prompt_tokens, estimate_completion_cost, estimate_cost,
    estimate_embedding_cost, is_local,
};
pub use step::{AccountingConfig, CachePolicy, DEFAULT_CACHE_TTL_SECS, StoreAccounting};
