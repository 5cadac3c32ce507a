//! A job's options, its stable id (same input and options → same job, so re-running the
//! command resumes it), and the `--dry-run` estimate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use llmkit_client::ModelCatalog;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::BatchError;
use crate::input::{InputSpec, RowReader};
use crate::request::{Sampling, Structured, Task, prepare};

/// Everything that defines a batch job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    pub input: InputSpec,
    pub output: PathBuf,
    /// `None` for raw OpenAI Batch request rows.
    pub task: Option<Task>,
    /// The model of task rows, and of raw rows that name none.
    pub model: String,
    pub sampling: Sampling,
    /// Structured output of the tasks that return JSON.
    #[serde(default)]
    pub structured: Structured,
    /// The context window of task rows, overriding the model's (sizes the chunks).
    #[serde(default)]
    pub context_window: Option<u32>,
    /// The most requests in flight.
    pub concurrency: usize,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    /// Attempts per row before it is written as an error.
    pub max_attempts: u32,
    /// Stop admitting rows before the spend (estimated) would pass this, in USD.
    pub max_cost: Option<f64>,
    /// How far ahead of the last written row rows may be admitted (the reorder window).
    pub window: usize,
    /// The tools `ask` rows may call, as their flags named them (`--tool NAME=CMD`, ...):
    /// part of the job's identity, since they change the answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
}

impl JobOptions {
    /// The job id: a hash of the input file (canonical path, size, mtime), the output path
    /// and the options that change results. Limits, concurrency, attempts and the cost cap
    /// are left out, so a job can be resumed with different ones.
    pub fn job_id(&self) -> Result<String, BatchError> {
        let input = canonical(&self.input.path);
        let meta = std::fs::metadata(&self.input.path).map_err(|source| BatchError::Input {
            path: self.input.path.clone(),
            source,
        })?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let mut key = serde_json::json!({
            "input": input,
            "size": meta.len(),
            "mtime": mtime.to_string(),
            "output": canonical(&self.output),
            "format": self.input.format,
            "text_column": self.input.text_column,
            "task_rows": self.input.task_rows,
            "task": self.task,
            "model": self.model,
            "sampling": self.sampling,
            "structured": self.structured,
            "context_window": self.context_window,
        });
        // Only when set, so that the ids of jobs without tools stay as they were.
        if !self.tools.is_empty() {
            key["tools"] = serde_json::json!(self.tools);
        }
        let digest = Sha256::digest(key.to_string().as_bytes());
        Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }
}

/// What `--dry-run` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    pub rows: u64,
    /// Rows that would be written as errors without being sent.
    pub bad_rows: u64,
    pub input_tokens: u64,
    /// `max_tokens` per row, else the assumed output length.
    pub expected_output_tokens: u64,
    /// `None` when a model has no known price.
    pub cost_usd: Option<f64>,
    /// `max(rows / rpm, tokens / tpm)` at the given limits; `None` without limits.
    pub min_time: Option<Duration>,
}

/// Reads the whole input and estimates the job without sending anything.
pub fn dry_run(opts: &JobOptions, catalog: &ModelCatalog) -> Result<DryRun, BatchError> {
    let mut reader = RowReader::open(&opts.input)?;
    let mut d = DryRun {
        rows: 0,
        bad_rows: 0,
        input_tokens: 0,
        expected_output_tokens: 0,
        cost_usd: Some(0.0),
        min_time: None,
    };
    let mut charged_tokens = 0u64;
    while let Some(row) = reader.next_row()? {
        d.rows += 1;
        let prepared = row.item.as_ref().map_err(Clone::clone).and_then(|item| {
            prepare(
                item,
                opts.task.as_ref(),
                &opts.model,
                &opts.sampling,
                &opts.input.base_dir(),
            )
        });
        let Ok(p) = prepared else {
            d.bad_rows += 1;
            continue;
        };
        d.input_tokens += p.prompt_tokens;
        d.expected_output_tokens += p.expected_output();
        charged_tokens += p.estimated_tokens();
        d.cost_usd = match (d.cost_usd, p.estimated_cost(catalog)) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    let sent = (d.rows - d.bad_rows) as f64;
    let by_requests = opts.rpm.map(|r| sent / f64::from(r.max(1)));
    let by_tokens = opts
        .tpm
        .map(|t| charged_tokens as f64 / f64::from(t.max(1)));
    d.min_time = match (by_requests, by_tokens) {
        (None, None) => None,
        (a, b) => Some(Duration::from_secs_f64(
            a.unwrap_or(0.0).max(b.unwrap_or(0.0)) * 60.0,
        )),
    };
    Ok(d)
}

/// The absolute form of a path (its parent canonicalised when the file does not exist yet).
pub fn canonical(path: &Path) -> String {
    if let Ok(p) = path.canonicalize() {
        return p.display().to_string();
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name).display().to_string(),
        _ => path.display().to_string(),
    }
}
