//! What every handler shares (`Shared`): the upstreams, the store or the replicas' shared
//! state, the per-key accounting steps and limiter, and the caller's key check. Each
//! request runs through a `llmkit_client::Pipeline` whose accounting is the key's own
//! `StoreAccounting`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use llmkit_accounting::{AccountingConfig, StoreAccounting};
use llmkit_client::{Backend, Pipeline, RequestInfo};
use llmkit_store::{Budgets, Store, VirtualKey};

use crate::admission::{Admission, Limited};
use crate::api_error::ApiError;
use crate::cluster::{Cluster, ClusterBacking};
use crate::keys::{AuthError, Refusal, parse_id, verify};
use crate::limits::Limiter;
use crate::metrics::{Metered, Metrics};

/// What every handler shares.
pub(crate) struct Shared {
    /// The upstream of models without a route.
    pub(crate) backend: Backend,
    /// Models with upstreams of their own.
    pub(crate) routes: HashMap<String, Backend>,
    /// The replicas' shared state; `None` on one node (the SQLite `store`).
    pub(crate) cluster: Option<Arc<Cluster>>,
    pub(crate) store: Arc<Store>,
    pub(crate) accounting: AccountingConfig,
    /// One accounting step per key, so its budget and scope live as long as the process.
    pub(crate) per_key: Mutex<HashMap<String, Arc<Metered>>>,
    pub(crate) metrics: Arc<Metrics>,
    /// Per-key RPM, TPM and concurrency limits.
    pub(crate) limiter: Arc<dyn Limiter>,
    /// The SHA-256 of the admin API's master key; `None`: no admin API and no dashboard.
    pub(crate) master_key: Option<[u8; 32]>,
}

pub(crate) type AppState = Arc<Shared>;

impl Shared {
    /// The request pipeline for one key: its ledger rows carry the key's id as `profile`,
    /// its daily budget counts only its own spend, and (for a key with limits) the
    /// admission's token estimate is settled with the recorded usage.
    pub(crate) fn pipeline(
        &self,
        key: &VirtualKey,
        admission: &Admission,
        model: &str,
    ) -> Pipeline {
        let acc = {
            let mut map = self.per_key.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.id.clone()).or_insert_with(|| {
                let cfg = AccountingConfig {
                    budgets: Budgets {
                        daily_usd: key.budget_daily_usd,
                        monthly_usd: None,
                    },
                    max_cost_usd: None,
                    budget_scope: Some(key.id.clone()),
                    ..self.accounting.clone()
                };
                let catalog = cfg.catalog.clone();
                let inner = Arc::new(match &self.cluster {
                    Some(c) => {
                        StoreAccounting::with_backing(Arc::new(ClusterBacking(Arc::clone(c))), cfg)
                    }
                    None => StoreAccounting::new(Arc::clone(&self.store), cfg),
                });
                Arc::new(Metered {
                    inner,
                    key: key.id.clone(),
                    metrics: Arc::clone(&self.metrics),
                    catalog,
                })
            }))
        };
        let info = RequestInfo {
            command: "serve".to_string(),
            profile: Some(key.id.clone()),
            ..RequestInfo::default()
        };
        let acc: Arc<dyn llmkit_client::Accounting> = match &admission.permit {
            Some(permit) => Arc::new(Limited {
                inner: acc,
                permit: Arc::clone(permit),
            }),
            None => acc,
        };
        // Traced: the pool remembers which upstream served this request, for its row.
        Pipeline::new(self.backend_for(model).traced(), info).with_accounting(acc)
    }

    /// The model's own upstreams, or the default one.
    pub(crate) fn backend_for(&self, model: &str) -> &Backend {
        self.routes.get(model).unwrap_or(&self.backend)
    }

    /// The caller's key from `Authorization: Bearer ...`, checked against the store.
    pub(crate) async fn authorize(&self, headers: &HeaderMap) -> Result<VirtualKey, ApiError> {
        let Some(presented) = crate::admin::bearer(headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "You didn't provide an API key. Send it as `Authorization: Bearer lk-...`.",
            )
            .refused("auth"));
        };
        match self.authenticate(presented).await {
            Ok(key) => Ok(key),
            Err(AuthError::Refused(why)) => {
                let message = match why {
                    Refusal::Malformed | Refusal::Unknown => "Incorrect API key provided.",
                    Refusal::Revoked => "This API key has been revoked.",
                    Refusal::Expired => "This API key has expired.",
                };
                Err(
                    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
                        .code("invalid_api_key")
                        .refused("auth"),
                )
            }
            Err(AuthError::Store) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "The gateway's key store is unavailable.",
            )),
        }
    }
}

impl Shared {
    /// The key behind a presented secret, from the shared store or the local one.
    pub(crate) async fn authenticate(&self, presented: &str) -> Result<VirtualKey, AuthError> {
        let id = parse_id(presented).ok_or(AuthError::Refused(Refusal::Malformed))?;
        let found = match &self.cluster {
            Some(c) => c.key(id).await.map_err(|_| AuthError::Store)?,
            None => self.store.key_get(id).map_err(|_| AuthError::Store)?,
        };
        verify(presented, found)
    }
}
