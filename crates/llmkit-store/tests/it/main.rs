//! Integration tests for llmkit-store: migrations, corruption, concurrency, budgets,
//! sessions, ledger and cache, on real files in a temporary directory.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod budget;
mod schema;
mod store;
