//! One module per subcommand; each exposes `run`.

pub mod ask;
pub mod batch;
pub mod batch_remote;
pub mod cache;
pub mod chat;
pub mod complete;
pub mod config;
pub mod embed;
pub mod eval;
pub mod finetune;
mod finetune_export;
mod finetune_jobs;
pub mod gateway;
pub mod kb;
pub mod models;
mod request;
pub mod roles;
pub mod sessions;
pub mod store;
pub mod tasks;
pub mod templates;
pub mod tokens;
pub mod usage;
