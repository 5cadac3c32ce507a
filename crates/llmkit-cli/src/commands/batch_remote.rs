//! `llmkit batch run --via openai-batch` and the resume of such jobs: the Batch API path's
//! flags, progress display and report (the work itself is `llmkit_batch::run_remote`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use llmkit_batch::{
    JobOptions, RemoteContext, RemoteOptions, RemoteProgress, RemoteSnapshot, SplitLimits,
};

use crate::app::Ctx;
use crate::commands::batch::{check_output, ticking_bar};

/// How rows are sent.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Via {
    /// Requests from here, throttled by the scheduler (the default).
    Direct,
    /// OpenAI's Batch API: half the price, results within 24 hours.
    OpenaiBatch,
}

/// The flags of `batch run` that choose and tune the Batch API path.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoteArgs {
    /// `openai-batch` uploads the rows to OpenAI's Batch API (half price, 24-hour window)
    /// instead of sending them from here; re-running the command re-attaches to its batches.
    #[arg(long, value_enum, default_value = "direct")]
    pub via: Via,
    /// Requests per remote batch (OpenAI allows 50,000).
    #[arg(long, hide = true, value_name = "N", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub split_max_requests: u64,
    /// Bytes per remote batch input file (OpenAI allows 200 MB).
    #[arg(long, hide = true, value_name = "BYTES", default_value_t = 200_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub split_max_bytes: u64,
    /// Longest wait between two polls of the remote batches.
    #[arg(long, hide = true, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_max_ms: u64,
}

impl Default for RemoteArgs {
    fn default() -> Self {
        Self {
            via: Via::Direct,
            split_max_requests: 50_000,
            split_max_bytes: 200_000_000,
            poll_max_ms: 30_000,
        }
    }
}

/// Runs (or re-attaches to) a job on the Batch API.
pub(crate) async fn run(
    ctx: &Ctx,
    opts: &JobOptions,
    args: &RemoteArgs,
    quiet: bool,
    json: bool,
) -> Result<()> {
    check_output(opts)?;
    let store = ctx.store()?;
    let work_dir = ctx
        .settings
        .paths
        .store
        .parent()
        .map(|p| p.join("remote-batches"))
        .unwrap_or_else(|| "remote-batches".into());
    let ropts = RemoteOptions {
        limits: SplitLimits {
            max_requests: args.split_max_requests,
            max_bytes: args.split_max_bytes,
        },
        completion_window: "24h".into(),
        max_poll_interval: Duration::from_millis(args.poll_max_ms),
        work_dir,
    };
    let progress = Arc::new(RemoteProgress::default());
    let bar = (!quiet && !json).then(|| spawn_bar(progress.clone()));
    let cx = RemoteContext {
        client: ctx.http()?,
        store,
        catalog: ctx.settings.models.catalog.clone(),
        progress: progress.clone(),
    };
    let result = llmkit_batch::run_remote(opts, &ropts, cx).await;
    if let Some((bar, task)) = bar {
        task.abort();
        render(&bar, &progress.snapshot());
        bar.finish();
    }
    let summary = result?;
    let snap = progress.snapshot();
    if json {
        let mut v = serde_json::to_value(&summary).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("via".into(), "openai-batch".into());
            o.insert(
                "batches".into(),
                serde_json::to_value(&snap.parts).unwrap_or_default(),
            );
        }
        println!("{v}");
        return crate::commands::batch::rows_failed(&summary, &opts.output);
    }
    for n in &summary.notes {
        crate::app::notice(&format!("note: {n}"));
    }
    let ids: Vec<&str> = snap
        .parts
        .iter()
        .filter_map(|p| p.batch_id.as_deref())
        .collect();
    crate::app::notice(&format!(
        "job {}: {}/{} rows written ({} errors), ${:.4} at batch prices, {} batch(es): {}",
        summary.job_id,
        summary.written,
        summary.total,
        summary.failed,
        summary.spent_usd,
        ids.len(),
        ids.join(", ")
    ));
    crate::commands::batch::rows_failed(&summary, &opts.output)
}

fn spawn_bar(
    progress: Arc<RemoteProgress>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    ticking_bar(
        "{spinner} {bar:30} {pos}/{len} requests  {msg}  {elapsed}",
        move |b| render(b, &progress.snapshot()),
    )
}

fn render(bar: &indicatif::ProgressBar, s: &RemoteSnapshot) {
    let (done, total) = s.requests();
    bar.set_length(total.max(1));
    bar.set_position(done);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for p in &s.parts {
        match counts.iter_mut().find(|(st, _)| *st == p.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((p.status.clone(), 1)),
        }
    }
    let states: Vec<String> = counts.iter().map(|(st, n)| format!("{n} {st}")).collect();
    bar.set_message(format!(
        "batches: {}  rows written {}/{}  ${:.4}  {}",
        if states.is_empty() {
            "none".into()
        } else {
            states.join(", ")
        },
        s.written,
        s.total_rows,
        s.spent_usd,
        s.phase
    ));
}
