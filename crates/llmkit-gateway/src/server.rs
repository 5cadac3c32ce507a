//! The accept loop (header timeout, graceful shutdown) and the app: the routes and the
//! state every handler shares, built from a `GatewayConfig`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use llmkit_client::{Backend, HttpClient, Pool};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::config::{GatewayConfig, Route, Upstream};
use crate::error::GatewayError;
use crate::handlers::{chat, completions, embeddings, models};
use crate::keys::hash;
use crate::metrics::{Metrics, UpstreamMetrics};
use crate::ops::{healthz, method_not_allowed, metrics, not_found, observe, readyz};
use crate::state::{AppState, Shared};

/// A bound gateway, ready to [`run`](Gateway::run).
pub struct Gateway {
    listener: TcpListener,
    cluster: Option<Arc<Cluster>>,
    router: Router,
    header_timeout: Duration,
    shutdown_grace: Duration,
}

impl Gateway {
    /// Binds the listen address and builds the upstream clients.
    pub async fn bind(cfg: GatewayConfig) -> Result<Self, GatewayError> {
        let metrics = Arc::new(Metrics::default());
        let observer = Arc::new(UpstreamMetrics(Arc::clone(&metrics)));
        // The default upstream is a pool of one too: its rows name it, and its own rate
        // limits are learnt from its answers like a route's.
        let default = vec![(
            DEFAULT_UPSTREAM.to_string(),
            Backend::Http(HttpClient::new(cfg.upstream.clone())?),
        )];
        let backend = Pool::new(default)
            .map(|p| Backend::Pool(p.observer(observer.clone())))
            .ok_or_else(|| GatewayError::EmptyRoute(DEFAULT_UPSTREAM.into()))?;
        let routes = routes(&cfg.routes, &observer)?;
        let listener =
            TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: cfg.listen,
                    source,
                })?;
        let cluster = match &cfg.cluster {
            Some(c) => Some(Cluster::connect(c).await?),
            None => None,
        };
        let state = Arc::new(Shared {
            backend,
            routes,
            cluster: cluster.clone(),
            store: Arc::clone(&cfg.store),
            accounting: cfg.accounting.clone(),
            per_key: Mutex::new(HashMap::new()),
            metrics,
            // Replicas with Redis share their limits; otherwise each holds its own.
            limiter: cluster
                .as_ref()
                .and_then(|c| c.limiter.clone())
                .unwrap_or_else(|| Arc::clone(&cfg.limiter)),
            master_key: cfg.master_key.as_ref().map(|k| hash(k.expose_secret())),
        });
        Ok(Self {
            listener,
            cluster,
            router: router(state, cfg.body_limit),
            header_timeout: cfg.header_timeout,
            shutdown_grace: cfg.shutdown_grace,
        })
    }

    /// The address actually bound (for `--port 0`).
    pub fn local_addr(&self) -> Result<SocketAddr, GatewayError> {
        self.listener
            .local_addr()
            .map_err(|source| GatewayError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
    }

    /// Serves until `shutdown` completes, then stops accepting and waits up to the grace
    /// period for in-flight requests and streams (their ledger rows are written as they end).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), GatewayError> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((stream, _peer)) = accepted else {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let svc = hyper_util::service::TowerToHyperService::new(self.router.clone());
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(self.header_timeout);
                    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        // A client that goes away mid-request is not the gateway's failure.
                        let _ = conn.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(self.shutdown_grace) => {}
        }
        if let Some(c) = &self.cluster {
            c.flush().await;
        }
        Ok(())
    }
}

/// The name of the upstream of models without a route, in the ledger and the metrics.
const DEFAULT_UPSTREAM: &str = "default";

/// The backend of each routed model: a [`Pool`] of its upstreams (of one, too, so that its
/// rate limits are learnt and its rows name it).
fn routes(
    routes: &[Route],
    observer: &Arc<UpstreamMetrics>,
) -> Result<HashMap<String, Backend>, GatewayError> {
    let mut out = HashMap::new();
    for r in routes {
        let mut members = Vec::with_capacity(r.upstreams.len());
        for (name, up) in &r.upstreams {
            let backend = match up {
                Upstream::Http(cfg) => Backend::Http(HttpClient::new(cfg.clone())?),
                Upstream::Backend(b) => b.clone(),
            };
            members.push((name.clone(), backend));
        }
        let pool = Pool::new(members)
            .ok_or_else(|| GatewayError::EmptyRoute(r.model.clone()))?
            .balance(r.balance)
            .observer(observer.clone());
        out.insert(r.model.clone(), Backend::Pool(pool));
    }
    Ok(out)
}

fn router(state: AppState, body_limit: usize) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            observe,
        ));
    // Without a master key the admin API and the dashboard are not mounted: 404.
    let admin = if state.master_key.is_some() {
        crate::admin::routes(&state).merge(crate::ui::routes())
    } else {
        Router::new()
    };
    Router::new()
        .merge(api)
        .merge(admin)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
