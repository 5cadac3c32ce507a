//! The HTTP side: the accept loop (header timeout, graceful shutdown), the routes, key
//! checks, and OpenAI-shaped answers and errors. Each request runs through a
//! `llmkit_client::Pipeline` whose accounting is the key's own `StoreAccounting`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use llmkit_accounting::{AccountingConfig, StoreAccounting};
use llmkit_client::{Backend, ClientError, HttpClient, Pipeline, Pool, RequestInfo};
use llmkit_store::{Budgets, Store, VirtualKey};
use llmkit_types::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use serde_json::json;
use tokio::net::TcpListener;

use crate::admission::{
    Admission, Limited, admit_limits, chat_tokens, completion_tokens, embedding_tokens,
};
use crate::cluster::{Cluster, ClusterBacking};
use crate::config::{GatewayConfig, Route};
use crate::error::GatewayError;
use crate::keys::{AuthError, Refusal, parse_id, verify};
use crate::limits::Limiter;
use crate::metrics::{Metered, Metrics};

/// A bound gateway, ready to [`run`](Gateway::run).
pub struct Gateway {
    listener: TcpListener,
    cluster: Option<Arc<Cluster>>,
    router: Router,
    header_timeout: Duration,
    shutdown_grace: Duration,
}

impl Gateway {
    /// Binds the listen address and builds the upstream client.
    pub async fn bind(cfg: GatewayConfig) -> Result<Self, GatewayError> {
        let backend = Backend::Http(HttpClient::new(cfg.upstream.clone())?);
        let routes = routes(&cfg.routes)?;
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
            metrics: Arc::new(Metrics::default()),
            // Replicas with Redis share their limits; otherwise each holds its own.
            limiter: cluster
                .as_ref()
                .and_then(|c| c.limiter.clone())
                .unwrap_or_else(|| Arc::clone(&cfg.limiter)),
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

/// The backend of each routed model: one upstream's client, or a [`Pool`] of several.
fn routes(routes: &[Route]) -> Result<HashMap<String, Backend>, GatewayError> {
    let mut out = HashMap::new();
    for r in routes {
        let mut clients = Vec::with_capacity(r.upstreams.len());
        for (name, cfg) in &r.upstreams {
            clients.push((name.clone(), HttpClient::new(cfg.clone())?));
        }
        let backend = if clients.len() == 1 {
            clients.pop().map(|(_, c)| Backend::Http(c))
        } else {
            Pool::new(clients).map(Backend::Pool)
        };
        let backend = backend.ok_or_else(|| GatewayError::EmptyRoute(r.model.clone()))?;
        out.insert(r.model.clone(), backend);
    }
    Ok(out)
}

/// What every handler shares.
struct Shared {
    /// The upstream of models without a route.
    backend: Backend,
    /// Models with upstreams of their own.
    routes: HashMap<String, Backend>,
    /// The replicas' shared state; `None` on one node (the SQLite `store`).
    cluster: Option<Arc<Cluster>>,
    store: Arc<Store>,
    accounting: AccountingConfig,
    /// One accounting step per key, so its budget and scope live as long as the process.
    per_key: Mutex<HashMap<String, Arc<Metered>>>,
    metrics: Arc<Metrics>,
    /// Per-key RPM, TPM and concurrency limits.
    limiter: Arc<dyn Limiter>,
}

type AppState = Arc<Shared>;

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
    Router::new()
        .merge(api)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

impl Shared {
    /// The request pipeline for one key: its ledger rows carry the key's id as `profile`,
    /// its daily budget counts only its own spend, and (for a key with limits) the
    /// admission's token estimate is settled with the recorded usage.
    fn pipeline(&self, key: &VirtualKey, admission: &Admission, model: &str) -> Pipeline {
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
        Pipeline::new(self.backend_for(model).clone(), info).with_accounting(acc)
    }

    /// The model's own upstreams, or the default one.
    fn backend_for(&self, model: &str) -> &Backend {
        self.routes.get(model).unwrap_or(&self.backend)
    }

    /// The caller's key from `Authorization: Bearer ...`, checked against the store.
    async fn authorize(&self, headers: &HeaderMap) -> Result<VirtualKey, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let Some(presented) = presented else {
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
    async fn authenticate(&self, presented: &str) -> Result<VirtualKey, AuthError> {
        let id = parse_id(presented).ok_or(AuthError::Refused(Refusal::Malformed))?;
        let found = match &self.cluster {
            Some(c) => c.key(id).await.map_err(|_| AuthError::Store)?,
            None => self.store.key_get(id).map_err(|_| AuthError::Store)?,
        };
        verify(presented, found)
    }
}

/// The key id and model of the request being answered, filled in by the handler as it
/// learns them, for the metrics ("-" until known).
#[derive(Clone, Default)]
struct Labels(Arc<Mutex<(Option<String>, Option<String>)>>);

impl Labels {
    fn set(&self, key: Option<&str>, model: Option<&str>) {
        let mut l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = key {
            l.0 = Some(k.to_string());
        }
        if let Some(m) = model {
            l.1 = Some(m.to_string());
        }
    }

    fn get(&self) -> (String, String) {
        let l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        (or_dash(&l.0), or_dash(&l.1))
    }
}

/// A refusal by the gateway itself, marked on the response for the metrics.
#[derive(Clone, Copy)]
struct Refused(&'static str);

/// Counts every API request into the metrics: status, time to the response head, and the
/// gateway's own refusals.
async fn observe(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let labels = Labels::default();
    req.extensions_mut().insert(labels.clone());
    let resp = next.run(req).await;
    let (key, model) = labels.get();
    if let Some(Refused(reason)) = resp.extensions().get::<Refused>() {
        s.metrics.refusal(&key, reason);
    }
    s.metrics
        .request(&key, &model, resp.status().as_u16(), started.elapsed());
    resp
}

/// Prometheus text exposition (no key: it names key ids and models, never secrets).
async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Ready when the store answers (the keys and the ledger live there). With shared state it
/// reports PostgreSQL, Redis and the ledger spool, and is 503 while PostgreSQL is down.
async fn readyz(State(s): State<AppState>) -> Response {
    if let Some(c) = &s.cluster {
        let (ready, body) = c.readiness().await;
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return (status, axum::Json(body)).into_response();
    }
    match s.store.schema_version() {
        Ok(_) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "The gateway's store is unavailable.",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "Unknown route.",
    )
    .code("unknown_url")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "This route does not accept that method.",
    )
}

async fn models(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let key = s.authorize(&headers).await?;
    labels.set(Some(&key.id), None);
    let resp = s
        .backend
        .models()
        .await
        .map_err(|e| ApiError::upstream(&e))?;
    let mut list = resp.body;
    // Routed models are served whether or not the default upstream lists them.
    let mut routed: Vec<&String> = s.routes.keys().collect();
    routed.sort();
    for model in routed {
        if !list.data.iter().any(|m| &m.id == model) {
            list.data.push(llmkit_types::Model {
                id: model.clone(),
                object: "model".to_string(),
                owned_by: "llmkit".to_string(),
                ..llmkit_types::Model::default()
            });
        }
    }
    list.data.retain(|m| key.allows(&m.id));
    Ok(with_overhead(
        axum::Json(list).into_response(),
        started,
        resp.meta.latency,
    ))
}

async fn chat(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (key, req): (_, ChatCompletionRequest) =
        admit(&s, &labels, &headers, body, |r: &ChatCompletionRequest| {
            r.model.as_str()
        })
        .await?;
    let default_output = s.accounting.default_output_estimate;
    let admission = admit_limits(&s.limiter, &key, || chat_tokens(&req, default_output)).await?;
    let pipeline = s.pipeline(&key, &admission, &req.model);
    if req.is_stream() {
        return admission.stamp(stream_chat(&pipeline, req, started).await);
    }
    let answer = async {
        let result = pipeline
            .chat(&req)
            .await
            .map_err(|e| ApiError::from_client(&e))?;
        let resp = axum::Json(&result.response).into_response();
        let mut resp = with_overhead(resp, started, result.meta.latency);
        let cache = if result.cache_hit { "hit" } else { "miss" };
        resp.headers_mut()
            .insert("x-llmkit-cache", HeaderValue::from_static(cache));
        Ok::<_, ApiError>(resp)
    };
    admission.stamp(answer.await)
}

/// A streamed answer as server-sent events: each upstream chunk as one `data:` event,
/// then `data: [DONE]`. The usage chunk is passed on only when the caller asked for it
/// (the gateway always asks upstream, for the ledger). A failure after the first byte is
/// sent as an error event, since the status line has gone already.
async fn stream_chat(
    pipeline: &Pipeline,
    req: ChatCompletionRequest,
    started: Instant,
) -> Result<Response, ApiError> {
    let wants_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let stream = pipeline
        .chat_stream(&req)
        .await
        .map_err(|e| ApiError::from_client(&e))?;
    let latency = stream.meta().latency;
    let events = stream
        .filter_map(move |item| {
            let event = match item {
                Ok(chunk) if !wants_usage && chunk.choices.is_empty() && chunk.usage.is_some() => {
                    None
                }
                Ok(chunk) => serde_json::to_string(&chunk).ok().map(sse),
                Err(e) => Some(sse(ApiError::from_client(&e).body().to_string())),
            };
            futures::future::ready(event.map(Ok::<Bytes, std::convert::Infallible>))
        })
        .chain(futures::stream::once(futures::future::ready(Ok(
            Bytes::from_static(b"data: [DONE]\n\n"),
        ))));
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| Response::new(Body::empty()));
    Ok(with_overhead(resp, started, latency))
}

fn sse(data: String) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// A legacy completion, whole: the client has no streamed completions, so `stream: true`
/// is refused with 400 rather than answered as one block the caller did not ask for.
async fn completions(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (key, req): (_, CompletionRequest) =
        admit(&s, &labels, &headers, body, |r: &CompletionRequest| {
            r.model.as_str()
        })
        .await?;
    if req.stream == Some(true) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "This gateway does not stream /v1/completions; send `stream: false`, or use /v1/chat/completions to stream.",
        )
        .param("stream"));
    }
    let default_output = s.accounting.default_output_estimate;
    let admission =
        admit_limits(&s.limiter, &key, || completion_tokens(&req, default_output)).await?;
    let answer = async {
        let resp = s
            .pipeline(&key, &admission, &req.model)
            .completions(&req)
            .await
            .map_err(|e| ApiError::from_client(&e))?;
        Ok::<_, ApiError>(with_overhead(
            axum::Json(&resp.body).into_response(),
            started,
            resp.meta.latency,
        ))
    };
    admission.stamp(answer.await)
}

async fn embeddings(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (key, req): (_, EmbeddingRequest) =
        admit(&s, &labels, &headers, body, |r: &EmbeddingRequest| {
            r.model.as_str()
        })
        .await?;
    let admission = admit_limits(&s.limiter, &key, || embedding_tokens(&req)).await?;
    let answer = async {
        let resp = s
            .pipeline(&key, &admission, &req.model)
            .embeddings(&req)
            .await
            .map_err(|e| ApiError::from_client(&e))?;
        Ok::<_, ApiError>(with_overhead(
            axum::Json(&resp.body).into_response(),
            started,
            resp.meta.latency,
        ))
    };
    admission.stamp(answer.await)
}

/// `x-llmkit-overhead-ms`: the time the gateway itself took (for a stream, up to the
/// response head), the upstream's own latency taken out.
fn with_overhead(mut resp: Response, started: Instant, upstream: Duration) -> Response {
    let overhead = started.elapsed().saturating_sub(upstream);
    let ms = format!("{:.3}", overhead.as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&ms) {
        resp.headers_mut().insert("x-llmkit-overhead-ms", v);
    }
    resp
}

/// Decodes a JSON body, with OpenAI's statuses: 413 over the limit, 400 otherwise.
/// What every model route does first: the key is checked, the body parsed, the metrics
/// labelled, and the model held against the key's scope.
async fn admit<T: serde::de::DeserializeOwned>(
    s: &AppState,
    labels: &Labels,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    model_of: impl Fn(&T) -> &str,
) -> Result<(VirtualKey, T), ApiError> {
    let key = s.authorize(headers).await?;
    labels.set(Some(&key.id), None);
    let req: T = parse_json(headers, body)?;
    let model = model_of(&req);
    labels.set(None, Some(model));
    if !key.allows(model) {
        return Err(ApiError::model_not_allowed(model));
    }
    Ok((key, req))
}

fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "The request body is larger than this gateway accepts.",
            )
            .code("request_too_large")
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "The request body could not be read.",
            )
        }
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The request's Content-Type must be application/json.",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("The request body is not valid JSON for this endpoint: {e}"),
        )
    })
}

/// One OpenAI error body with its status and headers.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: String,
    message: String,
    param: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
    retry_after: Option<u64>,
    /// Set when the gateway refused the request itself (for the metrics).
    refusal: Option<&'static str>,
    /// More headers for the answer (`x-ratelimit-*`, `retry-after-ms`).
    headers: HeaderMap,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: kind.to_string(),
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            refusal: None,
            headers: HeaderMap::new(),
        }
    }

    pub(crate) fn refused(mut self, reason: &'static str) -> Self {
        self.refusal = Some(reason);
        self
    }

    fn param(mut self, param: &str) -> Self {
        self.param = Some(json!(param));
        self
    }

    pub(crate) fn code(mut self, code: &str) -> Self {
        self.code = Some(json!(code));
        self
    }

    /// `Retry-After` in whole seconds.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub(crate) fn with_headers(mut self, headers: &HeaderMap) -> Self {
        self.headers.extend(headers.clone());
        self
    }

    fn model_not_allowed(model: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!("This key may not use the model `{model}`."),
        )
        .code("model_not_allowed")
        .refused("scope")
    }

    /// A pipeline failure: the budget and price refusals are the gateway's own answers;
    /// everything else came from (or on the way to) the upstream.
    fn from_client(e: &ClientError) -> Self {
        match e {
            ClientError::BudgetExceeded { period, .. } => {
                let mut err = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "insufficient_quota",
                    format!("This key's {period} budget is used up."),
                )
                .code("insufficient_quota");
                err.retry_after = Some(BUDGET_RETRY_AFTER_SECS);
                // The official SDKs retry every 429, and the Node one sleeps for whatever
                // `Retry-After` says: told not to, they raise at once.
                err.headers.insert(
                    axum::http::HeaderName::from_static("x-should-retry"),
                    HeaderValue::from_static("false"),
                );
                err.refused("budget")
            }
            ClientError::Unpriced { model } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("`{model}` has no known price, so this key's budget cannot hold it."),
            )
            .code("model_unpriced")
            .refused("unpriced"),
            ClientError::Accounting { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "The gateway's ledger is unavailable; nothing was sent.",
            ),
            other => Self::upstream(other),
        }
    }

    /// An upstream failure: its 4xx answers (and 429s with their wait) pass through, a
    /// 5xx or a broken connection becomes 502, a timeout 504.
    fn upstream(e: &ClientError) -> Self {
        match e {
            ClientError::RetriesExhausted { last, .. } => Self::upstream(last),
            ClientError::Api {
                status,
                error,
                retry_after,
                ..
            } if (400..500).contains(status) => {
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut err = match error {
                    Some(body) => {
                        let mut err = Self::new(
                            status,
                            body.kind.as_deref().unwrap_or("invalid_request_error"),
                            body.message.clone(),
                        );
                        err.param = body.param.clone();
                        err.code = body.code.clone();
                        err
                    }
                    None => Self::new(
                        status,
                        "invalid_request_error",
                        "The upstream refused the request.",
                    ),
                };
                err.retry_after = retry_after.map(|d| d.as_secs().max(1));
                if status == StatusCode::TOO_MANY_REQUESTS && err.retry_after.is_none() {
                    err.retry_after = Some(1);
                }
                err
            }
            ClientError::Timeout(_) | ClientError::StreamStalled { .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                "The upstream did not answer in time.",
            )
            .code("upstream_timeout"),
            other => Self::new(
                StatusCode::BAD_GATEWAY,
                "api_error",
                format!("The upstream failed: {other}"),
            )
            .code("upstream_error"),
        }
    }

    fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        resp.headers_mut().extend(self.headers);
        if let Some(reason) = self.refusal {
            resp.extensions_mut().insert(Refused(reason));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// A budget refusal lasts until the local day rolls over, which this slice does not
/// compute; an hour's `Retry-After` keeps SDK retries from hammering it meanwhile.
const BUDGET_RETRY_AFTER_SECS: u64 = 3600;
