//! Embedding many texts for `kb add`. The local model gets one call per batch. A remote
//! model's batches go through the batch runner's admission gate (`llmkit_batch::Limiter`:
//! request and token buckets with refunds, `x-ratelimit-*` adaptation, AIMD on 429 bursts),
//! several in flight, with retries at this level so a 429 slows every request down; each
//! finished batch is handed back at once so the caller can store it before the next ends.
//! Every request goes through the request pipeline, so the budget caps it and the usage
//! ledger records it.

use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use llmkit_batch::{Limiter, Limits};
use llmkit_client::{Backend, ClientError, HttpClient, Pipeline};
use llmkit_types::{EmbeddingRequest, EmbeddingVector};

use crate::app::PipelineSpec;
use crate::app::{Ctx, Opened};
use crate::error::CliError;

/// How `kb add` sends embedding requests.
#[derive(Debug, Clone, Copy)]
pub(super) struct EmbedOptions {
    /// Texts per request.
    pub batch: usize,
    /// Requests in flight at once (remote models).
    pub concurrency: usize,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    /// Attempts per request before the add stops (what was embedded so far is kept).
    pub max_attempts: u32,
}

const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// An embedding model behind the request pipeline (budget guard, usage ledger).
pub(crate) struct Embedder {
    pipe: Pipeline,
    model: String,
}

impl Embedder {
    /// Opens `model` (the knowledge base's) for queries; `command` labels ledger rows.
    pub(crate) async fn open(ctx: &Ctx, model: &str, command: &str) -> Result<Self> {
        Self::new(ctx, ctx.open_embedding(Some(model)).await?, command)
    }

    fn new(ctx: &Ctx, opened: Opened, command: &str) -> Result<Self> {
        Ok(Self {
            model: opened.model,
            pipe: ctx.pipeline(opened.backend, PipelineSpec::new(command))?,
        })
    }
}

/// An embedding model opened for bulk work.
pub(super) struct BulkEmbedder {
    embedder: Embedder,
    /// The admission gate, for remote models only.
    limiter: Option<Limiter>,
    opts: EmbedOptions,
}

impl BulkEmbedder {
    /// Opens `model`; a remote one gets a client without its own retries (they happen here,
    /// through the limiter).
    pub(super) async fn open(ctx: &Ctx, model: &str, opts: EmbedOptions) -> Result<Self> {
        let mut opened = ctx.open_embedding(Some(model)).await?;
        let limiter = match &opened.backend {
            Backend::Http(c) => {
                opened.backend = Backend::Http(HttpClient::new(c.config().clone().max_retries(0))?);
                Some(Limiter::new(Limits {
                    rpm: opts.rpm,
                    tpm: opts.tpm,
                    concurrency: opts.concurrency.max(1),
                }))
            }
            #[allow(unreachable_patterns)]
            _ => None,
        };
        Ok(Self {
            embedder: Embedder::new(ctx, opened, "kb")?,
            limiter,
            opts,
        })
    }

    /// Embeds `texts` in batches, calling `done(first index, vectors)` for each batch as it
    /// finishes (in completion order). The first failure stops the work and is returned;
    /// batches handed to `done` before it stay done.
    pub(super) async fn embed_all(
        &self,
        texts: &[String],
        mut done: impl FnMut(usize, Vec<Vec<f32>>) -> Result<()>,
    ) -> Result<()> {
        let batch = self.opts.batch.max(1);
        let parts: Vec<(usize, &[String])> = texts
            .chunks(batch)
            .enumerate()
            .map(|(i, p)| (i * batch, p))
            .collect();
        let Some(limiter) = &self.limiter else {
            for (start, part) in parts {
                done(start, embed_texts(&self.embedder, part.to_vec()).await?)?;
            }
            return Ok(());
        };
        let mut inflight =
            futures::stream::iter(parts.into_iter().map(|(start, part)| async move {
                self.send(limiter, part).await.map(|v| (start, v))
            }))
            .buffer_unordered(self.opts.concurrency.max(1));
        while let Some(r) = inflight.next().await {
            let (start, vectors) = r?;
            done(start, vectors)?;
        }
        Ok(())
    }

    /// One batch through the limiter, retried as the batch runner retries a row.
    async fn send(&self, limiter: &Limiter, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        // About four characters a token: the same estimate the chunker uses.
        let estimate: u64 = texts.iter().map(|t| t.len() as u64 / 4 + 1).sum();
        let req = EmbeddingRequest::new(self.embedder.model.clone(), texts.to_vec());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = limiter.acquire(estimate).await;
            let result = self.embedder.pipe.embeddings(&req).await;
            drop(permit);
            let e = match result {
                Ok(resp) => {
                    limiter.refund(estimate as f64 - resp.body.usage.prompt_tokens as f64);
                    limiter.on_success(&resp.meta.rate_limit);
                    return vectors_of(resp.body, texts.len());
                }
                Err(ClientError::RetriesExhausted { last, .. }) => *last,
                Err(e) => e,
            };
            let mut delay = None;
            if e.status() == Some(429) && !e.is_insufficient_quota() {
                delay = e
                    .retry_after()
                    .filter(|d| *d <= llmkit_client::MAX_SERVER_DELAY);
                limiter.on_rate_limited(e.rate_limit(), estimate, delay);
            }
            if e.is_retryable() && attempt < self.opts.max_attempts {
                tokio::time::sleep(delay.unwrap_or_else(|| backoff(attempt))).await;
                continue;
            }
            return Err(e.into());
        }
    }
}

/// Embeds `texts` in one request.
pub(crate) async fn embed_texts(e: &Embedder, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
    let n = texts.len();
    let req = EmbeddingRequest::new(e.model.clone(), texts);
    let resp = e.pipe.embeddings(&req).await?;
    vectors_of(resp.body, n)
}

fn vectors_of(body: llmkit_types::EmbeddingResponse, n: usize) -> Result<Vec<Vec<f32>>> {
    let mut data = body.data;
    data.sort_by_key(|e| e.index);
    let vectors: Vec<Vec<f32>> = data
        .into_iter()
        .filter_map(|e| match e.embedding {
            EmbeddingVector::Float(v) => Some(v),
            EmbeddingVector::Base64(_) => None,
        })
        .collect();
    if vectors.len() != n {
        return Err(CliError::failure(
            format!(
                "the embedding server returned {} vectors for {n} texts",
                vectors.len()
            ),
            None,
        )
        .into());
    }
    Ok(vectors)
}

/// Exponential backoff with jitter in [0.5, 1] (from the clock: no RNG dependency here).
fn backoff(attempt: u32) -> Duration {
    let exp = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    let base = BACKOFF_BASE.saturating_mul(exp).min(BACKOFF_MAX);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= BACKOFF_BASE);
        assert!(backoff(4) >= BACKOFF_BASE * 4);
        assert!(backoff(40) <= BACKOFF_MAX);
    }
}
