//! The run loop: admit rows through the limiter (bounded by the reorder window and the cost
//! cap), retry them at the scheduler level, checkpoint every finished row in SQLite, then
//! append the longest ready prefix to the output in input order.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use llmkit_client::{ClientError, HttpClient, ModelCatalog};
use llmkit_store::batch::BatchRow;
use llmkit_store::{LedgerRow, Store};
use llmkit_types::{ChatCompletionRequest, Usage};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::BatchError;
use crate::gate::{RowGate, failure_message, retry_after_failure};
use crate::input::{Row, RowItem, RowReader, count_rows};
use crate::job::{JobOptions, canonical};
use crate::limiter::{Limiter, Limits};
use crate::output::OutputFile;
use crate::progress::Progress;
use crate::request::{Prepared, error_line, ok_line, prepare, task_line, usage_of};
use crate::task_row::{Outcome, TaskSetup, run_chat, run_task};

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
    /// The job had already finished and its output was intact: nothing was sent.
    pub already_complete: bool,
}

/// What a run needs besides its options.
pub struct RunContext {
    /// The client, built with `max_retries = 0`: retries happen here. Raw rows for other
    /// endpoints than chat completions go straight to it.
    pub client: HttpClient,
    /// Chat requests (task rows, raw chat rows) go through its pipeline.
    pub tasks: TaskSetup,
    pub store: Arc<Store>,
    pub catalog: ModelCatalog,
    pub progress: Arc<Progress>,
}

/// Runs (or resumes) the job described by `opts` until every row is written or the cost
/// cap stops it.
pub async fn run_job(opts: &JobOptions, cx: RunContext) -> Result<Summary, BatchError> {
    let id = opts.job_id()?;
    let mut reader = RowReader::open(&opts.input)?;
    if opts.max_cost.is_some() && opts.task.is_some() && cx.catalog.price(&opts.model).is_none() {
        return Err(BatchError::Invalid(format!(
            "--max-cost needs a price for `{}`, and the catalogue has none; add one in the config \
             or drop --max-cost",
            opts.model
        )));
    }
    let plan = JobPlan {
        id: id.clone(),
        input: canonical(&opts.input.path),
        output: opts.output.clone(),
        meta: serde_json::to_string(opts).map_err(|e| BatchError::Invalid(e.to_string()))?,
        command: "batch".into(),
        limits: Limits {
            rpm: opts.rpm,
            tpm: opts.tpm,
            concurrency: opts.concurrency,
        },
        max_attempts: opts.max_attempts,
        max_cost: opts.max_cost,
        window: opts.window,
    };
    let mut tasks = cx.tasks.clone();
    tasks.pipeline = tasks.pipeline.with_batch_job(id);
    let work = Arc::new(FileWork {
        opts: opts.clone(),
        client: cx.client.clone(),
        tasks,
    });
    let input = opts.input.clone();
    run_rows(
        &plan,
        &mut reader,
        move || count_rows(&input),
        work,
        cx.shared(),
    )
    .await
}

/// A job's identity and limits: from [`JobOptions`] for an input file, or a caller's own
/// (an eval run).
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Same id → the same job, resumed.
    pub id: String,
    /// What `batch list|status` show as the input.
    pub input: String,
    pub output: PathBuf,
    /// Stored with the job (`batch resume` reads file jobs' options back from it).
    pub meta: String,
    /// The command named in the usage ledger.
    pub command: String,
    pub limits: Limits,
    /// Attempts per request before the row is written as an error.
    pub max_attempts: u32,
    /// Stop admitting rows before the spend (estimated) would pass this, in USD.
    pub max_cost: Option<f64>,
    /// How far ahead of the last written row rows may be admitted (the reorder window).
    pub window: usize,
}

/// Where a job's rows come from, in index order: the input file, or rows made in memory.
pub trait RowSource: Send {
    fn next_row(&mut self) -> Result<Option<Row>, BatchError>;
}

impl RowSource for RowReader {
    fn next_row(&mut self) -> Result<Option<Row>, BatchError> {
        RowReader::next_row(self)
    }
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job does with each row.
pub trait RowWork: Send + Sync + 'static {
    /// The row's request estimate (for the limiter's first charge and the cost cap), or why
    /// it cannot be sent (it is then written as an error without a request).
    fn prepare(&self, row: &Row) -> Result<Prepared, String>;
    /// Does the row's work; every chat request goes through a gate from
    /// [`Scheduler::gate`]. Returns the output line.
    fn run<'a>(
        &'a self,
        sched: &'a Arc<Scheduler>,
        row: &'a Row,
        p: &'a Prepared,
    ) -> BoxFuture<'a, RowDone>;
}

/// A row's output line, what its requests cost and whether it is an error.
#[derive(Debug, Clone)]
pub struct RowDone {
    pub line: String,
    pub cost: f64,
    pub failed: bool,
}

/// What a run shares besides its rows: the store (checkpoints, ledger), prices, progress.
pub struct RunShared {
    pub store: Arc<Store>,
    pub catalog: ModelCatalog,
    pub progress: Arc<Progress>,
}

impl RunContext {
    fn shared(&self) -> RunShared {
        RunShared {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            progress: self.progress.clone(),
        }
    }
}

/// Runs (or resumes) the job `plan` over `source` with `work` until every row is written or
/// the cost cap stops it; `count` gives the number of rows (called once, when needed).
pub async fn run_rows(
    plan: &JobPlan,
    source: &mut dyn RowSource,
    count: impl FnOnce() -> Result<u64, BatchError>,
    work: Arc<dyn RowWork>,
    cx: RunShared,
) -> Result<Summary, BatchError> {
    let id = plan.id.clone();
    let job = cx
        .store
        .batch_create_job(&id, &plan.input, &canonical(&plan.output), &plan.meta)?;
    let (mut out, lines) = OutputFile::open_repaired(&plan.output, job.rows_written)?;
    let mut notes = Vec::new();
    let mut written = job.rows_written;
    if job.status == "done" && lines == written && job.total_rows == Some(written) {
        return Ok(Summary {
            job_id: id,
            written,
            total: written,
            failed: job.rows_failed,
            spent_usd: job.spent_usd,
            stopped: None,
            notes,
            already_complete: true,
        });
    }
    if lines < written {
        notes.push(format!(
            "the output held {lines} of the {written} lines recorded; the missing rows are run again"
        ));
        cx.store.batch_rewind(&id, lines)?;
        written = lines;
    }
    let total = count()?;
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

    let shared = Arc::new(Scheduler {
        limiter: Limiter::new(plan.limits),
        progress: cx.progress.clone(),
        catalog: cx.catalog.clone(),
        max_attempts: plan.max_attempts.max(1),
        store: cx.store.clone(),
        job_id: id.clone(),
        command: plan.command.clone(),
    });
    let mut state = Loop {
        plan,
        work,
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
    let result = state.run(source, &mut out).await;
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

/// The job's scheduler, shared by every row's work: the limiter, retries, progress and the
/// ledger of attempts.
pub struct Scheduler {
    pub(crate) limiter: Limiter,
    pub(crate) progress: Arc<Progress>,
    pub(crate) catalog: ModelCatalog,
    pub(crate) max_attempts: u32,
    /// Every attempt goes into the usage ledger, like every other command's requests.
    store: Arc<Store>,
    job_id: String,
    command: String,
}

impl Scheduler {
    /// A gate for one row's requests (plug it into the row's pipeline with
    /// `Pipeline::with_gate`); it also adds up what they cost.
    pub fn gate(self: &Arc<Self>) -> Arc<RowGate> {
        Arc::new(RowGate::new(self.clone()))
    }

    /// One ledger row per attempt (failures included, with no tokens).
    pub(crate) fn record(
        &self,
        model: &str,
        usage: &Usage,
        cost: f64,
        started: Instant,
        status: u16,
    ) {
        self.store.record(LedgerRow {
            ts: llmkit_store::now_secs(),
            profile: None,
            backend: "http".into(),
            model: model.to_string(),
            session: None,
            batch_job: Some(self.job_id.clone()),
            command: self.command.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.cached_tokens(),
            cost_usd: cost,
            // Tokens were used but the model has no known price: unknown, not free.
            cost_unknown: usage.prompt_tokens + usage.completion_tokens > 0
                && self.catalog.price(model).is_none(),
            tokens_counted: false,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            status,
            cache_hit: false,
            upstream: None,
            reservation: None,
        });
    }
}

struct Loop<'a> {
    plan: &'a JobPlan,
    work: Arc<dyn RowWork>,
    id: String,
    store: Arc<Store>,
    shared: Arc<Scheduler>,
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
        reader: &mut dyn RowSource,
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
        reader: &mut dyn RowSource,
        tx: &mpsc::UnboundedSender<Finished>,
        fresh: &mut Vec<Finished>,
    ) -> Result<bool, BatchError> {
        let window = self.plan.window.max(1) as u64;
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
            // The window bounds the reorder buffer; rows in flight are bounded much lower, since
            // each holds its request and future while it waits for the limiter.
            let max_inflight = (self.plan.limits.concurrency * 2).max(16);
            if row.index >= self.written + window || self.inflight >= max_inflight {
                self.pending_row = Some(row);
                break;
            }
            let p = match self.work.prepare(&row) {
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
            if let Some(cap) = self.plan.max_cost
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
            let work = self.work.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let done = work.run(&shared, &row, &p).await;
                let _ = tx.send(Finished {
                    index: row.index,
                    line: done.line,
                    cost: done.cost,
                    reserved: estimate,
                    failed: done.failed,
                    sent: true,
                });
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
            let cap = self.plan.max_cost.unwrap_or(0.0);
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
            already_complete: false,
        })
    }
}

/// The work of an input file's rows: tasks and chat requests through the gated pipeline,
/// other raw requests straight to the client.
struct FileWork {
    opts: JobOptions,
    client: HttpClient,
    tasks: TaskSetup,
}

impl RowWork for FileWork {
    fn prepare(&self, row: &Row) -> Result<Prepared, String> {
        match &row.item {
            Err(msg) => Err(msg.clone()),
            Ok(item) => prepare(
                item,
                self.opts.task.as_ref(),
                &self.opts.model,
                &self.opts.sampling,
                &self.opts.input.base_dir(),
            )
            .map_err(|e| format!("line {}: {e}", row.line)),
        }
    }

    fn run<'a>(
        &'a self,
        sched: &'a Arc<Scheduler>,
        row: &'a Row,
        p: &'a Prepared,
    ) -> BoxFuture<'a, RowDone> {
        Box::pin(self.work(sched, row, p))
    }
}

impl FileWork {
    async fn work(&self, shared: &Arc<Scheduler>, row: &Row, p: &Prepared) -> RowDone {
        let opts = &self.opts;
        let outcome = match (&row.item, &opts.task) {
            (Ok(RowItem::Text { text, .. }), Some(task)) if p.body.is_null() => {
                let o = run_task(
                    shared,
                    &self.tasks,
                    task,
                    &opts.model,
                    &opts.sampling,
                    &opts.structured,
                    text,
                )
                .await;
                return finished(row, o, |v, u| task_line(row, v, u));
            }
            _ if p.path == "chat/completions" => {
                match serde_json::from_value::<ChatCompletionRequest>(p.body.clone()) {
                    Ok(req) => {
                        // Tools serve `ask` rows; a raw row's own tools are the caller's.
                        let tools = self
                            .tasks
                            .tools
                            .as_ref()
                            .filter(|_| matches!(opts.task, Some(crate::Task::Ask { .. })));
                        run_chat(shared, &self.tasks, &req, tools).await
                    }
                    Err(e) => {
                        let msg = format!("line {}: the body is not a chat request: {e}", row.line);
                        return refused(row, &msg, "invalid_row");
                    }
                }
            }
            _ if self.tasks.redacting => {
                let msg = format!(
                    "redaction covers chat requests only; this request to `{}` was not sent",
                    p.path
                );
                return refused(row, &msg, "not_redactable");
            }
            _ => return work_raw(shared, &self.client, row, p).await,
        };
        finished(row, outcome, |v, _| ok_line(row, &v))
    }
}

fn finished(
    row: &Row,
    o: Outcome,
    line: impl FnOnce(serde_json::Value, &Usage) -> String,
) -> RowDone {
    let (line, failed) = match o.result {
        Ok(v) => (line(v, &o.usage), false),
        Err(f) => (error_line(row, &f.message, f.status, f.code), true),
    };
    RowDone {
        line,
        cost: o.cost,
        failed,
    }
}

fn refused(row: &Row, msg: &str, code: &str) -> RowDone {
    RowDone {
        line: error_line(row, msg, None, Some(code.into())),
        cost: 0.0,
        failed: true,
    }
}

/// Sends one raw row until it succeeds, fails for good or runs out of attempts.
async fn work_raw(shared: &Scheduler, client: &HttpClient, row: &Row, p: &Prepared) -> RowDone {
    let est_tokens = p.estimated_tokens();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let permit = shared.limiter.acquire(est_tokens).await;
        shared.progress.add_request();
        let started = Instant::now();
        let result = client.post_json(&p.path, &p.body).await;
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
                shared.record(&p.model, &usage, cost, started, resp.meta.status);
                return RowDone {
                    line: ok_line(row, &resp.body),
                    cost,
                    failed: false,
                };
            }
            Err(ClientError::RetriesExhausted { last, .. }) => *last,
            Err(e) => e,
        };
        shared.record(
            &p.model,
            &Usage::default(),
            0.0,
            started,
            e.status().unwrap_or(0),
        );
        if retry_after_failure(shared, &e, est_tokens, attempt).await {
            continue;
        }
        return RowDone {
            line: error_line(row, &failure_message(&e), e.status(), e.code()),
            cost: 0.0,
            failed: true,
        };
    }
}
