//! The scheduler as the pipeline's [`Gate`]: every chat request a row makes (one for `ask`
//! and raw rows, several for a map-reduce summary or a structured-output repair) waits for
//! the request and token buckets, is retried here with backoff, and feeds the limiter what
//! the server said (`x-ratelimit-*`, 429s, `Retry-After`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmkit_client::{Attempt, ClientError, Gate};
use llmkit_types::{ChatCompletionRequest, Usage};

use crate::request::ASSUMED_OUTPUT_TOKENS;
use crate::runner::Scheduler;

/// Backoff of scheduler-level retries: `BASE * 2^n`, capped, with jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The gate of one row: it also adds up what the row's requests cost.
pub struct RowGate {
    shared: Arc<Scheduler>,
    spent: Mutex<(f64, Usage)>,
}

impl RowGate {
    pub(crate) fn new(shared: Arc<Scheduler>) -> Self {
        Self {
            shared,
            spent: Mutex::new((0.0, Usage::new(0, 0))),
        }
    }

    /// The cost (USD) and usage of the row's requests that reached the server.
    pub fn spent(&self) -> (f64, Usage) {
        self.spent
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| (0.0, Usage::new(0, 0)))
    }
}

impl Gate for RowGate {
    fn call<'a>(
        &'a self,
        req: &'a ChatCompletionRequest,
        send: &'a (dyn Fn() -> Attempt<'a> + Send + Sync),
    ) -> Attempt<'a> {
        Box::pin(async move {
            let shared = &self.shared;
            let est = llmkit_client::count_chat_tokens(&req.model, &req.messages) as u64
                + req.output_budget().map_or(ASSUMED_OUTPUT_TOKENS, u64::from);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let permit = shared.limiter.acquire(est).await;
                shared.progress.add_request();
                let started = Instant::now();
                let result = send().await;
                drop(permit);
                let e = match result {
                    Ok(resp) => {
                        let usage = resp.body.usage.clone().unwrap_or_else(|| Usage::new(0, 0));
                        let charged = usage.prompt_tokens
                            + req
                                .output_budget()
                                .map_or(usage.completion_tokens, u64::from);
                        shared.limiter.refund(est as f64 - charged as f64);
                        shared.limiter.on_success(&resp.meta.rate_limit);
                        shared
                            .progress
                            .add_tokens(usage.prompt_tokens + usage.completion_tokens);
                        let cost = shared
                            .catalog
                            .cost(&resp.body.model, &usage, false)
                            .or_else(|| shared.catalog.cost(&req.model, &usage, false))
                            .unwrap_or(0.0);
                        if let Ok(mut s) = self.spent.lock() {
                            s.0 += cost;
                            s.1.prompt_tokens += usage.prompt_tokens;
                            s.1.completion_tokens += usage.completion_tokens;
                            s.1.total_tokens += usage.prompt_tokens + usage.completion_tokens;
                        }
                        return Ok(resp);
                    }
                    Err(ClientError::RetriesExhausted { last, .. }) => *last,
                    Err(e) => e,
                };
                if !retry_after_failure(shared, &e, est, attempt).await {
                    return Err(e);
                }
                // The pipeline records the last attempt; the ones retried here are recorded
                // now so every attempt is in the ledger.
                shared.record(
                    &req.model,
                    &Usage::default(),
                    0.0,
                    started,
                    e.status().unwrap_or(0),
                );
            }
        })
    }
}

/// After a failed attempt: tells the limiter about a 429 (which slows the job only when the
/// server's bucket is empty), then waits and returns true when the row should be sent again.
/// Any other failure keeps its charge: the server counted the attempt too.
pub(crate) async fn retry_after_failure(
    shared: &Scheduler,
    e: &ClientError,
    est_tokens: u64,
    attempt: u32,
) -> bool {
    let mut delay = None;
    if e.status() == Some(429) && !e.is_insufficient_quota() {
        shared.progress.add_rate_limited();
        delay = server_delay(e);
        shared
            .limiter
            .on_rate_limited(e.rate_limit(), est_tokens, delay);
    }
    if e.is_retryable() && attempt < shared.max_attempts {
        shared.progress.add_retry();
        tokio::time::sleep(delay.unwrap_or_else(|| backoff(attempt))).await;
        return true;
    }
    false
}

/// The message of a row that failed for good (with the hint when retrying cannot help).
pub(crate) fn failure_message(e: &ClientError) -> String {
    match e.hint() {
        Some(h) if !e.is_retryable() => format!("{e} (hint: {h})"),
        _ => e.to_string(),
    }
}

/// The delay a 429 (or 503) asks for: the `retry-after-ms` / `Retry-After` header, else
/// OpenAI's "Please try again in 1.5s." in the message (some compatible servers send only
/// that). Delays over the client's cap are ignored in favour of our own backoff.
fn server_delay(e: &ClientError) -> Option<Duration> {
    let d = e.retry_after().or_else(|| {
        let msg = &e.api_error()?.message;
        let at = msg.find("try again in ")? + "try again in ".len();
        let word = msg[at..].split_whitespace().next()?;
        llmkit_client::parse_duration(word.trim_end_matches('.'))
    })?;
    (d <= llmkit_client::MAX_SERVER_DELAY).then_some(d)
}

fn backoff(attempt: u32) -> Duration {
    let exp = 2f64.powi(i32::try_from(attempt.saturating_sub(1).min(16)).unwrap_or(16));
    let base = (BACKOFF_BASE.as_secs_f64() * exp).min(BACKOFF_MAX.as_secs_f64());
    Duration::from_secs_f64(base * rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= BACKOFF_BASE);
        assert!(backoff(30) <= BACKOFF_MAX);
        assert!(backoff(4) >= BACKOFF_BASE * 4);
    }
}
