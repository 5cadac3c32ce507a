//! `StoreAccounting`: the store plugged into the request pipeline as its cache, budget
//! guard and ledger (`llmkit_client::Accounting`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use llmkit_client::{Accounting, ClientError, ModelCatalog, Outcome, RequestInfo};
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, EmbeddingRequest,
};

use llmkit_store::{Budgets, LedgerRow, Reservation, Store, cache_key, now_secs};

use crate::backing::Backing;
use crate::estimate::{
    Estimate, estimate_completion_cost, estimate_cost, estimate_embedding_cost, is_local,
};

/// How long a cached response stays valid unless the config says otherwise: 7 days.
pub const DEFAULT_CACHE_TTL_SECS: f64 = 7.0 * 86_400.0;

/// When responses are served from and written to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    /// Never (`--no-cache`).
    Off,
    /// Only reproducible requests: temperature 0 or a seed.
    #[default]
    Auto,
    /// Every request (`--cache always`).
    Always,
}

/// What the accounting needs to know, resolved by the caller.
#[derive(Debug, Clone)]
pub struct AccountingConfig {
    /// Prices (with the user's overrides).
    pub catalog: ModelCatalog,
    pub budgets: Budgets,
    /// Most this invocation may spend (`--max-cost`).
    pub max_cost_usd: Option<f64>,
    pub cache: CachePolicy,
    pub cache_ttl_secs: f64,
    /// Output tokens assumed when a request sets no `max_tokens`.
    pub default_output_estimate: u32,
    /// Send requests to models without a known price even under a spending limit
    /// (`--allow-unpriced`); their cost is then unknown, not checked.
    pub allow_unpriced: bool,
    /// Count `budgets` against this scope's spend only: the ledger rows whose `profile` is
    /// this value and its own reservations (the gateway passes a virtual key's id). `None`
    /// counts every row, as the CLI's budgets do.
    pub budget_scope: Option<String>,
}

impl AccountingConfig {
    pub fn new(catalog: ModelCatalog) -> Self {
        Self {
            catalog,
            budgets: Budgets::default(),
            max_cost_usd: None,
            cache: CachePolicy::Auto,
            cache_ttl_secs: DEFAULT_CACHE_TTL_SECS,
            default_output_estimate: 1024,
            allow_unpriced: false,
            budget_scope: None,
        }
    }
}

/// Cache, budgets and ledger over a [`Backing`]: the SQLite [`Store`], or the gateway's
/// shared state.
pub struct StoreAccounting {
    store: Arc<dyn Backing>,
    cfg: AccountingConfig,
    state: Mutex<Invocation>,
}

/// This process's spend and open tickets.
#[derive(Default)]
struct Invocation {
    next_ticket: u64,
    spent: f64,
    /// ticket → (estimate, store reservation id)
    open: HashMap<u64, (f64, Option<i64>)>,
}

impl Invocation {
    fn outstanding(&self) -> f64 {
        self.open.values().map(|(e, _)| e).sum()
    }
}

impl StoreAccounting {
    pub fn new(store: Arc<Store>, cfg: AccountingConfig) -> Self {
        Self::with_backing(store, cfg)
    }

    /// The accounting step over another backing store.
    pub fn with_backing(store: Arc<dyn Backing>, cfg: AccountingConfig) -> Self {
        Self {
            store,
            cfg,
            state: Mutex::new(Invocation::default()),
        }
    }

    /// What this invocation has spent so far (settled requests).
    pub fn spent(&self) -> f64 {
        self.lock().spent
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Invocation> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cacheable(&self, req: &ChatCompletionRequest) -> bool {
        match self.cfg.cache {
            CachePolicy::Off => false,
            CachePolicy::Always => true,
            CachePolicy::Auto => req.temperature == Some(0.0) || req.seed.is_some(),
        }
    }

    /// Whether any spending limit applies (so estimates are worth computing).
    fn guarded(&self) -> bool {
        !self.cfg.budgets.is_empty() || self.cfg.max_cost_usd.is_some()
    }

    /// The amount to hold for a request, or a refusal when a spending limit is set and the
    /// model has no known price (fail closed).
    // The `Accounting` trait's error type.
    #[allow(clippy::result_large_err)]
    fn holdable(&self, model: &str, estimate: Estimate) -> Result<f64, ClientError> {
        match estimate {
            Estimate::Free => Ok(0.0),
            Estimate::Usd(x) => Ok(x),
            Estimate::Unpriced if self.cfg.allow_unpriced => Ok(0.0),
            Estimate::Unpriced => Err(ClientError::Unpriced {
                model: model.to_string(),
            }),
        }
    }

    /// Holds `estimate` against `--max-cost` and the stored budgets, or refuses. The state
    /// lock is not held while the store reserves: a shared store waits on the network, and
    /// other requests of this step must not wait (or block their threads) meanwhile.
    // The `Accounting` trait's error type, returned as is by both reserve methods.
    #[allow(clippy::result_large_err)]
    fn reserve_estimate(&self, estimate: f64) -> Result<u64, ClientError> {
        let ticket = {
            let mut state = self.lock();
            if let Some(limit) = self.cfg.max_cost_usd {
                let committed = state.spent + state.outstanding();
                if committed + estimate > limit {
                    return Err(ClientError::BudgetExceeded {
                        spent: committed,
                        limit,
                        period: "invocation".into(),
                    });
                }
            }
            state.next_ticket += 1;
            let ticket = state.next_ticket;
            // Outstanding from now on, so concurrent requests count it against --max-cost.
            state.open.insert(ticket, (estimate, None));
            ticket
        };
        if self.cfg.budgets.is_empty() || estimate <= 0.0 {
            return Ok(ticket);
        }
        let refused = |e: ClientError| {
            self.lock().open.remove(&ticket);
            Err(e)
        };
        match self.store.reserve(
            self.cfg.budget_scope.as_deref(),
            &self.cfg.budgets,
            estimate,
        ) {
            Ok(Reservation::Granted(id)) => {
                if let Some(open) = self.lock().open.get_mut(&ticket) {
                    open.1 = Some(id);
                }
                Ok(ticket)
            }
            Ok(Reservation::Refused {
                period,
                spent,
                limit,
            }) => refused(ClientError::BudgetExceeded {
                spent,
                limit,
                period: period.into(),
            }),
            Err(source) => refused(ClientError::Accounting { source }),
        }
    }

    /// The actual cost of a finished request: `Some(0)` for cache hits and local models,
    /// `None` when the model has no known price (the ledger marks the row as unknown).
    fn cost(&self, outcome: &Outcome<'_>) -> Option<f64> {
        if outcome.cache_hit || outcome.backend == "local" || is_local(outcome.model) {
            return Some(0.0);
        }
        let Some(usage) = outcome.usage else {
            return Some(0.0);
        };
        let info = self.cfg.catalog.price(outcome.model)?;
        Some(info.cost_of(
            usage.prompt_tokens,
            usage.cached_tokens(),
            usage.completion_tokens,
            false,
        ))
    }
}

impl Accounting for StoreAccounting {
    fn cache_get(&self, req: &ChatCompletionRequest) -> Option<ChatCompletionResponse> {
        if !self.cacheable(req) {
            return None;
        }
        self.store
            .cache_lookup(&cache_key(req), self.cfg.cache_ttl_secs)
    }

    fn cache_put(&self, req: &ChatCompletionRequest, resp: &ChatCompletionResponse) {
        if !self.cacheable(req) || resp.choices.is_empty() {
            return;
        }
        self.store.cache_store(&cache_key(req), &req.model, resp);
    }

    fn reserve(
        &self,
        _info: &RequestInfo,
        req: &ChatCompletionRequest,
    ) -> Result<u64, ClientError> {
        let estimate = if self.guarded() {
            let e = estimate_cost(&self.cfg.catalog, req, self.cfg.default_output_estimate);
            self.holdable(&req.model, e)?
        } else {
            0.0
        };
        self.reserve_estimate(estimate)
    }

    fn reserve_embeddings(
        &self,
        _info: &RequestInfo,
        req: &EmbeddingRequest,
    ) -> Result<u64, ClientError> {
        let estimate = if self.guarded() {
            self.holdable(&req.model, estimate_embedding_cost(&self.cfg.catalog, req))?
        } else {
            0.0
        };
        self.reserve_estimate(estimate)
    }

    fn reserve_completion(
        &self,
        _info: &RequestInfo,
        req: &CompletionRequest,
    ) -> Result<u64, ClientError> {
        let estimate = if self.guarded() {
            let e =
                estimate_completion_cost(&self.cfg.catalog, req, self.cfg.default_output_estimate);
            self.holdable(&req.model, e)?
        } else {
            0.0
        };
        self.reserve_estimate(estimate)
    }

    fn record(&self, info: &RequestInfo, ticket: u64, outcome: &Outcome<'_>) {
        let cost = self.cost(outcome);
        let reservation = {
            let mut state = self.lock();
            state.spent += cost.unwrap_or(0.0);
            state.open.remove(&ticket).and_then(|(_, r)| r)
        };
        let (prompt, completion, cached) = match (outcome.usage, outcome.cache_hit) {
            // A hit sent nothing upstream: it used no tokens.
            (Some(u), false) => (u.prompt_tokens, u.completion_tokens, u.cached_tokens()),
            _ => (0, 0, 0),
        };
        self.store.record(LedgerRow {
            ts: now_secs(),
            profile: info.profile.clone(),
            backend: outcome.backend.to_string(),
            model: outcome.model.to_string(),
            session: info.session.clone(),
            batch_job: info.batch_job.clone(),
            command: info.command.clone(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cost_usd: cost.unwrap_or(0.0),
            cost_unknown: cost.is_none(),
            tokens_counted: outcome.tokens_counted && prompt + completion > 0,
            latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
            status: outcome.status,
            cache_hit: outcome.cache_hit,
            upstream: outcome.upstream.clone(),
            reservation,
        });
    }
}
