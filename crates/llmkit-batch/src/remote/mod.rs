//! `--via openai-batch`: the job runs on OpenAI's Batch API instead of the scheduler. Rows
//! become request lines (the same `prepare` as the direct path), split into parts under the
//! API's limits; each part is uploaded, created as a batch and polled; finished parts are
//! downloaded and merged into the same ordered output the direct path writes.
//!
//! Durability: the plan (part boundaries, file and batch ids) is checkpointed in the job's
//! `remote_id` after every step, and each batch carries `llmkit_job`/`llmkit_part` metadata,
//! so a re-run (or `batch resume`) re-attaches to batches in flight, even one whose id was
//! never recorded, instead of submitting them again.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmkit_client::{HttpClient, ModelCatalog};
use llmkit_store::{LedgerRow, Store};
use llmkit_types::{Batch, CreateBatchRequest, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::BatchError;
use crate::input::{Row, RowReader};
use crate::job::{JobOptions, canonical};
use crate::output::OutputFile;
use crate::request::{Task, error_line, ok_line, prepare, usage_of};
use crate::runner::Summary;

mod merge;
use merge::{Line, Merger};

/// The `via` value stored in a remote job's options.
pub const VIA_OPENAI_BATCH: &str = "openai-batch";
/// Output lines written between two checkpoints of the written count.
const COMMIT_EVERY: u64 = 1000;

/// How big one batch may get (OpenAI: 50,000 requests and 200 MB per input file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitLimits {
    pub max_requests: u64,
    pub max_bytes: u64,
}

impl Default for SplitLimits {
    fn default() -> Self {
        Self {
            max_requests: 50_000,
            max_bytes: 200 * 1000 * 1000,
        }
    }
}

/// What `--via openai-batch` needs besides the job's options.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub limits: SplitLimits,
    /// `24h` (the only window OpenAI offers today).
    pub completion_window: String,
    /// The longest wait between two polls (polling starts at a second and backs off).
    pub max_poll_interval: Duration,
    /// Where request and result files are kept until the job is done.
    pub work_dir: PathBuf,
}

/// What a remote run needs: the client (with its usual retries), store, prices, progress.
pub struct RemoteContext {
    pub client: HttpClient,
    pub store: Arc<Store>,
    pub catalog: ModelCatalog,
    pub progress: Arc<RemoteProgress>,
}

/// One batch as last seen, for the progress display.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PartView {
    pub batch_id: Option<String>,
    pub status: String,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
}

/// A reading of a remote job's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RemoteSnapshot {
    pub job_id: String,
    /// Rows in the input.
    pub total_rows: u64,
    /// Rows in the output file.
    pub written: u64,
    pub spent_usd: f64,
    pub parts: Vec<PartView>,
    /// What is happening now (`uploading part 2/3`, `waiting`...).
    pub phase: String,
}

impl RemoteSnapshot {
    /// Requests answered by the remote batches so far, and in all.
    pub fn requests(&self) -> (u64, u64) {
        let done = self.parts.iter().map(|p| p.completed + p.failed).sum();
        (done, self.parts.iter().map(|p| p.requests).sum())
    }
}

/// Progress shared with the CLI's display.
#[derive(Debug, Default)]
pub struct RemoteProgress {
    inner: Mutex<RemoteSnapshot>,
}

impl RemoteProgress {
    pub fn snapshot(&self) -> RemoteSnapshot {
        self.lock().clone()
    }

    fn update(&self, f: impl FnOnce(&mut RemoteSnapshot)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RemoteSnapshot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The checkpointed plan of a remote job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    via: String,
    limits: SplitLimits,
    total_rows: u64,
    parts: Vec<Part>,
}

/// One batch: the rows `[first, end)` (bad rows in the range are answered locally).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Part {
    first: u64,
    end: u64,
    endpoint: String,
    requests: u64,
    bytes: u64,
    input_file_id: Option<String>,
    batch_id: Option<String>,
    status: Option<String>,
}

/// The id of a remote job: distinct from the direct job on the same input and output.
pub fn remote_job_id(opts: &JobOptions) -> Result<String, BatchError> {
    let direct = opts.job_id()?;
    let digest = Sha256::digest(format!("{direct}:{VIA_OPENAI_BATCH}").as_bytes());
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The options JSON stored for a remote job: the job's options plus `"via"`.
pub(crate) fn remote_meta(opts: &JobOptions) -> Result<String, BatchError> {
    let mut v = serde_json::to_value(opts).map_err(|e| BatchError::Invalid(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("via".into(), Value::from(VIA_OPENAI_BATCH));
    }
    Ok(v.to_string())
}

/// Whether stored job options (`BatchJob::meta`) describe a remote job.
pub fn is_remote_meta(meta: &str) -> bool {
    serde_json::from_str::<Value>(meta)
        .ok()
        .and_then(|v| v.get("via").and_then(Value::as_str).map(str::to_string))
        .is_some_and(|v| v == VIA_OPENAI_BATCH)
}

/// Runs (or re-attaches to) the remote job until every row is in the output.
pub async fn run_remote(
    opts: &JobOptions,
    ropts: &RemoteOptions,
    cx: RemoteContext,
) -> Result<Summary, BatchError> {
    if let Some(t) = opts
        .task
        .as_ref()
        .filter(|t| !matches!(t, Task::Ask { .. }))
    {
        return Err(BatchError::Invalid(format!(
            "--via openai-batch runs `--task ask` and raw Batch rows; `{}` validates and \
             repairs its answers with follow-up requests, which only the direct path can do \
             (drop --via)",
            t.name()
        )));
    }
    let id = remote_job_id(opts)?;
    let job = cx.store.batch_create_job(
        &id,
        &canonical(&opts.input.path),
        &canonical(&opts.output),
        &remote_meta(opts)?,
    )?;
    let mut run = Remote {
        opts,
        ropts,
        id: id.clone(),
        client: cx.client,
        store: cx.store.clone(),
        catalog: cx.catalog,
        progress: cx.progress,
    };
    let result = run.drive(job).await;
    if let Err(e) = &result {
        let _ = cx
            .store
            .batch_set_status(&id, "interrupted", Some(&e.to_string()));
    }
    result
}

struct Remote<'a> {
    opts: &'a JobOptions,
    ropts: &'a RemoteOptions,
    id: String,
    client: HttpClient,
    store: Arc<Store>,
    catalog: ModelCatalog,
    progress: Arc<RemoteProgress>,
}

impl Remote<'_> {
    async fn drive(&mut self, job: llmkit_store::batch::BatchJob) -> Result<Summary, BatchError> {
        std::fs::create_dir_all(&self.ropts.work_dir).map_err(|source| BatchError::Output {
            path: self.ropts.work_dir.clone(),
            source,
        })?;
        let stored: Option<Plan> = job
            .remote_id
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let resumed = stored.is_some();
        let mut plan = match stored {
            Some(p) => p,
            None => {
                self.phase("reading the input");
                let plan = self.scan(None, &[])?;
                self.save(&plan)?;
                plan
            }
        };
        self.progress.update(|s| {
            s.job_id = self.id.clone();
            s.total_rows = plan.total_rows;
            s.written = job.rows_written;
            s.spent_usd = job.spent_usd;
            s.parts = plan.parts.iter().map(view_of).collect();
        });
        let mut notes = Vec::new();
        if job.status == "done" && job.rows_written >= plan.total_rows {
            notes.push("the job had already finished; nothing was sent".to_string());
            let mut s = self.summary(&job, notes);
            s.already_complete = true;
            return Ok(s);
        }
        self.store.batch_set_status(&self.id, "running", None)?;
        self.submit(&mut plan, resumed).await?;
        let (mut out, lines) = OutputFile::open_repaired(&self.opts.output, job.rows_written)?;
        let mut written = job.rows_written;
        if lines < written {
            notes.push(format!(
                "the output held {lines} of the {written} lines recorded; those rows are merged again"
            ));
            self.store.batch_rewind(&self.id, lines)?;
            written = lines;
        }
        let mut merger = Merger {
            reader: RowReader::open(&self.opts.input)?,
            pending: None,
            written,
            failed: job.rows_failed,
            spent: job.spent_usd,
        };
        self.poll_and_merge(&mut plan, &mut merger, &mut out)
            .await?;
        self.store.batch_set_total(&self.id, plan.total_rows)?;
        self.store.batch_set_status(&self.id, "done", None)?;
        self.cleanup(&plan);
        let job = self
            .store
            .batch_job(&self.id)?
            .ok_or_else(|| BatchError::UnknownJob(self.id.clone()))?;
        self.phase("done");
        Ok(self.summary(&job, notes))
    }

    fn summary(&self, job: &llmkit_store::batch::BatchJob, notes: Vec<String>) -> Summary {
        Summary {
            job_id: self.id.clone(),
            written: job.rows_written,
            total: job.total_rows.unwrap_or(job.rows_written),
            failed: job.rows_failed,
            spent_usd: job.spent_usd,
            stopped: None,
            notes,
            already_complete: false,
        }
    }

    /// Reads the input once: computes the parts (when `existing` is `None`) and writes the
    /// request files of the parts in `want` (all parts when planning).
    fn scan(&self, existing: Option<&Plan>, want: &[usize]) -> Result<Plan, BatchError> {
        let limits = existing.map_or(self.ropts.limits, |p| p.limits);
        let mut reader = RowReader::open(&self.opts.input)?;
        let mut parts: Vec<Part> = Vec::new();
        let mut file: Option<std::io::BufWriter<std::fs::File>> = None;
        let mut next_first = 0u64;
        let mut total = 0u64;
        let write_all = existing.is_none();
        while let Some(row) = reader.next_row()? {
            total += 1;
            let Ok(p) = row.item.as_ref().map_err(Clone::clone).and_then(|item| {
                prepare(
                    item,
                    self.opts.task.as_ref(),
                    &self.opts.model,
                    &self.opts.sampling,
                    &self.opts.input.base_dir(),
                )
            }) else {
                continue;
            };
            let endpoint = self.endpoint_of(&p.path);
            let line = json!({
                "custom_id": row.index.to_string(),
                "method": "POST",
                "url": endpoint,
                "body": p.body,
            })
            .to_string();
            let len = line.len() as u64 + 1;
            let starts_new = match parts.last() {
                None => true,
                Some(cur) => {
                    cur.endpoint != endpoint
                        || cur.requests + 1 > limits.max_requests
                        || cur.bytes + len > limits.max_bytes
                }
            };
            if starts_new {
                if let Some(cur) = parts.last_mut() {
                    cur.end = row.index;
                    next_first = row.index;
                }
                if let Some(mut f) = file.take() {
                    f.flush().map_err(|e| self.work_err(e))?;
                }
                let k = parts.len();
                parts.push(Part {
                    first: next_first,
                    end: row.index + 1,
                    endpoint: endpoint.clone(),
                    requests: 0,
                    bytes: 0,
                    input_file_id: None,
                    batch_id: None,
                    status: None,
                });
                if write_all || want.contains(&k) {
                    let path = self.part_path(k);
                    let f = std::fs::File::create(&path).map_err(|e| self.work_err(e))?;
                    file = Some(std::io::BufWriter::new(f));
                }
            }
            if let Some(cur) = parts.last_mut() {
                cur.requests += 1;
                cur.bytes += len;
                cur.end = row.index + 1;
            }
            if let Some(f) = file.as_mut() {
                f.write_all(line.as_bytes())
                    .and_then(|()| f.write_all(b"\n"))
                    .map_err(|e| self.work_err(e))?;
            }
        }
        if let Some(mut f) = file.take() {
            f.flush().map_err(|e| self.work_err(e))?;
        }
        if let Some(last) = parts.last_mut() {
            last.end = total;
        }
        let plan = Plan {
            via: VIA_OPENAI_BATCH.into(),
            limits,
            total_rows: total,
            parts,
        };
        if let Some(old) = existing {
            let same = old.total_rows == plan.total_rows
                && old.parts.len() == plan.parts.len()
                && old
                    .parts
                    .iter()
                    .zip(&plan.parts)
                    .all(|(a, b)| (a.first, a.end, a.requests) == (b.first, b.end, b.requests));
            if !same {
                return Err(BatchError::Invalid(format!(
                    "the input {} no longer matches job {}: start a new job with another -o",
                    self.opts.input.path.display(),
                    self.id
                )));
            }
            return Ok(old.clone());
        }
        Ok(plan)
    }

    /// Uploads and creates every part that has no batch yet.
    async fn submit(&mut self, plan: &mut Plan, resumed: bool) -> Result<(), BatchError> {
        let n = plan.parts.len();
        let missing: Vec<usize> = (0..n)
            .filter(|&k| plan.parts[k].input_file_id.is_none() && !self.part_path(k).exists())
            .collect();
        if !missing.is_empty() {
            self.scan(Some(plan), &missing)?;
        }
        let known = if resumed {
            self.batches_tagged().await?
        } else {
            HashMap::new()
        };
        for k in 0..n {
            if plan.parts[k].batch_id.is_some() {
                continue;
            }
            if let Some(b) = known.get(&k) {
                plan.parts[k].batch_id = Some(b.id.clone());
                plan.parts[k].status = Some(b.status.clone());
                self.save(plan)?;
                continue;
            }
            if plan.parts[k].input_file_id.is_none() {
                self.phase(&format!("uploading part {}/{n}", k + 1));
                let file = self.client.upload_file(&self.part_path(k), "batch").await?;
                plan.parts[k].input_file_id = Some(file.body.id);
                self.save(plan)?;
            }
            self.phase(&format!("creating batch {}/{n}", k + 1));
            let mut metadata = Map::new();
            metadata.insert("llmkit_job".into(), Value::from(self.id.clone()));
            metadata.insert("llmkit_part".into(), Value::from(k.to_string()));
            let req = CreateBatchRequest {
                input_file_id: plan.parts[k].input_file_id.clone().unwrap_or_default(),
                endpoint: plan.parts[k].endpoint.clone(),
                completion_window: self.ropts.completion_window.clone(),
                metadata: Some(metadata),
            };
            let batch = self.client.create_batch(&req).await?.body;
            plan.parts[k].batch_id = Some(batch.id.clone());
            plan.parts[k].status = Some(batch.status.clone());
            self.save(plan)?;
            let _ = std::fs::remove_file(self.part_path(k));
        }
        Ok(())
    }

    /// Batches this job created earlier, by part (the first page of the list, newest first).
    async fn batches_tagged(&self) -> Result<HashMap<usize, Batch>, BatchError> {
        let page = self.client.list_batches(Some(100), None).await?.body;
        let mut found = HashMap::new();
        for b in page.data {
            if b.metadata_str("llmkit_job") != Some(self.id.as_str()) {
                continue;
            }
            let Some(k) = b.metadata_str("llmkit_part").and_then(|p| p.parse().ok()) else {
                continue;
            };
            if !matches!(b.status.as_str(), "failed" | "cancelled" | "expired") {
                found.entry(k).or_insert(b);
            }
        }
        Ok(found)
    }

    /// Polls the batches, downloading finished ones and merging them in order.
    async fn poll_and_merge(
        &mut self,
        plan: &mut Plan,
        merger: &mut Merger,
        out: &mut OutputFile,
    ) -> Result<(), BatchError> {
        let mut wait = Duration::from_millis(250).min(self.ropts.max_poll_interval);
        let mut next = 0usize;
        // Parts already written (a resumed job) need no polling.
        while next < plan.parts.len() && plan.parts[next].end <= merger.written {
            next += 1;
        }
        loop {
            let mut batches: Vec<Option<Batch>> = vec![None; plan.parts.len()];
            // `k` indexes three lists, and `plan` is saved inside the loop.
            #[allow(clippy::needless_range_loop)]
            for k in next..plan.parts.len() {
                let Some(bid) = plan.parts[k].batch_id.clone() else {
                    continue;
                };
                let b = self.client.batch(&bid).await?.body;
                if plan.parts[k].status.as_deref() != Some(b.status.as_str()) {
                    plan.parts[k].status = Some(b.status.clone());
                    self.save(plan)?;
                }
                self.progress.update(|s| {
                    if let Some(v) = s.parts.get_mut(k) {
                        v.batch_id = Some(b.id.clone());
                        v.status = b.status.clone();
                        v.completed = b.request_counts.completed;
                        v.failed = b.request_counts.failed;
                    }
                });
                batches[k] = Some(b);
            }
            while next < plan.parts.len() {
                let Some(b) = batches[next].as_ref().filter(|b| b.is_terminal()) else {
                    break;
                };
                self.phase(&format!("merging batch {}/{}", next + 1, plan.parts.len()));
                let results = self.download(next, b).await?;
                self.merge(&plan.parts[next], b, &results, merger, out)?;
                next += 1;
            }
            if next >= plan.parts.len() {
                // Rows after the last part (or every row, when none could be sent).
                merger.write_until(self, plan.total_rows, None, &HashMap::new(), out)?;
                return Ok(());
            }
            self.phase("waiting for the batches");
            tokio::time::sleep(wait).await;
            wait = (wait.mul_f64(1.5)).min(self.ropts.max_poll_interval);
        }
    }

    /// Downloads a finished batch's output and error files and indexes them by row.
    async fn download(&self, k: usize, b: &Batch) -> Result<HashMap<u64, Value>, BatchError> {
        let mut results = HashMap::new();
        for (file, tag) in [(&b.output_file_id, "out"), (&b.error_file_id, "err")] {
            let Some(fid) = file.as_deref().filter(|f| !f.is_empty()) else {
                continue;
            };
            let dest = self
                .ropts
                .work_dir
                .join(format!("{}-part{k}.{tag}.jsonl", self.id));
            if !dest.exists() {
                self.client.download_file(fid, &dest).await?;
            }
            let f = std::fs::File::open(&dest).map_err(|e| self.work_err(e))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| self.work_err(e))?;
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let index = v
                    .get("custom_id")
                    .and_then(Value::as_str)
                    .and_then(|c| c.parse::<u64>().ok());
                if let Some(i) = index {
                    results.insert(i, v);
                }
            }
        }
        Ok(results)
    }

    fn merge(
        &self,
        part: &Part,
        b: &Batch,
        results: &HashMap<u64, Value>,
        merger: &mut Merger,
        out: &mut OutputFile,
    ) -> Result<(), BatchError> {
        merger.write_until(self, part.end, Some(b), results, out)
    }

    /// The output line and cost of a row that was sent, from its batch result.
    fn result_line(&self, row: &Row, model: &str, b: &Batch, result: Option<&Value>) -> Line {
        let failed = |message: String, status: Option<u16>, code: Option<String>| Line {
            text: error_line(row, &message, status, code),
            cost: 0.0,
            failed: true,
        };
        let Some(r) = result else {
            let why = match b.status.as_str() {
                "failed" => {
                    let detail = b
                        .errors
                        .as_ref()
                        .and_then(|e| e.data.first())
                        .map(|e| e.message.clone())
                        .unwrap_or_else(|| "no reason given".into());
                    format!("batch {} failed validation: {detail}", b.id)
                }
                "expired" => format!("batch {} expired before this request ran", b.id),
                "cancelled" => format!("batch {} was cancelled before this request ran", b.id),
                s => format!("batch {} ({s}) has no result for this request", b.id),
            };
            return failed(why, None, Some(format!("batch_{}", b.status)));
        };
        if let Some(err) = r.get("error").filter(|e| !e.is_null()) {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the request failed in the batch")
                .to_string();
            let code = err.get("code").and_then(Value::as_str).map(str::to_string);
            return failed(message, None, code);
        }
        let status = r
            .pointer("/response/status_code")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        let body = r.pointer("/response/body").cloned().unwrap_or(Value::Null);
        if status != 200 {
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("HTTP {status}"), str::to_string);
            let code = body
                .pointer("/error/code")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.record(model, &Usage::default(), 0.0, status);
            return failed(message, Some(status), code);
        }
        let usage = usage_of(&body);
        let cost = self.catalog.cost(model, &usage, true).unwrap_or(0.0);
        self.record(model, &usage, cost, status);
        Line {
            text: ok_line(row, &body),
            cost,
            failed: false,
        }
    }

    /// One ledger row per answered request, at batch prices.
    fn record(&self, model: &str, usage: &Usage, cost: f64, status: u16) {
        self.store.record(LedgerRow {
            ts: llmkit_store::now_secs(),
            profile: None,
            backend: VIA_OPENAI_BATCH.into(),
            model: model.to_string(),
            session: None,
            batch_job: Some(self.id.clone()),
            command: "batch".into(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.cached_tokens(),
            cost_usd: cost,
            // Tokens were used but the model has no known price: unknown, not free.
            cost_unknown: usage.prompt_tokens + usage.completion_tokens > 0
                && self.catalog.price(model).is_none(),
            tokens_counted: false,
            latency_ms: 0,
            status,
            cache_hit: false,
            upstream: None,
            reservation: None,
        });
    }

    fn endpoint_of(&self, path: &str) -> String {
        // Azure's batch lines and endpoints name the path without the version prefix.
        if self.client.is_azure() {
            format!("/{path}")
        } else {
            format!("/v1/{path}")
        }
    }

    fn part_path(&self, k: usize) -> PathBuf {
        self.ropts
            .work_dir
            .join(format!("{}-part{k}.requests.jsonl", self.id))
    }

    fn save(&self, plan: &Plan) -> Result<(), BatchError> {
        let json = serde_json::to_string(plan).map_err(|e| BatchError::Invalid(e.to_string()))?;
        self.store.batch_set_remote(&self.id, &json)?;
        Ok(())
    }

    fn phase(&self, what: &str) {
        self.progress.update(|s| s.phase = what.to_string());
    }

    fn work_err(&self, source: std::io::Error) -> BatchError {
        BatchError::Output {
            path: self.ropts.work_dir.clone(),
            source,
        }
    }

    /// Removes the job's request and result files once its output is complete.
    fn cleanup(&self, plan: &Plan) {
        for k in 0..plan.parts.len() {
            for tag in ["requests", "out", "err"] {
                let p = self
                    .ropts
                    .work_dir
                    .join(format!("{}-part{k}.{tag}.jsonl", self.id));
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn view_of(p: &Part) -> PartView {
    PartView {
        batch_id: p.batch_id.clone(),
        status: p.status.clone().unwrap_or_else(|| "not submitted".into()),
        requests: p.requests,
        completed: 0,
        failed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_meta_is_recognised() {
        assert!(is_remote_meta(r#"{"via":"openai-batch","model":"m"}"#));
        assert!(!is_remote_meta(r#"{"model":"m"}"#));
        assert!(!is_remote_meta("not json"));
        let l = SplitLimits::default();
        assert_eq!((l.max_requests, l.max_bytes), (50_000, 200_000_000));
    }

    #[test]
    fn snapshot_sums_requests() {
        let s = RemoteSnapshot {
            parts: vec![
                PartView {
                    requests: 3,
                    completed: 2,
                    failed: 1,
                    ..PartView::default()
                },
                PartView {
                    requests: 4,
                    ..PartView::default()
                },
            ],
            ..RemoteSnapshot::default()
        };
        assert_eq!(s.requests(), (3, 7));
    }
}
