//! Integration tests for the `llmkit` binary, run against the in-process `llmkit-mock` server.

mod ask;
mod batch;
mod batch_tasks;
mod config;
mod conversations;
mod errors;
mod eval;
mod eval_resume;
mod faults;
mod kb;
mod local;
mod models_pull;
mod redact;
mod remote_jobs;
mod repl;
mod spend;
mod support;
mod tasks;
