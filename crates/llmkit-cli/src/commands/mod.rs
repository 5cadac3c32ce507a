//! One module per subcommand; each exposes `run`.

pub(crate) mod ask;
pub(crate) mod attach;
pub(crate) mod batch;
pub(crate) mod batch_remote;
pub(crate) mod cache;
pub(crate) mod chat;
pub(crate) mod complete;
pub(crate) mod config;
pub(crate) mod embed;
pub(crate) mod eval;
pub(crate) mod finetune;
mod finetune_export;
mod finetune_jobs;
pub(crate) mod gateway;
pub(crate) mod kb;
pub(crate) mod models;
mod request;
pub(crate) mod roles;
pub(crate) mod sessions;
pub(crate) mod store;
pub(crate) mod tasks;
pub(crate) mod templates;
pub(crate) mod tokens;
pub(crate) mod tools;
pub(crate) mod usage;
pub(crate) mod usage_reconcile;
