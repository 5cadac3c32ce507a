//! Integration tests for the `llmkit` binary, run against the in-process `llmkit-mock` server.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ask;
mod attachments;
mod batch;
mod batch_tasks;
mod cluster;
mod config;
mod conversations;
mod errors;
mod eval;
mod eval_resume;
mod fallbacks;
mod faults;
mod gateway;
mod gateway_sdk;
mod gateway_ui;
mod kb;
mod local;
mod models_pull;
mod options;
mod prices;
mod reconcile;
mod redact;
mod remote_jobs;
mod repl;
mod responses;
mod secrets;
mod snapshots;
mod spend;
mod store_concurrency;
mod support;
mod sweep;
mod tasks;
mod tools;
