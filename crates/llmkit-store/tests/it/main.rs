//! Integration tests for llmkit-store: migrations, corruption, concurrency, budgets,
//! sessions, ledger and cache, on real files in a temporary directory.

mod budget;
mod schema;
mod store;
