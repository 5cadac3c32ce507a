//! One request's passage through its key's rate limits: the token estimate, the limiter's
//! decision, the OpenAI-shaped 429 of a refusal, the `x-ratelimit-*` headers of every
//! answer, and the accounting step that settles the estimate with the real usage.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use llmkit_client::{Accounting, ClientError, Outcome, RequestInfo};
use llmkit_store::VirtualKey;
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, EmbeddingInput,
    EmbeddingRequest,
};

use crate::api_error::ApiError;
use crate::limits::{Decision, KeyLimits, LimitKind, Limiter, Permit, Snapshot, go_duration};

/// An admitted request: its hold on the limits (none for a key without limits) and the
/// headers every answer to it carries.
pub(crate) struct Admission {
    pub(crate) permit: Option<Arc<Permit>>,
    headers: HeaderMap,
}

impl Admission {
    /// Adds the `x-ratelimit-*` headers to the answer, whether it succeeded or not.
    pub(crate) fn stamp(&self, result: Result<Response, ApiError>) -> Result<Response, ApiError> {
        match result {
            Ok(mut resp) => {
                resp.headers_mut().extend(self.headers.clone());
                Ok(resp)
            }
            Err(e) => Err(e.with_headers(&self.headers)),
        }
    }
}

/// Asks the limiter about a request of `key`'s; `tokens` computes its estimate (only when
/// the key has a token limit: counting costs a tokenizer pass).
pub(crate) async fn admit_limits(
    limiter: &Arc<dyn Limiter>,
    key: &VirtualKey,
    tokens: impl FnOnce() -> u64,
) -> Result<Admission, ApiError> {
    let limits = KeyLimits::of(key);
    if limits.is_empty() {
        return Ok(Admission {
            permit: None,
            headers: HeaderMap::new(),
        });
    }
    let estimated = if limits.tpm.is_some() { tokens() } else { 0 };
    match limiter.admit(&key.id, limits, estimated).await {
        Decision::Admitted(snapshot) => Ok(Admission {
            permit: Some(Arc::new(Permit::new(
                Arc::clone(limiter),
                key.id.clone(),
                limits,
                estimated,
            ))),
            headers: headers(&snapshot),
        }),
        Decision::Refused {
            kind,
            retry_after,
            fits,
            snapshot,
        } => {
            Err(refusal(limits, kind, retry_after, fits, estimated)
                .with_headers(&headers(&snapshot)))
        }
    }
}

/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the key's buckets.
fn headers(s: &Snapshot) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (what, window) in [("requests", s.requests), ("tokens", s.tokens)] {
        let Some(w) = window else { continue };
        for (name, value) in [
            ("limit", w.limit.to_string()),
            ("remaining", w.remaining.to_string()),
            ("reset", go_duration(w.reset)),
        ] {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(format!("x-ratelimit-{name}-{what}")),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
    }
    h
}

/// The 429 of a refused request, worded as OpenAI words its own, with `Retry-After` (whole
/// seconds) and `retry-after-ms`, which the official SDKs prefer.
fn refusal(
    limits: KeyLimits,
    kind: LimitKind,
    retry_after: Duration,
    fits: bool,
    estimated: u64,
) -> ApiError {
    let wait_ms = (retry_after.as_secs_f64() * 1000.0).ceil().max(1.0) as u64;
    let wait = go_duration(Duration::from_millis(wait_ms));
    let (kind_name, message) = match kind {
        LimitKind::Requests => (
            "requests",
            format!(
                "Rate limit reached for this key on requests per min (RPM): Limit {}. Please try again in {wait}.",
                limits.rpm.unwrap_or(0)
            ),
        ),
        LimitKind::Tokens if !fits => (
            "tokens",
            format!(
                "Request too large for this key on tokens per min (TPM): Limit {}, Requested {estimated}. Lower max_tokens or shorten the prompt.",
                limits.tpm.unwrap_or(0)
            ),
        ),
        LimitKind::Tokens => (
            "tokens",
            format!(
                "Rate limit reached for this key on tokens per min (TPM): Limit {}, Requested {estimated}. Please try again in {wait}.",
                limits.tpm.unwrap_or(0)
            ),
        ),
        LimitKind::Concurrency => (
            "requests",
            format!(
                "Too many requests of this key in flight at once: Limit {}. Please try again in {wait}.",
                limits.max_concurrent.unwrap_or(0)
            ),
        ),
    };
    let mut extra = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&wait_ms.to_string()) {
        extra.insert(HeaderName::from_static("retry-after-ms"), v);
    }
    if !fits {
        // Waiting cannot help a request larger than the whole minute's limit.
        extra.insert(
            HeaderName::from_static("x-should-retry"),
            HeaderValue::from_static("false"),
        );
    }
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, kind_name, message)
        .code("rate_limit_exceeded")
        .retry_after(wait_ms.div_ceil(1000).max(1))
        .refused(kind.reason())
        .with_headers(&extra)
}

/// A chat request's token estimate: its prompt plus its output budget (or `default_output`
/// tokens) for each of its `n` answers, counted as the budget estimate counts them.
pub(crate) fn chat_tokens(req: &ChatCompletionRequest, default_output: u32) -> u64 {
    let prompt = llmkit_client::count_chat_tokens(&req.model, &req.messages) as u64;
    let out = u64::from(req.output_budget().unwrap_or(default_output));
    prompt + out * u64::from(req.n.unwrap_or(1).max(1))
}

/// A legacy completion's token estimate: its prompts plus the output budget of each answer.
pub(crate) fn completion_tokens(req: &CompletionRequest, default_output: u32) -> u64 {
    let (prompt, prompts) = llmkit_accounting::completion_prompt_tokens(req);
    let out = u64::from(req.max_tokens.unwrap_or(default_output));
    let answers = u64::from(req.n.unwrap_or(1).max(req.best_of.unwrap_or(1)).max(1));
    prompt + out * answers * prompts
}

/// An embeddings request's token estimate: its input tokens.
pub(crate) fn embedding_tokens(req: &EmbeddingRequest) -> u64 {
    let enc = llmkit_client::encoding_for_model(&req.model);
    let n = match &req.input {
        EmbeddingInput::Text(t) => llmkit_client::count_tokens(enc, t),
        EmbeddingInput::Texts(ts) => ts.iter().map(|t| llmkit_client::count_tokens(enc, t)).sum(),
        EmbeddingInput::Tokens(ids) => ids.len(),
        EmbeddingInput::TokenBatches(b) => b.iter().map(Vec::len).sum(),
    };
    n as u64
}

/// The key's accounting step, settling the request's token estimate with the usage its
/// ledger row records (nothing for a cache hit or a failure). It holds the permit, so a
/// stream keeps its concurrency slot until the stream ends.
pub(crate) struct Limited {
    pub(crate) inner: Arc<dyn Accounting>,
    pub(crate) permit: Arc<Permit>,
}

impl Accounting for Limited {
    fn cache_get(&self, req: &ChatCompletionRequest) -> Option<ChatCompletionResponse> {
        self.inner.cache_get(req)
    }

    fn cache_put(&self, req: &ChatCompletionRequest, resp: &ChatCompletionResponse) {
        self.inner.cache_put(req, resp);
    }

    fn reserve(&self, info: &RequestInfo, req: &ChatCompletionRequest) -> Result<u64, ClientError> {
        self.inner.reserve(info, req)
    }

    fn reserve_embeddings(
        &self,
        info: &RequestInfo,
        req: &EmbeddingRequest,
    ) -> Result<u64, ClientError> {
        self.inner.reserve_embeddings(info, req)
    }

    fn reserve_completion(
        &self,
        info: &RequestInfo,
        req: &CompletionRequest,
    ) -> Result<u64, ClientError> {
        self.inner.reserve_completion(info, req)
    }

    fn record(&self, info: &RequestInfo, ticket: u64, outcome: &Outcome<'_>) {
        self.inner.record(info, ticket, outcome);
        let used = match (outcome.usage, outcome.cache_hit) {
            (Some(u), false) => u.prompt_tokens + u.completion_tokens,
            _ => 0,
        };
        self.permit.settle(used);
    }
}
