//! Integration tests for the `llmkit` binary, run against the in-process `llmkit-mock` server.

mod ask;
mod config;
mod errors;
mod faults;
mod local;
mod models_pull;
mod support;
