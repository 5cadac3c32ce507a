//! llmkit-cluster: the state that gateway replicas share, in the engines made for it.
//!
//! PostgreSQL ([`PgStore`]) holds the virtual keys, budget reservations and the usage
//! ledger: a reservation is one transaction that locks the scope's spend rows, so replicas
//! cannot race past a budget, and ledger rows are keyed by request id, so a row written
//! twice (a replay after an outage) is counted once. When PostgreSQL cannot be reached the
//! [`LedgerWriter`] appends rows to a local spool file and replays it later.
//!
//! Redis holds what is shared and may be lost: request, token and concurrency limits
//! ([`RedisLimits`], one Lua script so each check is atomic across replicas), the response
//! cache ([`RedisCache`]) and the key-change channel ([`Revocations`]).
//!
//! This crate never reads the environment or a config file: the binary passes the URLs,
//! sizes and the spool path.

mod error;
mod limits;
mod pg;
mod pg_budget;
mod pg_keys;
mod pg_ledger;
mod pg_schema;
mod redis_cache;
mod redis_conn;
mod revocations;
mod spool;

pub use error::ClusterError;
pub use limits::{LimitDecision, Limits, RedisLimits, Refusal};
pub use pg::{PgOptions, PgStore};
pub use pg_budget::{PeriodLimits, Periods, PgReservation};
pub use pg_ledger::{LedgerEntry, LedgerWriter, UsageQuery, UsageTotal, WriterHealth};
pub use pg_schema::PG_SCHEMA_VERSION;
pub use redis_cache::RedisCache;
pub use revocations::{KeyEvent, Revocations};
pub use spool::Spool;
