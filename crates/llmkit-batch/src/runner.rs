//! The run loop: admit rows through the limiter (bounded by the reorder window and the cost
//! cap), retry them at the scheduler level, checkpoint every finished row in SQLite, then
//! append the longest ready prefix to the output in input order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmkit_client::{ClientError, HttpClient, ModelCatalog};
use llmkit_store::batch::BatchRow;
use llmkit_store::{LedgerRow, Store};
use llmkit_types::Usage;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::BatchError;
use crate::input::{Row, RowReader, count_rows};
use crate::job::{JobOptions, canonical};
use crate::limiter::{Limiter, Limits};
use crate::output::OutputFile;
use crate::progress::Progress;
use crate::request::{Prepared, error_line, ok_line, prepare, usage_of};

/// Backoff of scheduler-level retries: `BASE * 2^n`, capped, with jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub job_id: String,
    /// Rows in the output file.
    pub written: u64,
    /// Rows in the input.
    pub total: u64,
    /// Rows written as errors (whole job).
    pub failed: u64,
    /// Spend of the whole job, in USD.
    pub spent_usd: f64,
    /// Set when the cost cap stopped the job early (resumable).
    pub stopped: Option<String>,
    /// Things the user should know (a shortened output was recomputed...).
    pub notes: Vec<String>,
}

/// What a run needs besides its options.
pub struct RunContext {
    /// The client, built with `max_retries = 0`: retries happen here.
    pub client: HttpClient,
    pub store: Arc<Store>,
    pub catalog: ModelCatalog,
    pub progress: Arc<Progress>,
}

/// Runs (or resumes) the job described by `opts` until every row is written or the cost
/// cap stops it.
pub async fn run_job(opts: &JobOptions, cx: RunContext) -> Result<Summary, BatchError> {
    let id = opts.job_id()?;
    let mut reader = RowReader::open(&opts.input)?;
    if opts.max_cost.is_some() && opts.task.is_some() && cx.catalog.get(&opts.model).is_none() {
        return Err(BatchError::Invalid(format!(
            "--max-cost needs a price for `{}`, and the catalogue has none; add one in the config \
             or drop --max-cost",
            opts.model
        )));
    }
    let meta = serde_json::to_string(opts).map_err(|e| BatchError::Invalid(e.to_string()))?;
    let job = cx.store.batch_create_job(
        &id,
        &canonical(&opts.input.path),
        &canonical(&opts.output),
        &meta,
    )?;
    let (mut out, lines) = OutputFile::open_repaired(&opts.output, job.rows_written)?;
    let mut notes = Vec::new();
    let mut written = job.rows_written;
    if lines < written {
        notes.push(format!(
            "the output held {lines} of the {written} lines recorded; the missing rows are run again"
        ));
        cx.store.batch_rewind(&id, lines)?;
        written = lines;
    }
    let total = count_rows(&opts.input)?;
    cx.progress.set_total(total);
    cx.store.batch_set_status(&id, "running", None)?;

    let mut buffer: BTreeMap<u64, Finished> = BTreeMap::new();
    let mut spent = job.spent_usd;
    for r in cx.store.batch_pending_rows(&id)? {
        if r.index >= written {
            spent += r.cost_usd;
            buffer.insert(
                r.index,
                Finished {
                    index: r.index,
                    line: r.line,
                    cost: r.cost_usd,
                    reserved: 0.0,
                    failed: r.failed,
                    sent: false,
                },
            );
        }
    }
    cx.progress.start_at(written, spent);

    let shared = Arc::new(Shared {
        client: cx.client.clone(),
        limiter: Limiter::new(Limits {
            rpm: opts.rpm,
            tpm: opts.tpm,
            concurrency: opts.concurrency,
        }),
        progress: cx.progress.clone(),
        catalog: cx.catalog.clone(),
        max_attempts: opts.max_attempts.max(1),
        store: cx.store.clone(),
        job_id: id.clone(),
    });
    let mut state = Loop {
        opts,
        id: id.clone(),
        store: cx.store.clone(),
        shared,
        buffer,
        written,
        spent,
        failed: job.rows_failed,
        reserved: 0.0,
        inflight: 0,
        pending_row: None,
        eof: false,
        cost_stopped: false,
    };
    let result = state.run(&mut reader, &mut out).await;
    let summary = match result {
        Ok(()) => state.finish(total, notes)?,
        Err(e) => {
            let _ = cx
                .store
                .batch_set_status(&id, "interrupted", Some(&e.to_string()));
            return Err(e);
        }
    };
    Ok(summary)
}

/// A finished row on its way to the output.
#[derive(Debug, Clone)]
struct Finished {
    index: u64,
    line: String,
    cost: f64,
    /// The cost reserved for it at admission, released now.
    reserved: f64,
    failed: bool,
    /// It was admitted and counted in flight (not refused, not loaded from a checkpoint).
    sent: bool,
}

struct Shared {
    client: HttpClient,
    limiter: Limiter,
    progress: Arc<Progress>,
    catalog: ModelCatalog,
    max_attempts: u32,
    /// Every attempt goes into the usage ledger, like every other command's requests.
    store: Arc<Store>,
    job_id: String,
}

impl Shared {
    /// One ledger row per attempt (failures included, with no tokens).
    fn record(&self, p: &Prepared, usage: &Usage, cost: f64, started: Instant, status: u16) {
        self.store.record(LedgerRow {
            ts: llmkit_store::now_secs(),
            profile: None,
            backend: "http".into(),
            model: p.model.clone(),
            session: None,
            batch_job: Some(self.job_id.clone()),
            command: "batch".into(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.cached_tokens(),
            cost_usd: cost,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            status,
            cache_hit: false,
            reservation: None,
        });
    }
}

struct Loop<'a> {
    opts: &'a JobOptions,
    id: String,
    store: Arc<Store>,
    shared: Arc<Shared>,
    buffer: BTreeMap<u64, Finished>,
    written: u64,
    spent: f64,
    failed: u64,
    reserved: f64,
    inflight: usize,
    pending_row: Option<Row>,
    eof: bool,
    cost_stopped: bool,
}

impl Loop<'_> {
    async fn run(
        &mut self,
        reader: &mut RowReader,
        out: &mut OutputFile,
    ) -> Result<(), BatchError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Finished>();
        loop {
            let mut fresh = Vec::new();
            let admitted = self.admit(reader, &tx, &mut fresh)?;
            if fresh.is_empty() && self.inflight > 0 {
                if let Some(f) = rx.recv().await {
                    fresh.push(f);
                }
                while let Ok(f) = rx.try_recv() {
                    fresh.push(f);
                }
            }
            let progressed = !fresh.is_empty();
            self.take_finished(fresh)?;
            self.write_ready(out)?;
            let done = self.inflight == 0 && (self.eof || self.cost_stopped);
            if done || (self.inflight == 0 && !admitted && !progressed) {
                return Ok(());
            }
        }
    }

    /// Admits rows while the window, the input and the cost cap allow. Rows that cannot be
    /// sent go straight to `fresh` as errors. Returns whether anything was admitted.
    fn admit(
        &mut self,
        reader: &mut RowReader,
        tx: &mpsc::UnboundedSender<Finished>,
        fresh: &mut Vec<Finished>,
    ) -> Result<bool, BatchError> {
        let window = self.opts.window.max(1) as u64;
        let mut admitted = false;
        while !self.eof && !self.cost_stopped {
            let row = match self.pending_row.take() {
                Some(r) => r,
                None => match reader.next_row()? {
                    Some(r) => r,
                    None => {
                        self.eof = true;
                        break;
                    }
                },
            };
            if row.index < self.written || self.buffer.contains_key(&row.index) {
                continue;
            }
            if row.index >= self.written + window {
                self.pending_row = Some(row);
                break;
            }
            let prepared = match &row.item {
                Err(msg) => Err(msg.clone()),
                Ok(item) => prepare(
                    item,
                    self.opts.task.as_ref(),
                    &self.opts.model,
                    &self.opts.sampling,
                )
                .map_err(|e| format!("line {}: {e}", row.line)),
            };
            let p = match prepared {
                Ok(p) => p,
                Err(msg) => {
                    fresh.push(Finished {
                        index: row.index,
                        line: error_line(&row, &msg, None, Some("invalid_row".into())),
                        cost: 0.0,
                        reserved: 0.0,
                        failed: true,
                        sent: false,
                    });
                    admitted = true;
                    continue;
                }
            };
            let estimate = p.estimated_cost(&self.shared.catalog).unwrap_or(0.0);
            if let Some(cap) = self.opts.max_cost
                && self.spent + self.reserved + estimate > cap
            {
                if self.inflight == 0 {
                    self.cost_stopped = true;
                }
                self.pending_row = Some(row);
                break;
            }
            self.reserved += estimate;
            self.inflight += 1;
            admitted = true;
            let shared = self.shared.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let f = work(&shared, &row, &p, estimate).await;
                let _ = tx.send(f);
            });
        }
        Ok(admitted)
    }

    /// Checkpoints finished rows, then moves them into the reorder buffer.
    fn take_finished(&mut self, fresh: Vec<Finished>) -> Result<(), BatchError> {
        if fresh.is_empty() {
            return Ok(());
        }
        let rows: Vec<BatchRow> = fresh
            .iter()
            .map(|f| BatchRow {
                index: f.index,
                line: f.line.clone(),
                cost_usd: f.cost,
                failed: f.failed,
            })
            .collect();
        self.store.batch_save_rows(&self.id, &rows)?;
        for f in fresh {
            if f.sent {
                self.inflight = self.inflight.saturating_sub(1);
            }
            self.reserved = (self.reserved - f.reserved).max(0.0);
            self.spent += f.cost;
            self.buffer.insert(f.index, f);
        }
        self.shared.progress.set_spent(self.spent);
        Ok(())
    }

    /// Appends the longest ready prefix to the output, then records it.
    fn write_ready(&mut self, out: &mut OutputFile) -> Result<(), BatchError> {
        let (mut spent_add, mut failed_add, start) = (0.0, 0u64, self.written);
        while let Some(f) = self.buffer.remove(&self.written) {
            out.push(&f.line)?;
            self.written += 1;
            spent_add += f.cost;
            if f.failed {
                failed_add += 1;
            }
        }
        if self.written == start {
            return Ok(());
        }
        out.flush()?;
        self.store
            .batch_commit_written(&self.id, self.written, spent_add, failed_add)?;
        self.failed += failed_add;
        self.shared.progress.add_failed(failed_add);
        self.shared.progress.set_written(self.written);
        Ok(())
    }

    fn finish(&self, total: u64, notes: Vec<String>) -> Result<Summary, BatchError> {
        let stopped = if self.cost_stopped && self.written < total {
            let cap = self.opts.max_cost.unwrap_or(0.0);
            let msg = format!(
                "cost cap reached: spent ${:.4} of ${cap:.4}; {} of {total} rows left (run again \
                 with a higher --max-cost to continue)",
                self.spent,
                total - self.written
            );
            self.store
                .batch_set_status(&self.id, "stopped", Some(&msg))?;
            Some(msg)
        } else if self.written >= total {
            self.store.batch_set_total(&self.id, total)?;
            self.store.batch_set_status(&self.id, "done", None)?;
            None
        } else {
            let msg = format!("{} of {total} rows written", self.written);
            self.store
                .batch_set_status(&self.id, "interrupted", Some(&msg))?;
            Some(msg)
        };
        Ok(Summary {
            job_id: self.id.clone(),
            written: self.written,
            total,
            failed: self.failed,
            spent_usd: self.spent,
            stopped,
            notes,
        })
    }
}

/// Sends one row until it succeeds, fails for good or runs out of attempts.
async fn work(shared: &Shared, row: &Row, p: &Prepared, reserved: f64) -> Finished {
    let est_tokens = p.estimated_tokens();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let permit = shared.limiter.acquire(est_tokens).await;
        shared.progress.add_request();
        let started = Instant::now();
        let result = shared.client.post_json(&p.path, &p.body).await;
        drop(permit);
        let e = match result {
            Ok(resp) => {
                let usage = usage_of(&resp.body);
                shared
                    .limiter
                    .refund(est_tokens as f64 - p.charged_tokens(&usage) as f64);
                shared.limiter.on_success(&resp.meta.rate_limit);
                shared
                    .progress
                    .add_tokens(usage.prompt_tokens + usage.completion_tokens);
                let cost = shared.catalog.cost(&p.model, &usage, false).unwrap_or(0.0);
                shared.record(p, &usage, cost, started, resp.meta.status);
                return Finished {
                    index: row.index,
                    line: ok_line(row, &resp.body),
                    cost,
                    reserved,
                    failed: false,
                    sent: true,
                };
            }
            Err(ClientError::RetriesExhausted { last, .. }) => *last,
            Err(e) => e,
        };
        shared.record(p, &Usage::default(), 0.0, started, e.status().unwrap_or(0));
        let mut delay = None;
        if e.status() == Some(429) && !e.is_insufficient_quota() {
            shared.progress.add_rate_limited();
            delay = server_delay(&e);
            shared.limiter.refund(est_tokens as f64);
            shared.limiter.on_rate_limited(delay);
        }
        if e.is_retryable() && attempt < shared.max_attempts {
            shared.progress.add_retry();
            tokio::time::sleep(delay.unwrap_or_else(|| backoff(attempt))).await;
            continue;
        }
        let message = match e.hint() {
            Some(h) if !e.is_retryable() => format!("{e} (hint: {h})"),
            _ => e.to_string(),
        };
        return Finished {
            index: row.index,
            line: error_line(row, &message, e.status(), e.code()),
            cost: 0.0,
            reserved,
            failed: true,
            sent: true,
        };
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
