//! `Backing`: where the accounting step keeps reservations, ledger rows and cached answers.
//! The SQLite [`Store`] is one; the gateway plugs in the replicas' shared state (PostgreSQL
//! and Redis, `llmkit-cluster`) as another, so budgets and the ledger follow one code path.

use llmkit_store::{Budgets, LedgerRow, Reservation, Store, StoreError};
use llmkit_types::ChatCompletionResponse;

/// An error of a backing store, kept as the pipeline's `ClientError::Accounting` source.
pub type BackingError = Box<dyn std::error::Error + Send + Sync>;

/// Persistence for [`StoreAccounting`](crate::StoreAccounting). Calls are synchronous: the
/// pipeline's accounting step is, and an implementation over an async engine bridges.
pub trait Backing: Send + Sync {
    /// Reserves `estimate_usd` against `budgets`, counting only `scope`'s spend when given,
    /// atomically with respect to every other reserver of the same store.
    fn reserve(
        &self,
        scope: Option<&str>,
        budgets: &Budgets,
        estimate_usd: f64,
    ) -> Result<Reservation, BackingError>;

    /// Queues one ledger row; it settles the row's `reservation`. Never blocks on IO and
    /// never loses the row on a transient failure.
    fn record(&self, row: LedgerRow);

    /// A cached answer younger than `ttl_secs`; a failure is a miss.
    fn cache_lookup(&self, key: &str, ttl_secs: f64) -> Option<ChatCompletionResponse>;

    /// Stores an answer; a failure only costs a later miss.
    fn cache_store(&self, key: &str, model: &str, resp: &ChatCompletionResponse);
}

impl Backing for Store {
    fn reserve(
        &self,
        scope: Option<&str>,
        budgets: &Budgets,
        estimate_usd: f64,
    ) -> Result<Reservation, BackingError> {
        self.reserve_scoped(scope, budgets, estimate_usd)
            .map_err(|e: StoreError| Box::new(e) as BackingError)
    }

    fn record(&self, row: LedgerRow) {
        Store::record(self, row);
    }

    fn cache_lookup(&self, key: &str, ttl_secs: f64) -> Option<ChatCompletionResponse> {
        Store::cache_lookup(self, key, ttl_secs).ok().flatten()
    }

    fn cache_store(&self, key: &str, model: &str, resp: &ChatCompletionResponse) {
        let _ = Store::cache_store(self, key, model, resp);
    }
}
