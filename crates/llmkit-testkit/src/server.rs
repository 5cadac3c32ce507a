//! The server: `MockServer` (start, address, request log, shutdown), routing of OpenAI and Azure
//! paths, and the per-request pipeline (auth → missing features → handler → rate limit →
//! fault → log).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::batches::Store;
use crate::config::{Fault, MockConfig};
use crate::conn::{MockListener, ResetSwitch};
use crate::errors::ApiError;
use crate::faults::{self, Early, FaultDice};
use crate::finetune::FineTunes;
use crate::log::{Entry, RequestLog};
use crate::prompt_cache::PromptCache;
use crate::ratelimit::RateLimiter;
use crate::response::{Call, Handled, Reply};
use crate::responses::Responses;
use crate::served::{self, Served};
use crate::{capabilities, chat, completions, embeddings, models, org};

/// Largest request body accepted (prompts over the context window must still arrive whole).
const MAX_BODY: usize = 256 * 1024 * 1024;
/// A request carrying this header gets that fault, whatever `fault_rate` says.
pub const FORCE_FAULT_HEADER: &str = "x-mock-fault";

/// A running mock server. Dropping it (or calling [`MockServer::shutdown`]) stops it.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    app: Arc<App>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds `127.0.0.1:cfg.port` and serves in a background task of the current runtime.
    pub async fn start(cfg: MockConfig) -> io::Result<MockServer> {
        if !(0.0..=1.0).contains(&cfg.fault_rate) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fault rate {} is outside 0..=1", cfg.fault_rate),
            ));
        }
        let listener = TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let app = Arc::new(App::new(cfg, cancel.clone())?);
        let router = Router::new().fallback(entry).with_state(app.clone());
        let service = router.into_make_service_with_connect_info::<ResetSwitch>();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(MockListener(listener), service)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                eprintln!("llmkit-mock: server stopped: {e}");
            }
        });
        Ok(MockServer {
            addr,
            app,
            cancel,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests received so far, on every path, including rejected ones.
    pub fn request_count(&self) -> usize {
        self.app.received.load(Ordering::SeqCst)
    }

    /// The log entries of answered requests, as also written to `--log`.
    pub fn requests(&self) -> Vec<Value> {
        self.app.log.entries()
    }

    /// Stops accepting, ends stalled responses, and waits (at most 5 s) for connections to close.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// State shared by all requests of one server.
#[derive(Debug)]
struct App {
    cfg: MockConfig,
    seq: AtomicU64,
    received: AtomicUsize,
    dice: Mutex<FaultDice>,
    limits: Mutex<RateLimiter>,
    log: RequestLog,
    store: Mutex<Store>,
    tunes: Mutex<FineTunes>,
    responses: Mutex<Responses>,
    prompt_cache: Mutex<PromptCache>,
    /// What was served, for the organisation reports.
    served: Mutex<Served>,
    cancel: CancellationToken,
}

impl App {
    fn new(cfg: MockConfig, cancel: CancellationToken) -> io::Result<Self> {
        Ok(Self {
            dice: Mutex::new(FaultDice::new(cfg.seed, cfg.fault_rate, cfg.faults.clone())),
            limits: Mutex::new(RateLimiter::new(cfg.rpm, cfg.tpm)),
            log: RequestLog::open(cfg.log.as_deref())?,
            seq: AtomicU64::new(0),
            received: AtomicUsize::new(0),
            store: Mutex::new(Store::default()),
            tunes: Mutex::new(FineTunes::default()),
            responses: Mutex::new(Responses::default()),
            prompt_cache: Mutex::new(PromptCache::default()),
            served: Mutex::new(Served::default()),
            cancel,
            cfg,
        })
    }

    fn limited(&self) -> bool {
        self.cfg.rpm.is_some() || self.cfg.tpm.is_some()
    }

    /// Everything after the body has arrived; synchronous, so the outcome is decided at once.
    fn process(
        &self,
        parts: &Parts,
        raw: &Bytes,
        body: &Value,
        seq: u64,
    ) -> (Outcome, Option<Fault>) {
        let (mut route, deployment) = route(&parts.method, parts.uri.path());
        if let Err(e) = self.check_auth(&parts.headers, &route) {
            return (Outcome::Reply(e.into()), None);
        }
        if self.cfg.no_responses && route.is_responses() {
            route = Route::Unknown;
        }
        let served_kind = route.served_kind();
        let body = match (&deployment, body) {
            (Some(dep), Value::Object(map)) => {
                let mut map = map.clone();
                map.insert("model".into(), Value::String(dep.clone()));
                Value::Object(map)
            }
            _ => body.clone(),
        };
        let cached_tokens = if route == Route::Chat {
            lock(&self.prompt_cache).serve(&body)
        } else {
            0
        };
        let call = Call {
            seq,
            created: unix_now(),
            tokens_per_sec: self.cfg.tokens_per_sec,
            cached_tokens,
        };
        let mut body = body;
        if route == Route::Chat {
            if let Some(e) = capabilities::rejection(&self.cfg, &body) {
                return (Outcome::Reply(e.into()), None);
            }
            if self.cfg.no_json_schema.is_some()
                && let Some(rewritten) = capabilities::with_quoted_schema(&body)
            {
                body = rewritten;
            }
        }
        let handled = match route {
            Route::Chat => chat::handle(&body, &call),
            Route::Completions => completions::handle(&body, &call),
            Route::Embeddings => embeddings::handle(&body, &call),
            Route::Models => Ok(models::list()),
            Route::Model(id) => models::get(&id),
            Route::Upload => {
                let content_type = header_str(&parts.headers, "content-type").unwrap_or_default();
                lock(&self.store).upload(content_type, raw, &call)
            }
            Route::File(id) => lock(&self.store).file(&id),
            Route::FileContent(id) => lock(&self.store).file_content(&id),
            Route::DeleteFile(id) => lock(&self.store).delete_file(&id),
            Route::CreateBatch => {
                let delay = Duration::from_millis(self.cfg.batch_delay_ms);
                lock(&self.store).create_batch(&body, &call, delay)
            }
            Route::Batches => Ok(lock(&self.store).list_batches()),
            Route::Batch(id) => lock(&self.store).batch(&id),
            Route::CancelBatch(id) => lock(&self.store).cancel_batch(&id, &call),
            Route::CreateFineTune => {
                let delay = Duration::from_millis(self.cfg.finetune_delay_ms);
                let files = lock(&self.store);
                lock(&self.tunes).create(&body, &files, &call, delay)
            }
            Route::FineTunes => Ok(lock(&self.tunes).list(parts.uri.query())),
            Route::FineTune(id) => lock(&self.tunes).get(&id),
            Route::CancelFineTune(id) => lock(&self.tunes).cancel(&id),
            Route::FineTuneEvents(id) => lock(&self.tunes).events(&id, parts.uri.query()),
            Route::FineTuneCheckpoints(id) => lock(&self.tunes).checkpoints(&id),
            Route::CreateResponse => {
                lock(&self.responses).create(&body, &call, self.cfg.response_polls)
            }
            Route::ResponseInputTokens => lock(&self.responses).input_tokens(&body, seq),
            Route::GetResponse(id) => lock(&self.responses).retrieve(&id),
            Route::DeleteResponse(id) => lock(&self.responses).delete(&id),
            Route::CancelResponse(id) => lock(&self.responses).cancel(&id),
            Route::ResponseInputItems(id) => {
                lock(&self.responses).input_items(&id, parts.uri.query())
            }
            Route::OrgCompletions => self.org_report(org::Report::Completions, parts, &call),
            Route::OrgCosts => self.org_report(org::Report::Costs, parts, &call),
            Route::Unknown => Err(ApiError::unknown_url(
                parts.method.as_str(),
                parts.uri.path(),
            )),
        };
        let Handled { reply, charge } = match handled {
            Ok(h) => h,
            Err(e) => return (Outcome::Reply(e.into()), None),
        };
        if let Some((model, cost)) = &charge {
            let admitted = lock(&self.limits).admit(model, *cost, Instant::now());
            if let Err(e) = admitted {
                return (Outcome::Reply(e.into()), None);
            }
        }
        let fault = forced_fault(&parts.headers).or_else(|| lock(&self.dice).roll());
        let Some(fault) = fault else {
            if let Some(kind) = served_kind
                && reply.status.is_success()
            {
                lock(&self.served).record(kind, &reply, call.created);
            }
            return (Outcome::Reply(reply), None);
        };
        let early = faults::early(fault);
        // An injected error or reset strikes before the request reaches the model, so it
        // gives its charge back (the bucket's own 429s never charged): a client that retries
        // it pays once. The dice are rolled after admission all the same, so a seed draws the
        // same faults as before.
        if early.is_some()
            && let Some((_, cost)) = charge
        {
            lock(&self.limits).refund(cost, Instant::now());
        }
        let outcome = match early {
            Some(Early::Error(e)) => Outcome::Reply(e.into()),
            Some(Early::Reset) => Outcome::Reset,
            None => Outcome::Reply(faults::apply(reply, fault)),
        };
        (outcome, Some(fault))
    }

    fn org_report(
        &self,
        report: org::Report,
        parts: &Parts,
        call: &Call,
    ) -> Result<Handled, ApiError> {
        let served = lock(&self.served);
        let query = parts.uri.query();
        org::handle(report, query, served.rows(), &self.cfg.org, call.created)
    }

    /// The organisation reports take the admin key when one is set; every other path (and
    /// the reports when no admin key is set) the API key.
    fn check_auth(&self, headers: &HeaderMap, route: &Route) -> Result<(), ApiError> {
        let admin = matches!(route, Route::OrgCompletions | Route::OrgCosts);
        let expected = match (&self.cfg.org.admin_key, admin) {
            (Some(admin_key), true) => Some(admin_key),
            _ => self.cfg.api_key.as_ref(),
        };
        let Some(expected) = expected else {
            return Ok(());
        };
        let bearer = header_str(headers, "authorization")
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
        let azure = header_str(headers, "api-key").map(str::trim);
        let given: Vec<&str> = [bearer, azure]
            .into_iter()
            .flatten()
            .filter(|k| !k.is_empty())
            .collect();
        if given.iter().any(|k| k == expected) {
            return Ok(());
        }
        match given.first() {
            Some(wrong) => Err(ApiError::invalid_api_key(wrong)),
            None => Err(ApiError::missing_api_key()),
        }
    }
}

/// How a request ends.
enum Outcome {
    Reply(Reply),
    Reset,
}

#[derive(Debug, Clone, PartialEq)]
enum Route {
    Chat,
    Completions,
    Embeddings,
    Models,
    Model(String),
    Upload,
    File(String),
    FileContent(String),
    DeleteFile(String),
    CreateBatch,
    Batches,
    Batch(String),
    CancelBatch(String),
    CreateFineTune,
    FineTunes,
    FineTune(String),
    CancelFineTune(String),
    FineTuneEvents(String),
    FineTuneCheckpoints(String),
    CreateResponse,
    ResponseInputTokens,
    GetResponse(String),
    DeleteResponse(String),
    CancelResponse(String),
    ResponseInputItems(String),
    OrgCompletions,
    OrgCosts,
    Unknown,
}

impl Route {
    /// The usage report a served answer of this route counts in.
    fn served_kind(&self) -> Option<served::Kind> {
        match self {
            Route::Chat | Route::Completions | Route::CreateResponse => {
                Some(served::Kind::Completions)
            }
            Route::Embeddings => Some(served::Kind::Embeddings),
            _ => None,
        }
    }

    fn is_responses(&self) -> bool {
        matches!(
            self,
            Route::CreateResponse
                | Route::ResponseInputTokens
                | Route::GetResponse(_)
                | Route::DeleteResponse(_)
                | Route::CancelResponse(_)
                | Route::ResponseInputItems(_)
        )
    }
}

/// Maps OpenAI paths (`/v1/...`, `/openai/v1/...`) and Azure deployment paths
/// (`/openai/deployments/{name}/...`, whose deployment becomes the model) to a route.
fn route(method: &Method, path: &str) -> (Route, Option<String>) {
    let path = path.trim_end_matches('/');
    let (rest, deployment) = if let Some(azure) = path.strip_prefix("/openai/deployments/") {
        match azure.split_once('/') {
            Some((dep, rest)) => (rest, Some(dep.to_string())),
            None => return (Route::Unknown, None),
        }
    } else if let Some(rest) = path
        .strip_prefix("/v1/")
        .or_else(|| path.strip_prefix("/openai/v1/"))
    {
        (rest, None)
    } else {
        return (Route::Unknown, None);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let id = |i: usize| segments[i].to_string();
    let route = match (method.as_str(), segments.as_slice()) {
        ("POST", ["chat", "completions"]) => Route::Chat,
        ("POST", ["completions"]) => Route::Completions,
        ("POST", ["embeddings"]) => Route::Embeddings,
        ("GET", ["models"]) => Route::Models,
        ("GET", ["models", m]) if !m.is_empty() => Route::Model(id(1)),
        ("POST", ["files"]) => Route::Upload,
        ("GET", ["files", f]) if !f.is_empty() => Route::File(id(1)),
        ("GET", ["files", f, "content"]) if !f.is_empty() => Route::FileContent(id(1)),
        ("DELETE", ["files", f]) if !f.is_empty() => Route::DeleteFile(id(1)),
        ("POST", ["batches"]) => Route::CreateBatch,
        ("GET", ["batches"]) => Route::Batches,
        ("GET", ["batches", b]) if !b.is_empty() => Route::Batch(id(1)),
        ("POST", ["batches", b, "cancel"]) if !b.is_empty() => Route::CancelBatch(id(1)),
        ("POST", ["fine_tuning", "jobs"]) => Route::CreateFineTune,
        ("GET", ["fine_tuning", "jobs"]) => Route::FineTunes,
        ("GET", ["fine_tuning", "jobs", j]) if !j.is_empty() => Route::FineTune(id(2)),
        ("POST", ["fine_tuning", "jobs", j, "cancel"]) if !j.is_empty() => {
            Route::CancelFineTune(id(2))
        }
        ("GET", ["fine_tuning", "jobs", j, "events"]) if !j.is_empty() => {
            Route::FineTuneEvents(id(2))
        }
        ("GET", ["fine_tuning", "jobs", j, "checkpoints"]) if !j.is_empty() => {
            Route::FineTuneCheckpoints(id(2))
        }
        ("POST", ["responses"]) => Route::CreateResponse,
        ("POST", ["responses", "input_tokens"]) => Route::ResponseInputTokens,
        ("GET", ["responses", r]) if !r.is_empty() => Route::GetResponse(id(1)),
        ("DELETE", ["responses", r]) if !r.is_empty() => Route::DeleteResponse(id(1)),
        ("POST", ["responses", r, "cancel"]) if !r.is_empty() => Route::CancelResponse(id(1)),
        ("GET", ["responses", r, "input_items"]) if !r.is_empty() => {
            Route::ResponseInputItems(id(1))
        }
        ("GET", ["organization", "usage", "completions"]) => Route::OrgCompletions,
        ("GET", ["organization", "costs"]) => Route::OrgCosts,
        _ => Route::Unknown,
    };
    (route, deployment)
}

/// Receives one request: counts it, reads the body, waits the configured latency, processes it,
/// and logs what was sent.
async fn entry(
    State(app): State<Arc<App>>,
    ConnectInfo(reset): ConnectInfo<ResetSwitch>,
    request: Request,
) -> Response {
    let seq = app.seq.fetch_add(1, Ordering::SeqCst) + 1;
    app.received.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let raw = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if app.cfg.latency_ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(app.cfg.latency_ms)) => {}
            () = app.cancel.cancelled() => {}
        }
    }
    let (outcome, fault) = app.process(&parts, &raw, &body, seq);
    let request_id = format!("req_mock_{seq:06}");
    let (status, response) = match outcome {
        Outcome::Reset => {
            reset.trip();
            (None, Response::new(Body::empty()))
        }
        Outcome::Reply(mut reply) => {
            reply.headers.push(("x-request-id", request_id.clone()));
            reply
                .headers
                .push(("openai-processing-ms", app.cfg.latency_ms.to_string()));
            if app.limited() {
                reply
                    .headers
                    .extend(lock(&app.limits).headers(Instant::now()));
            }
            let status = reply.status.as_u16();
            (Some(status), reply.into_response(app.cancel.clone()))
        }
    };
    let entry = Entry {
        id: &request_id,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        status,
        fault: fault.map(Fault::name),
    };
    app.log.record(entry.to_json());
    response
}

fn forced_fault(headers: &HeaderMap) -> Option<Fault> {
    header_str(headers, FORCE_FAULT_HEADER).and_then(|v| v.parse().ok())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_openai_and_azure_paths() {
        let post = Method::POST;
        assert_eq!(route(&post, "/v1/chat/completions"), (Route::Chat, None));
        assert_eq!(
            route(&post, "/openai/v1/embeddings/"),
            (Route::Embeddings, None)
        );
        assert_eq!(
            route(&post, "/openai/deployments/my-dep/chat/completions"),
            (Route::Chat, Some("my-dep".into()))
        );
        assert_eq!(route(&Method::GET, "/v1/models"), (Route::Models, None));
        assert_eq!(
            route(&Method::GET, "/v1/models/gpt-4o"),
            (Route::Model("gpt-4o".into()), None)
        );
        assert_eq!(
            route(&Method::GET, "/v1/chat/completions").0,
            Route::Unknown
        );
        assert_eq!(route(&post, "/chat/completions").0, Route::Unknown);
        assert_eq!(route(&post, "/openai/deployments/x").0, Route::Unknown);
        assert_eq!(route(&post, "/v1/files").0, Route::Upload);
        assert_eq!(
            route(&Method::GET, "/v1/files/f1/content").0,
            Route::FileContent("f1".into())
        );
        assert_eq!(
            route(&post, "/v1/batches/b1/cancel").0,
            Route::CancelBatch("b1".into())
        );
        assert_eq!(route(&Method::GET, "/v1/batches").0, Route::Batches);
        assert_eq!(
            route(&Method::GET, "/v1/fine_tuning/jobs/ft1/events").0,
            Route::FineTuneEvents("ft1".into())
        );
        assert_eq!(
            route(&post, "/v1/fine_tuning/jobs/ft1/cancel").0,
            Route::CancelFineTune("ft1".into())
        );
        assert_eq!(route(&post, "/v1/responses").0, Route::CreateResponse);
        assert_eq!(
            route(&post, "/v1/responses/input_tokens").0,
            Route::ResponseInputTokens
        );
        assert_eq!(
            route(&Method::GET, "/v1/responses/r1").0,
            Route::GetResponse("r1".into())
        );
        assert_eq!(
            route(&Method::DELETE, "/v1/responses/r1").0,
            Route::DeleteResponse("r1".into())
        );
        assert_eq!(
            route(&post, "/v1/responses/r1/cancel").0,
            Route::CancelResponse("r1".into())
        );
        assert_eq!(
            route(&Method::GET, "/v1/responses/r1/input_items").0,
            Route::ResponseInputItems("r1".into())
        );
        assert_eq!(
            route(&Method::GET, "/v1/organization/usage/completions").0,
            Route::OrgCompletions
        );
        assert_eq!(
            route(&Method::GET, "/v1/organization/costs").0,
            Route::OrgCosts
        );
    }
}
