//! `HttpClient`: requests to an OpenAI-compatible server (or Azure OpenAI) with headers, timeouts and retries.

use std::fmt;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use bytes::Bytes;
use futures::Stream;
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, EmbeddingResponse, ModelList, StreamOptions,
};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

use crate::capabilities::Missing;
use crate::config::{ClientConfig, redact_url};
use crate::error::{BoxError, ClientError, error_chain, fmt_duration, truncate_raw};
use crate::ratelimit::RateLimitInfo;
use crate::retry::{Retry, delay_for};
use crate::stream::{ChatStream, HttpStreamState};

pub(crate) use crate::answer::{
    api_failure, body_error, exhausted, meta_from, read_body, tls_failure, to_body,
};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("llmkit/", env!("CARGO_PKG_VERSION"));

/// A decoded response body with what was learnt about the exchange.
#[derive(Debug, Clone)]
pub struct Response<T> {
    pub body: T,
    pub meta: ResponseMeta,
}

/// Facts about the exchange that produced a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseMeta {
    /// The server's `x-request-id` of the attempt that succeeded.
    pub request_id: Option<String>,
    /// HTTP status of that attempt.
    pub status: u16,
    /// Time from the call to the full body (retries and their waits included).
    pub latency: Duration,
    /// Time from the call to the first content token (streams only).
    pub ttft: Option<Duration>,
    /// Attempts made, 1 when the first one succeeded.
    pub attempts: u32,
    /// The `x-ratelimit-*` headers of that attempt.
    pub rate_limit: RateLimitInfo,
}

/// A client for one OpenAI-compatible server. Cheap to clone (shares its connection pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
    /// Cancelled by the caller (Ctrl-C) to stop a background response: see
    /// [`HttpClient::with_interrupt`].
    interrupt: Option<CancellationToken>,
}

struct Inner {
    http: reqwest::Client,
    cfg: ClientConfig,
    base: Url,
    /// No system CA roots were found, so HTTPS cannot verify any server.
    no_system_roots: bool,
    /// The features the server is known to lack (given, or learnt from its rejections).
    missing: Missing,
}

/// A response body as a stream of byte pieces.
pub(crate) type BodyStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A request body other than JSON: its type, its length when known, and the bytes.
pub(crate) struct RawBody {
    pub content_type: String,
    pub length: Option<u64>,
    pub body: reqwest::Body,
}

/// A failed attempt and whether to try again.
pub(crate) struct Failure {
    pub error: ClientError,
    pub retry: Retry,
}

impl Failure {
    pub(crate) fn retryable(error: ClientError) -> Self {
        Self {
            error,
            retry: Retry::Yes { server_delay: None },
        }
    }
}

/// What the retry loop does next.
pub(crate) enum Next {
    Wait(Duration),
    Fail(ClientError),
}

impl HttpClient {
    /// Builds the client. Fails on a base URL that is not http(s) or a header that is not
    /// valid HTTP.
    pub fn new(cfg: ClientConfig) -> Result<HttpClient, ClientError> {
        let base = parse_base_url(&cfg.base_url)?;
        let headers = default_headers(&cfg)?;
        install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .default_headers(headers.clone())
                .connect_timeout(cfg.timeouts.connect)
                .tcp_nodelay(true)
        };
        // The platform verifier fails to build when the system has no CA bundle (minimal
        // containers). Plain-HTTP servers (a local vLLM, the mock) must still work then, so
        // fall back to an empty root store: HTTPS then fails per request with a hint.
        let (http, no_system_roots) = match builder().build() {
            Ok(c) => (c, false),
            Err(first) => match builder()
                .tls_certs_only(Vec::<reqwest::Certificate>::new())
                .build()
            {
                Ok(c) => (c, true),
                Err(_) => {
                    return Err(ClientError::InvalidConfig(format!(
                        "could not build the HTTP client: {first}"
                    )));
                }
            },
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                missing: Missing::new(&cfg.missing_features),
                cfg,
                base,
                no_system_roots,
            }),
            interrupt: None,
        })
    }

    /// A client whose background responses (`background: true`, polled until done) are
    /// cancelled at the server when `token` is cancelled: the poll stops, `POST
    /// /responses/{id}/cancel` is sent, and the call fails with [`ClientError::Interrupted`].
    /// Without it, dropping the call leaves the response running upstream.
    pub fn with_interrupt(mut self, token: CancellationToken) -> Self {
        self.interrupt = Some(token);
        self
    }

    pub(crate) fn interrupt(&self) -> Option<&CancellationToken> {
        self.interrupt.as_ref()
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// The base URL, with any credentials in it redacted.
    pub fn base_url(&self) -> String {
        redact_url(&self.inner.cfg.base_url)
    }

    /// A chat request, non-streamed (any `stream` setting is removed): `POST
    /// /chat/completions`, or `POST /responses` when the config's `api` says so (the answer
    /// is converted to chat's shape either way).
    pub async fn chat(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        if self.routes_to_responses(req) {
            return self.chat_over_responses(req).await;
        }
        if req.extra.get("background") == Some(&serde_json::Value::Bool(true)) {
            return Err(ClientError::Unsupported {
                what: "background mode is a Responses API feature, and this request goes over \
                       Chat Completions"
                    .into(),
                hint: "send it with --api responses (the server must have /v1/responses)".into(),
                options: true,
            });
        }
        self.chat_completions(req).await
    }

    /// `POST /chat/completions`, non-streamed.
    pub(crate) async fn chat_completions(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        let mut req = req.clone();
        req.stream = None;
        req.stream_options = None;
        strip_reasoning_items(&mut req);
        // Each pass that fails on a feature the server lacks sends the next one without it.
        loop {
            let sent = self.adapted(&req);
            let body = to_body(&sent)?;
            let result = self
                .execute(
                    Method::POST,
                    "chat/completions",
                    Some(body),
                    Some(&sent.model),
                    "the chat completion",
                )
                .await;
            match result {
                Err(e) => self.fall_back_from(e, &sent)?,
                ok => return ok,
            }
        }
    }

    /// A streamed chat request: `POST /chat/completions` with `stream: true` and
    /// `include_usage` (or `POST /responses` when the config's `api` says so, its events
    /// turned into chunks), as a stream of chunks. Errors before the first content token
    /// (including a stall) are retried inside the stream; dropping the stream closes the
    /// connection.
    pub async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatStream, ClientError> {
        if self.routes_to_responses(req) {
            return self.chat_stream_over_responses(req).await;
        }
        self.chat_stream_completions(req).await
    }

    /// `POST /chat/completions`, streamed.
    pub(crate) async fn chat_stream_completions(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatStream, ClientError> {
        let mut req = req.clone();
        req.stream = Some(true);
        strip_reasoning_items(&mut req);
        let mut opts = req.stream_options.take().unwrap_or_default();
        opts.include_usage = Some(true);
        req.stream_options = Some(StreamOptions { ..opts });
        let url = self.url_for("chat/completions", Some(&req.model))?;
        let started = Instant::now();
        let mut attempt: u32;
        let (body, stream, meta) = loop {
            // A pass after a rejection gets the whole retry budget again.
            attempt = 0;
            let sent = self.adapted(&req);
            let body = to_body(&sent)?;
            match self.open_stream(&url, &body, &mut attempt, started).await {
                Ok((stream, meta)) => break (body, stream, meta),
                Err(e) => self.fall_back_from(e, &sent)?,
            }
        };
        let state = HttpStreamState::new(
            self.clone(),
            url,
            body,
            stream,
            meta.clone(),
            attempt,
            started,
        );
        Ok(ChatStream::from_http(state, meta))
    }

    /// `POST /completions` (legacy text completions), non-streamed.
    pub async fn completions(
        &self,
        req: &CompletionRequest,
    ) -> Result<Response<CompletionResponse>, ClientError> {
        let mut req = req.clone();
        req.stream = None;
        req.stream_options = None;
        let body = to_body(&req)?;
        self.execute(
            Method::POST,
            "completions",
            Some(body),
            Some(&req.model),
            "the completion",
        )
        .await
    }

    /// `POST /embeddings`.
    pub async fn embeddings(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Response<EmbeddingResponse>, ClientError> {
        let body = to_body(req)?;
        self.execute(
            Method::POST,
            "embeddings",
            Some(body),
            Some(&req.model),
            "the embeddings",
        )
        .await
    }

    /// `GET /models`.
    pub async fn models(&self) -> Result<Response<ModelList>, ClientError> {
        self.execute(Method::GET, "models", None, None, "the model list")
            .await
    }

    /// `POST {path}` with a raw JSON body, answered with raw JSON (batches, files, a
    /// gateway's pass-through). In Azure mode the body's `model` names the deployment for
    /// `chat/completions`, `completions` and `embeddings`.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Response<serde_json::Value>, ClientError> {
        let model = body.get("model").and_then(|m| m.as_str());
        let bytes = Bytes::from(serde_json::to_vec(body).map_err(|e| {
            ClientError::InvalidConfig(format!("the request body cannot be serialised: {e}"))
        })?);
        self.execute(Method::POST, path, Some(bytes), model, "the response")
            .await
    }

    /// `GET {path}`, answered with raw JSON.
    pub async fn get_json(&self, path: &str) -> Result<Response<serde_json::Value>, ClientError> {
        self.execute(Method::GET, path, None, None, "the response")
            .await
    }

    /// The full URL of `path`. In Azure mode, deployment-scoped paths go to
    /// `/openai/deployments/{deployment}/{path}` (the configured deployment, else `model`),
    /// others to `/openai/{path}`, with `?api-version=` appended.
    pub fn url_for(&self, path: &str, model: Option<&str>) -> Result<String, ClientError> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let path = path.trim_matches('/');
        let mut url = self.inner.base.clone();
        let azure = self.inner.cfg.azure.as_ref();
        {
            let mut segs = url.path_segments_mut().map_err(|()| {
                ClientError::InvalidConfig(format!(
                    "base URL {} cannot have a path",
                    self.base_url()
                ))
            })?;
            segs.pop_if_empty();
            if let Some(az) = azure {
                segs.push("openai");
                if matches!(path, "chat/completions" | "completions" | "embeddings") {
                    let deployment = az.deployment.as_deref().or(model).unwrap_or_default();
                    if deployment.is_empty() {
                        return Err(ClientError::InvalidConfig(
                            "Azure mode needs a deployment name (or a model to use as one)".into(),
                        ));
                    }
                    segs.push("deployments");
                    segs.push(deployment);
                }
            }
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                segs.push(seg);
            }
        }
        let mut q: Vec<String> = query.map(|q| q.to_string()).into_iter().collect();
        if let Some(az) = azure {
            let v: String =
                url::form_urlencoded::byte_serialize(az.api_version.as_bytes()).collect();
            q.push(format!("api-version={v}"));
        }
        if !q.is_empty() {
            url.set_query(Some(&q.join("&")));
        }
        Ok(url.to_string())
    }

    /// The features this client knows its server lacks.
    pub(crate) fn missing(&self) -> &Missing {
        &self.inner.missing
    }

    /// Sends a request with retries and decodes a JSON answer.
    pub(crate) async fn execute<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        model: Option<&str>,
        what: &str,
    ) -> Result<Response<T>, ClientError> {
        let url = self.url_for(path, model)?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .attempt_json::<T>(&method, &url, body.clone(), what)
                .await
            {
                Ok((body, mut meta)) => {
                    meta.attempts = attempt;
                    meta.latency = started.elapsed();
                    return Ok(Response { body, meta });
                }
                Err(fail) => match self.next_step(fail, attempt) {
                    Next::Wait(d) => tokio::time::sleep(d).await,
                    Next::Fail(e) => return Err(e),
                },
            }
        }
    }

    /// One attempt of a JSON request.
    async fn attempt_json<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
        what: &str,
    ) -> Result<(T, ResponseMeta), Failure> {
        let resp = self.send(method.clone(), url, body).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = read_body(resp, self.inner.cfg.timeouts.stall)
            .await
            .map_err(Failure::retryable)?;
        if !status.is_success() {
            return Err(api_failure(status, &headers, &bytes));
        }
        let value = serde_json::from_slice::<T>(&bytes).map_err(|source| {
            // A 200 whose body is cut short or is not JSON: retry (as OpenAI's SDKs do not,
            // but a proxy that truncates replies is common enough to deserve it).
            Failure::retryable(ClientError::Decode {
                what: what.to_string(),
                raw: truncate_raw(&String::from_utf8_lossy(&bytes)),
                source,
            })
        })?;
        Ok((value, meta_from(status, &headers)))
    }

    /// Opens a streamed request, retrying until a 2xx arrives. `attempt` counts on from
    /// earlier attempts of the same call.
    pub(crate) async fn open_stream(
        &self,
        url: &str,
        body: &Bytes,
        attempt: &mut u32,
        started: Instant,
    ) -> Result<(BodyStream, ResponseMeta), ClientError> {
        loop {
            *attempt += 1;
            match self.attempt_open_stream(url, body.clone()).await {
                Ok((stream, mut meta)) => {
                    meta.attempts = *attempt;
                    meta.latency = started.elapsed();
                    return Ok((stream, meta));
                }
                Err(fail) => match self.next_step(fail, *attempt) {
                    Next::Wait(d) => tokio::time::sleep(d).await,
                    Next::Fail(e) => return Err(e),
                },
            }
        }
    }

    async fn attempt_open_stream(
        &self,
        url: &str,
        body: Bytes,
    ) -> Result<(BodyStream, ResponseMeta), Failure> {
        let resp = self.send(Method::POST, url, Some(body)).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if !status.is_success() {
            let bytes = read_body(resp, self.inner.cfg.timeouts.stall)
                .await
                .map_err(Failure::retryable)?;
            return Err(api_failure(status, &headers, &bytes));
        }
        let meta = meta_from(status, &headers);
        let is_json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            // Some servers ignore `stream: true` and answer with one JSON body.
            let bytes = read_body(resp, self.inner.cfg.timeouts.stall)
                .await
                .map_err(Failure::retryable)?;
            let sse = crate::stream::json_body_as_sse(&bytes).map_err(Failure::retryable)?;
            let one: BodyStream = Box::pin(futures::stream::iter([Ok(Bytes::from(sse))]));
            return Ok((one, meta));
        }
        Ok((Box::pin(resp.bytes_stream()), meta))
    }

    /// Decides between waiting for another attempt and giving up.
    pub(crate) fn next_step(&self, fail: Failure, attempt: u32) -> Next {
        let policy = &self.inner.cfg.retry;
        let Retry::Yes { server_delay } = fail.retry else {
            return Next::Fail(fail.error);
        };
        if attempt > policy.max_retries {
            return Next::Fail(exhausted(fail.error, attempt));
        }
        Next::Wait(delay_for(policy, attempt - 1, server_delay))
    }

    pub(crate) fn timeouts(&self) -> &crate::config::Timeouts {
        &self.inner.cfg.timeouts
    }

    pub(crate) fn stall_timeout(&self) -> Duration {
        self.inner.cfg.timeouts.stall
    }

    pub(crate) fn max_retries(&self) -> u32 {
        self.inner.cfg.retry.max_retries
    }

    pub(crate) fn backoff_for(&self, retry: u32) -> Duration {
        delay_for(&self.inner.cfg.retry, retry, None)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, Failure> {
        let body = body.map(|b| RawBody {
            content_type: "application/json".into(),
            length: Some(b.len() as u64),
            body: reqwest::Body::from(b),
        });
        self.send_raw(method, url, body, self.inner.cfg.timeouts.request)
            .await
    }

    /// Sends one attempt with any body (multipart uploads) and time limit (downloads).
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        url: &str,
        body: Option<RawBody>,
        timeout: Duration,
    ) -> Result<reqwest::Response, Failure> {
        let mut rb = self.inner.http.request(method, url).timeout(timeout);
        if let Some(b) = body {
            rb = rb.header(reqwest::header::CONTENT_TYPE, b.content_type);
            if let Some(len) = b.length {
                rb = rb.header(reqwest::header::CONTENT_LENGTH, len);
            }
            rb = rb.body(b.body);
        }
        rb.send().await.map_err(|e| {
            let error = self.transport_error(e, url);
            // A TLS failure or a missing CA bundle fails the same way every time.
            let retry = if error.is_retryable() {
                Retry::Yes { server_delay: None }
            } else {
                Retry::No
            };
            Failure { error, retry }
        })
    }

    /// Whether requests go to Azure OpenAI (batch lines then name `/chat/completions`).
    pub fn is_azure(&self) -> bool {
        self.inner.cfg.azure.is_some()
    }

    fn transport_error(&self, e: reqwest::Error, url: &str) -> ClientError {
        let url = redact_url(url);
        let t = &self.inner.cfg.timeouts;
        if e.is_timeout() {
            let what = if e.is_connect() {
                format!(
                    "connecting to {url} took longer than {}",
                    fmt_duration(t.connect)
                )
            } else {
                format!(
                    "no complete response from {url} within {}",
                    fmt_duration(t.request)
                )
            };
            return ClientError::Timeout(what);
        }
        // Without a CA bundle every certificate is refused; that case has its own hint below.
        if let Some(plain_http) = tls_failure(&e)
            && (plain_http || !self.inner.no_system_roots)
        {
            return ClientError::Tls {
                url,
                plain_http,
                source: Box::new(e),
            };
        }
        if e.is_connect() {
            let source: BoxError = if self.inner.no_system_roots && url.starts_with("https:") {
                format!("No CA certificates were loaded from the system, so HTTPS cannot be verified ({e})").into()
            } else {
                Box::new(e)
            };
            return ClientError::Connect { url, source };
        }
        ClientError::Stream(format!("the request to {url} failed: {}", error_chain(&e)))
    }
}

/// Removes the Responses API's reasoning items that assistant turns carry (they mean
/// nothing to Chat Completions, and a strict server refuses fields it does not know).
fn strip_reasoning_items(req: &mut ChatCompletionRequest) {
    for m in &mut req.messages {
        m.extra.remove(llmkit_types::REASONING_ITEMS_FIELD);
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ClientError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        ClientError::InvalidConfig(format!("base URL `{}` is not a URL: {e}", redact_url(raw)))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::InvalidConfig(format!(
            "base URL `{}` must start with http:// or https://",
            redact_url(raw)
        )));
    }
    Ok(url)
}

fn default_headers(cfg: &ClientConfig) -> Result<HeaderMap, ClientError> {
    let mut h = HeaderMap::new();
    let mut put = |name: &str, value: &str, sensitive: bool| -> Result<(), ClientError> {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ClientError::InvalidConfig(format!("`{name}` is not a valid header name"))
        })?;
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            // The value is not shown: it may be a key.
            ClientError::InvalidConfig(format!("the value of header `{name}` is not valid in HTTP"))
        })?;
        v.set_sensitive(sensitive);
        h.insert(n, v);
        Ok(())
    };
    if let Some(key) = &cfg.api_key {
        let key = key.expose_secret();
        if cfg.azure.is_some() {
            put("api-key", key, true)?;
        } else {
            put("authorization", &format!("Bearer {key}"), true)?;
        }
    }
    if let Some(org) = &cfg.organization {
        put("openai-organization", org, false)?;
    }
    if let Some(project) = &cfg.project {
        put("openai-project", project, false)?;
    }
    for (name, value) in &cfg.extra_headers {
        put(name, value, crate::config::is_sensitive_header(name))?;
    }
    Ok(h)
}

/// Installs rustls's ring provider as the process default, once; a provider someone else
/// installed first is kept.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AzureConfig;

    #[test]
    fn urls_for_openai_and_azure() {
        let c = HttpClient::new(ClientConfig::new("http://localhost:8000/v1/")).unwrap();
        assert_eq!(
            c.url_for("chat/completions", Some("m")).unwrap(),
            "http://localhost:8000/v1/chat/completions"
        );
        assert_eq!(
            c.url_for("/files?purpose=batch", None).unwrap(),
            "http://localhost:8000/v1/files?purpose=batch"
        );
        let az = HttpClient::new(
            ClientConfig::new("https://res.openai.azure.com")
                .azure(AzureConfig::new("2024-10-21"))
                .api_key("k"),
        )
        .unwrap();
        assert_eq!(
            az.url_for("chat/completions", Some("gpt-4o")).unwrap(),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            az.url_for("models", None).unwrap(),
            "https://res.openai.azure.com/openai/models?api-version=2024-10-21"
        );
        assert!(az.url_for("embeddings", None).is_err());
        let fixed = HttpClient::new(
            ClientConfig::new("https://res.openai.azure.com/")
                .azure(AzureConfig::new("2024-10-21").deployment("prod chat")),
        )
        .unwrap();
        assert_eq!(
            fixed.url_for("embeddings", Some("ignored")).unwrap(),
            "https://res.openai.azure.com/openai/deployments/prod%20chat/embeddings?api-version=2024-10-21"
        );
    }

    #[test]
    fn rejects_bad_config() {
        assert!(matches!(
            HttpClient::new(ClientConfig::new("localhost:8000")),
            Err(ClientError::InvalidConfig(_))
        ));
        assert!(matches!(
            HttpClient::new(ClientConfig::new("not a url")),
            Err(ClientError::InvalidConfig(_))
        ));
        let err =
            HttpClient::new(ClientConfig::new("http://x/v1").api_key("bad\nkey")).unwrap_err();
        assert!(!err.to_string().contains("bad"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = HttpClient::new(ClientConfig::new("http://x/v1").api_key("sk-top-secret")).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-top-secret"), "{shown}");
    }
}
