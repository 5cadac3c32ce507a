//! llmkit-gateway: `llmkit serve`, an OpenAI-compatible HTTP gateway over the same request
//! pipeline as the CLI (`llmkit_client::Pipeline` with `llmkit_accounting::StoreAccounting`),
//! so the cache, budgets and the ledger apply to every request that passes through it.
//!
//! Callers authenticate with virtual keys (`lk-...`) stored in the llmkit store as a public
//! id plus the SHA-256 of the secret; each key may be limited to some models and carry a
//! daily budget, reserved before the call and settled with the real usage, and RPM, TPM and
//! concurrency limits (the [`Limiter`] trait; [`LocalLimiter`] in process). Every ledger row
//! carries the key's public id in its `profile` column.
//!
//! This crate never reads the environment or files: the CLI resolves its settings and
//! passes a [`GatewayConfig`].

// `GatewayError` keeps the client's error inline and `ApiError` a whole OpenAI error body,
// as in llmkit-client: both are built only on a failure, never on the request's hot path,
// so their size does not matter.
#![allow(clippy::result_large_err)]

mod admin;
mod admin_data;
mod admission;
mod api_error;
mod cluster;
mod config;
mod error;
mod handlers;
mod keys;
mod limits;
mod metrics;
mod ops;
mod overhead;
mod server;
mod shared_limits;
mod state;
mod stream;
mod ui;

pub use cluster::{ClusterAdmin, ClusterSettings};
pub use config::{GatewayConfig, Route, Upstream};
pub use error::GatewayError;
pub use keys::{NewKey, create_key, parse_lifetime, revoke_key, rotate_key};
pub use limits::{Decision, KeyLimits, LimitKind, Limiter, LocalLimiter, Snapshot, Window};
pub use llmkit_client::Balance;
pub use server::Gateway;
pub use shared_limits::LimitsFallback;
