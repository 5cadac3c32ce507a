//! llmkit-store: SQLite persistence for sessions, the usage ledger, the response cache,
//! budget reservations, batch checkpoints, the gateway's virtual keys and the features each
//! server lacks.
//!
//! One file, WAL mode, a busy timeout and `BEGIN IMMEDIATE` writes with a retry on
//! `SQLITE_BUSY`, so several llmkit processes can share it. Ledger rows are written by a
//! background thread so the request path never waits on the disk; [`Store::flush`] waits
//! for them. The pipeline's accounting step over this store lives in `llmkit-accounting`;
//! this crate is pure persistence on `llmkit-types`.
//!
//! This crate never reads the environment: the caller passes the path and the settings.

pub mod batch;
mod budget;
mod cache;
mod capabilities;
mod db;
mod error;
mod keys;
mod ledger;
mod migrations;
mod sessions;

pub use budget::{Budgets, Reservation};
pub use cache::{CacheStats, cache_key};
pub use capabilities::MissingFeature;
pub use db::Store;
pub use error::StoreError;
pub use keys::VirtualKey;
pub use ledger::{LedgerRow, UsageFilter, UsageGroup, UsageRow, now_secs};
pub use migrations::LATEST_VERSION;
pub use sessions::{Message, Session, SessionSummary};

/// Hooks for tests of this crate and its users; not a stable API.
#[doc(hidden)]
pub mod testing {
    /// Applies the migrations up to `version` on a bare connection (to build old schemas).
    pub fn migrate_to(conn: &mut rusqlite::Connection, version: usize) -> Result<(), String> {
        crate::migrations::migrations()
            .to_version(conn, version)
            .map_err(|e| e.to_string())
    }
}
