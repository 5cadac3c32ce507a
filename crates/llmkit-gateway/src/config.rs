//! `GatewayConfig`: everything the gateway needs, resolved by the caller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use llmkit_accounting::AccountingConfig;
use llmkit_client::{Backend, Balance, ClientConfig};
use llmkit_store::Store;
use secrecy::SecretString;

use crate::cluster::ClusterSettings;
use crate::limits::{Limiter, LocalLimiter};

/// The default request body limit: 4 MiB, room for long prompts and embedding batches.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// One model served by upstreams of its own (the config's `[gateway.routes]`): requests
/// for `model` go to `upstreams`, balanced as `balance` says, skipping those whose own
/// rate limit is spent, and fall back along them in this order.
#[derive(Clone)]
pub struct Route {
    pub model: String,
    /// `(name, upstream)`: the name (a profile's, or `local:MODEL`) labels the ledger
    /// rows, `/admin/spend` and `/metrics`.
    pub upstreams: Vec<(String, Upstream)>,
    pub balance: Balance,
}

impl Route {
    /// A route balanced by the power of two choices (the default).
    pub fn new(model: impl Into<String>, upstreams: Vec<(String, Upstream)>) -> Self {
        Self {
            model: model.into(),
            upstreams,
            balance: Balance::default(),
        }
    }
}

/// One upstream of a route: an HTTP server the gateway builds a client for, or a backend
/// the caller built (the embedded model of a `local:` upstream, which only the binary can
/// make: this crate is built without the client's `local` feature).
// Built once at start, a handful per route: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Upstream {
    Http(ClientConfig),
    Backend(Backend),
}

impl From<ClientConfig> for Upstream {
    fn from(c: ClientConfig) -> Self {
        Self::Http(c)
    }
}

impl From<Backend> for Upstream {
    fn from(b: Backend) -> Self {
        Self::Backend(b)
    }
}

/// The gateway's settings: where to listen, the upstreams, the store and the limits.
#[derive(Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// The upstream of every model without a route (its own key, base URL, retries).
    pub upstream: ClientConfig,
    /// Models with upstreams of their own.
    pub routes: Vec<Route>,
    /// The store holding the keys, the ledger, the cache and the reservations.
    pub store: Arc<Store>,
    /// Prices, cache policy and output estimate; the budgets are taken from each key.
    pub accounting: AccountingConfig,
    /// Requests with a larger body are refused with 413.
    pub body_limit: usize,
    /// A connection that has not sent a whole request head in this time is closed (also
    /// between requests of a kept-alive connection), so slow clients cannot pin it.
    pub header_timeout: Duration,
    /// How long a shutdown waits for in-flight requests and streams.
    pub shutdown_grace: Duration,
    /// Keys, budgets and the ledger in PostgreSQL (and the cache and key changes in
    /// Redis), shared with other replicas, instead of `store`.
    pub cluster: Option<ClusterSettings>,
    /// Holds every key's RPM, TPM and concurrency limits (in process by default).
    pub limiter: Arc<dyn Limiter>,
    /// The master key of the admin API (`/admin/*`) and the dashboard (`/ui`), presented as
    /// `Authorization: Bearer`. `None` turns both off: they answer 404.
    pub master_key: Option<SecretString>,
}

impl GatewayConfig {
    pub fn new(
        listen: SocketAddr,
        upstream: ClientConfig,
        store: Arc<Store>,
        accounting: AccountingConfig,
    ) -> Self {
        Self {
            listen,
            upstream,
            routes: Vec::new(),
            store,
            accounting,
            body_limit: DEFAULT_BODY_LIMIT,
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            cluster: None,
            limiter: Arc::new(LocalLimiter::new()),
            master_key: None,
        }
    }
}
