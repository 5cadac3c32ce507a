//! The one request path every command shares: redact → cache → budget → backend (with
//! retries) → ledger → cache store → restore.
//!
//! The pipeline owns the order; what happens at each step is plugged in through two traits,
//! so this crate depends on neither the redaction code (`llmkit-tasks`) nor the store
//! (`llmkit-store`). With nothing plugged in it is exactly the backend.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use llmkit_types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, CompletionRequest,
    CompletionResponse, EmbeddingRequest, EmbeddingResponse, Usage,
};
use serde_json::Value;

use crate::backend::Backend;
use crate::error::ClientError;
use crate::gate::{Attempt, Gate};
use crate::http::{Response, ResponseMeta};
use crate::stream::ChatStream;

/// The request field that routes requests with a shared prefix to one prompt cache.
const PROMPT_CACHE_KEY: &str = "prompt_cache_key";

/// Replaces personal data in an outgoing request and restores it in the answer.
pub trait Redact: Send + Sync {
    /// Rewrites the request in place; the returned restorer undoes it in the response.
    fn redact_request(&self, req: &mut ChatCompletionRequest) -> Box<dyn Restore>;
}

/// Puts the original values back, for whole texts and for streamed deltas (a placeholder
/// may be split across deltas, so the restorer holds back a possible partial placeholder).
pub trait Restore: Send {
    fn restore(&self, text: &str) -> String;
    fn push(&mut self, delta: &str) -> String;
    fn finish(&mut self) -> String;
    /// (kind, count) of what was redacted, for `--show-redactions`.
    fn counts(&self) -> Vec<(String, usize)>;
}

/// Who is asking, for the ledger and budgets.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub command: String,
    pub profile: Option<String>,
    pub session: Option<String>,
    pub batch_job: Option<String>,
}

/// Cache, budgets and the usage ledger.
pub trait Accounting: Send + Sync {
    /// A cached response for this (already redacted) request, if the cache applies to it.
    fn cache_get(&self, req: &ChatCompletionRequest) -> Option<ChatCompletionResponse>;
    /// Stores a response for this request (the implementation decides if it is cacheable).
    fn cache_put(&self, req: &ChatCompletionRequest, resp: &ChatCompletionResponse);
    /// Reserves the estimated cost of a request against the budgets, or refuses it.
    fn reserve(&self, info: &RequestInfo, req: &ChatCompletionRequest) -> Result<u64, ClientError>;
    /// Records one finished request (settling reservation `ticket`), including failures
    /// (`usage` None) and cache hits.
    fn record(&self, info: &RequestInfo, ticket: u64, outcome: &Outcome<'_>);
    /// Reserves the estimated cost of an embeddings request (its input tokens). The default
    /// reserves nothing, for accountings without budgets.
    fn reserve_embeddings(
        &self,
        info: &RequestInfo,
        req: &EmbeddingRequest,
    ) -> Result<u64, ClientError> {
        let _ = (info, req);
        Ok(0)
    }
    /// Reserves the estimated cost of a legacy completion (its prompts plus output budget).
    /// The default reserves nothing, for accountings without budgets.
    fn reserve_completion(
        &self,
        info: &RequestInfo,
        req: &CompletionRequest,
    ) -> Result<u64, ClientError> {
        let _ = (info, req);
        Ok(0)
    }
}

/// What the ledger learns about one request.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub backend: &'static str,
    /// The named upstream that served it (the gateway's routes: a pool's upstream, or
    /// `default`); `None` for a single backend and for cache hits.
    pub upstream: Option<String>,
    pub model: &'a str,
    pub usage: Option<&'a Usage>,
    pub latency: Duration,
    pub status: u16,
    pub cache_hit: bool,
    /// `usage` was counted by llmkit's tokenizer, not reported by the backend: a stream that
    /// ended (cut off, client gone, upstream without usage) before its usage chunk.
    pub tokens_counted: bool,
}

/// One backend call, boxed for a [`Gate`].
fn attempt<'a>(backend: &'a Backend, req: &'a ChatCompletionRequest) -> Attempt<'a> {
    Box::pin(backend.chat(req))
}

/// A backend with its redaction and accounting plugged in. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    backend: Backend,
    redact: Option<Arc<dyn Redact>>,
    accounting: Option<Arc<dyn Accounting>>,
    gate: Option<Arc<dyn Gate>>,
    info: RequestInfo,
    /// Sent as `prompt_cache_key` on chat requests that set none (see
    /// [`Pipeline::with_prompt_cache_key`]).
    prompt_cache_key: Option<String>,
}

/// A chat answer and how it was obtained.
#[derive(Debug, Clone)]
pub struct ChatResult {
    pub response: ChatCompletionResponse,
    pub meta: ResponseMeta,
    pub cache_hit: bool,
    pub redactions: Vec<(String, usize)>,
}

impl Pipeline {
    pub fn new(backend: Backend, info: RequestInfo) -> Self {
        Self {
            backend,
            redact: None,
            accounting: None,
            gate: None,
            info,
            prompt_cache_key: None,
        }
    }

    /// Asks the provider to route this pipeline's requests by `key` (`prompt_cache_key`),
    /// so that the turns of one conversation, or the rows of one batch job, land where their
    /// shared prefix is cached. Added after the cache lookup, to the request that goes
    /// upstream only: the response cache and the ledger see the request as the caller made
    /// it, and a request that sets its own key keeps it.
    pub fn with_prompt_cache_key(mut self, key: impl Into<String>) -> Self {
        self.prompt_cache_key = Some(key.into());
        self
    }

    /// The request as it goes upstream: with the pipeline's `prompt_cache_key` when it has
    /// none of its own.
    fn outgoing<'a>(&self, req: &'a ChatCompletionRequest) -> Cow<'a, ChatCompletionRequest> {
        match &self.prompt_cache_key {
            Some(key) if !req.extra.contains_key(PROMPT_CACHE_KEY) => {
                let mut sent = req.clone();
                sent.extra
                    .insert(PROMPT_CACHE_KEY.into(), Value::String(key.clone()));
                Cow::Owned(sent)
            }
            _ => Cow::Borrowed(req),
        }
    }

    pub fn with_redaction(mut self, r: Arc<dyn Redact>) -> Self {
        self.redact = Some(r);
        self
    }

    pub fn with_accounting(mut self, a: Arc<dyn Accounting>) -> Self {
        self.accounting = Some(a);
        self
    }

    /// Sends whole (non-streamed) chat requests through `gate`: the batch runner's limiter
    /// and retries. Streams are not gated.
    pub fn with_gate(mut self, g: Arc<dyn Gate>) -> Self {
        self.gate = Some(g);
        self
    }

    /// Tags the ledger rows with a batch job.
    pub fn with_batch_job(mut self, job: impl Into<String>) -> Self {
        self.info.batch_job = Some(job.into());
        self
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// A whole chat answer through every step.
    pub async fn chat(&self, req: &ChatCompletionRequest) -> Result<ChatResult, ClientError> {
        let mut req = req.clone();
        let restorer = self.redact.as_ref().map(|r| r.redact_request(&mut req));
        let redactions = restorer.as_ref().map(|r| r.counts()).unwrap_or_default();
        // It owns the restorer, so the future stays `Send` (a `Restore` is not `Sync`).
        let restore = move |mut resp: ChatCompletionResponse| {
            if let Some(r) = &restorer {
                for c in &mut resp.choices {
                    if let Some(text) = &c.message.content {
                        c.message.content = Some(r.restore(text));
                    }
                    // A tool sees real values; the provider only ever saw placeholders.
                    for call in c.message.tool_calls.iter_mut().flatten() {
                        call.function.arguments =
                            restore_arguments(r.as_ref(), &call.function.arguments);
                    }
                }
            }
            resp
        };
        if let Some(hit) = self.cached(&req) {
            return Ok(ChatResult {
                response: restore(hit),
                meta: ResponseMeta {
                    status: 200,
                    ..ResponseMeta::default()
                },
                cache_hit: true,
                redactions,
            });
        }
        let ticket = match &self.accounting {
            Some(acc) => acc.reserve(&self.info, &req)?,
            None => 0,
        };
        let sent = self.outgoing(&req);
        let result = match &self.gate {
            Some(gate) => {
                let send = || attempt(&self.backend, &sent);
                gate.call(&req, &send).await
            }
            None => self.backend.chat(&sent).await,
        };
        if let Some(acc) = &self.accounting {
            self.record(acc.as_ref(), ticket, &req, &result);
            if let Ok(r) = &result {
                acc.cache_put(&req, &r.body);
            }
        }
        let Response { body, meta } = result?;
        Ok(ChatResult {
            response: restore(body),
            meta,
            cache_hit: false,
            redactions,
        })
    }

    /// Embeddings through the budget guard and into the ledger (prompt tokens only). Inputs
    /// are not redacted: a placeholder would change the vector, so callers that must not
    /// send personal data redact the texts themselves.
    pub async fn embeddings(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Response<EmbeddingResponse>, ClientError> {
        let ticket = match &self.accounting {
            Some(acc) => acc.reserve_embeddings(&self.info, req)?,
            None => 0,
        };
        let result = self.backend.embeddings(req).await;
        if let Some(acc) = &self.accounting {
            let (usage, latency, status, model) = match &result {
                Ok(r) => (
                    Some(Usage::new(r.body.usage.prompt_tokens, 0)),
                    r.meta.latency,
                    r.meta.status,
                    if r.body.model.is_empty() {
                        req.model.as_str()
                    } else {
                        r.body.model.as_str()
                    },
                ),
                Err(e) => (
                    None,
                    Duration::ZERO,
                    e.status().unwrap_or(0),
                    req.model.as_str(),
                ),
            };
            let outcome = Outcome {
                backend: self.backend.kind(),
                upstream: self.backend.served_by(),
                model,
                usage: usage.as_ref(),
                latency,
                status,
                cache_hit: false,
                tokens_counted: false,
            };
            acc.record(&self.info, ticket, &outcome);
        }
        result
    }

    /// A legacy completion (`/v1/completions`, not streamed) through the budget guard and into
    /// the ledger. Not cached and not redacted: the redaction step speaks chat messages.
    pub async fn completions(
        &self,
        req: &CompletionRequest,
    ) -> Result<Response<CompletionResponse>, ClientError> {
        let ticket = match &self.accounting {
            Some(acc) => acc.reserve_completion(&self.info, req)?,
            None => 0,
        };
        let result = self.backend.completions(req).await;
        if let Some(acc) = &self.accounting {
            let (usage, latency, status, model) = match &result {
                Ok(r) => (
                    r.body.usage.as_ref(),
                    r.meta.latency,
                    r.meta.status,
                    if r.body.model.is_empty() {
                        req.model.as_str()
                    } else {
                        r.body.model.as_str()
                    },
                ),
                Err(e) => (
                    None,
                    Duration::ZERO,
                    e.status().unwrap_or(0),
                    req.model.as_str(),
                ),
            };
            let outcome = Outcome {
                backend: self.backend.kind(),
                upstream: self.backend.served_by(),
                model,
                usage,
                latency,
                status,
                cache_hit: false,
                tokens_counted: false,
            };
            acc.record(&self.info, ticket, &outcome);
        }
        result
    }

    /// A streamed chat answer. A cache hit is replayed as one chunk; deltas are restored as
    /// they pass; the ledger is written when the stream ends.
    pub async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<PipelineStream, ClientError> {
        let mut req = req.clone();
        let restorer = self.redact.as_ref().map(|r| r.redact_request(&mut req));
        let redactions = restorer.as_ref().map(|r| r.counts()).unwrap_or_default();
        if let Some(hit) = self.cached(&req) {
            return Ok(PipelineStream::replay(hit, restorer, redactions));
        }
        let ticket = match &self.accounting {
            Some(acc) => acc.reserve(&self.info, &req)?,
            None => 0,
        };
        let stream = match self.backend.chat_stream(&self.outgoing(&req)).await {
            Ok(s) => s,
            Err(e) => {
                if let Some(acc) = &self.accounting {
                    let outcome = Outcome {
                        backend: self.backend.kind(),
                        upstream: self.backend.served_by(),
                        model: &req.model,
                        usage: None,
                        latency: Duration::ZERO,
                        status: e.status().unwrap_or(0),
                        cache_hit: false,
                        tokens_counted: false,
                    };
                    acc.record(&self.info, ticket, &outcome);
                }
                return Err(e);
            }
        };
        Ok(PipelineStream {
            inner: Some(stream),
            replay: None,
            restorer,
            acc: llmkit_types::ChunkAccumulator::new(),
            finish: self.accounting.clone().map(|a| Finish {
                accounting: a,
                info: self.info.clone(),
                ticket,
                backend: self.backend.kind(),
                upstream: self.backend.served_by(),
                request: req,
            }),
            redactions,
            cache_hit: false,
            done: false,
        })
    }

    /// A cache hit for the (redacted) request, recorded in the ledger as one.
    fn cached(&self, req: &ChatCompletionRequest) -> Option<ChatCompletionResponse> {
        let acc = self.accounting.as_ref()?;
        let hit = acc.cache_get(req)?;
        let outcome = Outcome {
            backend: self.backend.kind(),
            upstream: None,
            model: &req.model,
            usage: hit.usage.as_ref(),
            latency: Duration::ZERO,
            status: 200,
            cache_hit: true,
            tokens_counted: false,
        };
        acc.record(&self.info, 0, &outcome);
        Some(hit)
    }

    fn record(
        &self,
        acc: &dyn Accounting,
        ticket: u64,
        req: &ChatCompletionRequest,
        result: &Result<Response<ChatCompletionResponse>, ClientError>,
    ) {
        let (usage, latency, status) = match result {
            Ok(r) => (r.body.usage.as_ref(), r.meta.latency, r.meta.status),
            Err(e) => (None, Duration::ZERO, e.status().unwrap_or(0)),
        };
        let outcome = Outcome {
            backend: self.backend.kind(),
            upstream: self.backend.served_by(),
            model: result
                .as_ref()
                .map_or(req.model.as_str(), |r| r.body.model.as_str()),
            usage,
            latency,
            status,
            cache_hit: false,
            tokens_counted: false,
        };
        acc.record(&self.info, ticket, &outcome);
    }
}

/// What a stream must do when it ends: settle its reservation, write the ledger, fill the
/// cache.
struct Finish {
    accounting: Arc<dyn Accounting>,
    info: RequestInfo,
    ticket: u64,
    backend: &'static str,
    upstream: Option<String>,
    request: ChatCompletionRequest,
}

/// A chat stream through the pipeline: yields chunks whose text is already restored.
pub struct PipelineStream {
    inner: Option<ChatStream>,
    replay: Option<ChatCompletionChunk>,
    restorer: Option<Box<dyn Restore>>,
    acc: llmkit_types::ChunkAccumulator,
    finish: Option<Finish>,
    redactions: Vec<(String, usize)>,
    cache_hit: bool,
    done: bool,
}

impl PipelineStream {
    fn replay(
        hit: ChatCompletionResponse,
        restorer: Option<Box<dyn Restore>>,
        redactions: Vec<(String, usize)>,
    ) -> Self {
        let chunk = ChatCompletionChunk {
            id: hit.id.clone(),
            created: hit.created,
            model: hit.model.clone(),
            usage: hit.usage.clone(),
            choices: hit
                .choices
                .iter()
                .map(|c| llmkit_types::ChunkChoice {
                    index: c.index,
                    delta: llmkit_types::Delta {
                        role: Some(c.message.role.clone()),
                        content: c.message.content.clone(),
                        ..llmkit_types::Delta::default()
                    },
                    finish_reason: c.finish_reason.clone(),
                    logprobs: None,
                })
                .collect(),
            ..ChatCompletionChunk::default()
        };
        Self {
            inner: None,
            replay: Some(chunk),
            restorer,
            acc: llmkit_types::ChunkAccumulator::new(),
            finish: None,
            redactions,
            cache_hit: true,
            done: false,
        }
    }

    /// Metadata of the upstream exchange (default for a cache hit).
    pub fn meta(&self) -> ResponseMeta {
        self.inner
            .as_ref()
            .map(|s| s.meta().clone())
            .unwrap_or_default()
    }

    pub fn cache_hit(&self) -> bool {
        self.cache_hit
    }

    pub fn redactions(&self) -> &[(String, usize)] {
        &self.redactions
    }

    fn restore_chunk(&mut self, mut chunk: ChatCompletionChunk) -> ChatCompletionChunk {
        if let Some(r) = &mut self.restorer {
            for c in &mut chunk.choices {
                if let Some(text) = &c.delta.content {
                    c.delta.content = Some(r.push(text));
                }
                if c.finish_reason.is_some() {
                    let rest = r.finish();
                    if !rest.is_empty() {
                        c.delta
                            .content
                            .get_or_insert_with(String::new)
                            .push_str(&rest);
                    }
                }
            }
        }
        chunk
    }

    fn settle(&mut self, error: Option<&ClientError>) {
        let Some(f) = self.finish.take() else { return };
        let meta = self.meta();
        let resp = std::mem::take(&mut self.acc).finish();
        let (usage, tokens_counted) = usage_or_counted(&f.request, &resp);
        let outcome = Outcome {
            backend: f.backend,
            upstream: f.upstream.clone(),
            model: if resp.model.is_empty() {
                &f.request.model
            } else {
                &resp.model
            },
            usage: Some(&usage),
            latency: meta.latency,
            status: error.map_or(meta.status, |e| e.status().unwrap_or(0)),
            cache_hit: false,
            tokens_counted,
        };
        f.accounting.record(&f.info, f.ticket, &outcome);
        if error.is_none() {
            f.accounting.cache_put(&f.request, &resp);
        }
    }
}

/// Tool-call arguments with the original values back: inside each JSON string, so that a
/// value holding a quote or a backslash stays valid JSON (arguments that are not JSON are
/// restored as plain text).
fn restore_arguments(r: &dyn Restore, arguments: &str) -> String {
    fn walk(r: &dyn Restore, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = r.restore(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(r, i)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| walk(r, i)),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(mut v) => {
            walk(r, &mut v);
            v.to_string()
        }
        Err(_) => r.restore(arguments),
    }
}

/// A stream's usage: the backend's own when its usage chunk arrived, else (cut off, the
/// caller gone, a server that sends none) the request's prompt and the completion received
/// so far, counted with the tokenizer of the estimates, and `true` to say so. The prompt
/// was sent, so it is never counted as zero.
fn usage_or_counted(req: &ChatCompletionRequest, resp: &ChatCompletionResponse) -> (Usage, bool) {
    if let Some(u) = &resp.usage {
        return (u.clone(), false);
    }
    let model = if resp.model.is_empty() {
        &req.model
    } else {
        &resp.model
    };
    let enc = crate::tokens::encoding_for_model(model);
    let count = |t: &Option<String>| {
        t.as_deref()
            .map_or(0, |t| crate::tokens::count_tokens(enc, t))
    };
    let completion: usize = resp
        .choices
        .iter()
        .map(|c| {
            let calls: usize = c
                .message
                .tool_calls
                .iter()
                .flatten()
                .map(|call| {
                    crate::tokens::count_tokens(enc, &call.function.name)
                        + crate::tokens::count_tokens(enc, &call.function.arguments)
                })
                .sum();
            count(&c.message.content) + count(&c.message.refusal) + calls
        })
        .sum();
    let prompt = crate::tokens::count_chat_tokens(&req.model, &req.messages);
    (Usage::new(prompt as u64, completion as u64), true)
}

impl Stream for PipelineStream {
    type Item = Result<ChatCompletionChunk, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(chunk) = this.replay.take() {
            this.done = true;
            let chunk = this.restore_chunk(chunk);
            return Poll::Ready(Some(Ok(chunk)));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                // The accumulator sees what went upstream (redacted): that is what is cached.
                this.acc.push(&chunk);
                let chunk = this.restore_chunk(chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                this.settle(Some(&e));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.done = true;
                this.settle(None);
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for PipelineStream {
    fn drop(&mut self) {
        // A stream dropped early (Ctrl-C, broken pipe) still reaches the ledger; it is not
        // cached because it is incomplete.
        if !self.done
            && let Some(f) = self.finish.take()
        {
            let resp = std::mem::take(&mut self.acc).finish();
            let (usage, tokens_counted) = usage_or_counted(&f.request, &resp);
            let outcome = Outcome {
                backend: f.backend,
                upstream: f.upstream.clone(),
                model: &f.request.model,
                usage: Some(&usage),
                latency: Duration::ZERO,
                status: 499,
                cache_hit: false,
                tokens_counted,
            };
            f.accounting.record(&f.info, f.ticket, &outcome);
        }
    }
}
