//! What the admin API reads and changes, from the SQLite store on one node or from the
//! replicas' PostgreSQL (with the key changes announced over Redis): the keys, the ledger's
//! spend per key, model, upstream and day, and its recent failures.

use llmkit_cluster::{Periods, UsageQuery, UsageTotal};
use llmkit_store::{LedgerRow, UsageFilter, UsageGroup, UsageRow, VirtualKey, now_secs};
use secrecy::SecretString;

use crate::error::GatewayError;
use crate::keys::{NewKey, create_key, revoke_key, rotate_key};
use crate::state::Shared;

/// The ledger's command for the gateway's rows (the CLI's commands may share the store).
const SERVE: &str = "serve";

/// The ledger summed four ways over a window of days.
pub(crate) struct Spend {
    /// Unix seconds: the start of the first day counted.
    pub since: f64,
    /// `local` (the SQLite store's time zone) or `utc` (PostgreSQL's rollup).
    pub day_basis: &'static str,
    pub total: UsageRow,
    /// `key` is the virtual key's id.
    pub by_key: Vec<UsageRow>,
    pub by_model: Vec<UsageRow>,
    /// `key` is the upstream's name in the routes (`default`; `-` for cache hits).
    pub by_upstream: Vec<UsageRow>,
    /// `key` is the day, `YYYY-MM-DD`.
    pub by_day: Vec<UsageRow>,
}

impl Shared {
    pub(crate) async fn admin_keys(&self) -> Result<Vec<VirtualKey>, GatewayError> {
        match &self.cluster {
            Some(c) => Ok(c.pg.key_list().await?),
            None => Ok(self.store.key_list()?),
        }
    }

    pub(crate) async fn admin_create(
        &self,
        spec: &NewKey,
    ) -> Result<(VirtualKey, SecretString), GatewayError> {
        match &self.cluster {
            Some(c) => c.create_key(spec).await,
            None => create_key(&self.store, spec),
        }
    }

    /// Revokes a key. On one node every request reads the key from the store, so the next
    /// one is refused; replicas drop their cached copy (this one at once).
    pub(crate) async fn admin_revoke(&self, id: &str) -> Result<(), GatewayError> {
        match &self.cluster {
            Some(c) => c.revoke_key(id).await,
            None => revoke_key(&self.store, id),
        }
    }

    pub(crate) async fn admin_rotate(&self, id: &str) -> Result<SecretString, GatewayError> {
        match &self.cluster {
            Some(c) => c.rotate_key(id).await,
            None => rotate_key(&self.store, id),
        }
    }

    /// The gateway's spend over the last `days` calendar days, today included.
    pub(crate) async fn admin_spend(&self, days: u32) -> Result<Spend, GatewayError> {
        let back = f64::from(days.saturating_sub(1)) * 86_400.0;
        let first = now_secs() - back;
        match &self.cluster {
            Some(c) => {
                let since_day = Periods::utc(first).day;
                let usage = |group| {
                    let q = UsageQuery {
                        since_day: Some(since_day.clone()),
                        group,
                        ..UsageQuery::default()
                    };
                    async move { c.pg.usage(&q).await }
                };
                let total = usage(UsageTotal::Total).await?;
                Ok(Spend {
                    since: (first / 86_400.0).floor() * 86_400.0,
                    day_basis: "utc",
                    total: total.into_iter().next().unwrap_or_else(total_row),
                    by_key: usage(UsageTotal::Scope).await?,
                    by_model: usage(UsageTotal::Model).await?,
                    by_upstream: usage(UsageTotal::Upstream).await?,
                    by_day: usage(UsageTotal::Day).await?,
                })
            }
            None => {
                // The local midnight that starts the first day.
                let day = self.store.local_datetime(first);
                let since = self
                    .store
                    .local_time_to_secs(day.get(..10).unwrap_or(&day))?
                    .unwrap_or(first);
                let filter = UsageFilter {
                    since: Some(since),
                    until: None,
                };
                let usage = |group| self.store.usage_of(&filter, group, Some(SERVE));
                let total = usage(UsageGroup::Total)?;
                Ok(Spend {
                    since,
                    day_basis: "local",
                    total: total.into_iter().next().unwrap_or_else(total_row),
                    by_key: usage(UsageGroup::Profile)?,
                    by_model: usage(UsageGroup::Model)?,
                    by_upstream: usage(UsageGroup::Upstream)?,
                    by_day: usage(UsageGroup::Day)?,
                })
            }
        }
    }

    /// The gateway's newest failed requests, newest first.
    pub(crate) async fn admin_failures(
        &self,
        limit: usize,
    ) -> Result<Vec<LedgerRow>, GatewayError> {
        match &self.cluster {
            Some(c) => Ok(c.pg.recent_failures(limit).await?),
            None => Ok(self.store.recent_failures(Some(SERVE), limit)?),
        }
    }
}

fn total_row() -> UsageRow {
    UsageRow {
        key: "total".into(),
        ..UsageRow::default()
    }
}
