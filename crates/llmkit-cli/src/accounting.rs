//! Wires the accounting step of the request pipeline (response cache, budgets, usage
//! ledger, from `llmkit-accounting`) to the resolved settings and the store file.

use std::sync::Arc;

use llmkit_accounting::{AccountingConfig, CachePolicy, StoreAccounting};
use llmkit_store::{Store, StoreError};

use crate::settings::Settings;

/// The open store and the one accounting instance of this process (so `--max-cost`
/// covers every request of the invocation).
pub(crate) struct StoreHandle {
    pub store: Arc<Store>,
    pub accounting: Arc<StoreAccounting>,
}

impl StoreHandle {
    /// Opens the store file and the invocation's accounting over it.
    pub(crate) fn open(settings: &Settings) -> Result<Self, StoreError> {
        let store = Arc::new(Store::open(&settings.paths.store)?);
        let cfg = config(
            settings,
            settings.budgets.max_cost_usd,
            settings.cache.policy,
        );
        let accounting = Arc::new(StoreAccounting::new(Arc::clone(&store), cfg));
        Ok(Self { store, accounting })
    }
}

/// The accounting configuration: the settings' budgets, prices and cache TTL, with the
/// given per-invocation cap and cache policy.
pub(crate) fn config(
    settings: &Settings,
    max_cost: Option<f64>,
    cache: CachePolicy,
) -> AccountingConfig {
    AccountingConfig {
        budgets: settings.budgets.stored(),
        max_cost_usd: max_cost,
        cache,
        cache_ttl_secs: settings.cache.ttl_secs,
        allow_unpriced: settings.budgets.allow_unpriced,
        ..AccountingConfig::new(settings.models.catalog.clone())
    }
}
