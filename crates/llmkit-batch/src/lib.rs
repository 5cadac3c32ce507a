//! llmkit-batch: runs many requests from a JSONL or CSV file against an OpenAI-compatible
//! server, fast and safely.
//!
//! - [`run_job`] streams the input, admits rows through a request bucket and a token bucket
//!   (with refunds of over-estimates, adaptation to `x-ratelimit-*` headers and AIMD on 429
//!   bursts), retries rows at the scheduler level, and writes one output line per row in
//!   input order.
//! - Every finished row is checkpointed in SQLite (`llmkit-store`) before it reaches the
//!   output, so a job killed at any moment resumes with no row lost or repeated.
//! - [`run_remote`] (`--via openai-batch`) runs the job on OpenAI's Batch API instead:
//!   split, uploaded, polled, downloaded and merged into the same ordered output.
//! - [`dry_run`] estimates rows, tokens, cost and time without sending anything.
//!
//! The crate never reads the environment or prints: the CLI builds [`JobOptions`] and
//! renders [`Progress`].

mod error;
mod gate;
mod input;
mod job;
mod limiter;
mod output;
mod progress;
mod remote;
mod request;
mod runner;
mod task_row;

pub use error::BatchError;
pub use gate::RowGate;
pub use input::{InputFormat, InputSpec, Row, RowItem, RowReader, count_rows};
pub use job::{DryRun, JobOptions, canonical, dry_run};
pub use limiter::{Limiter, LimiterView, Limits, Permit, RateLimitSignal, classify_429};
pub use output::OutputFile;
pub use progress::{Progress, Snapshot};
pub use remote::{
    PartView, RemoteContext, RemoteOptions, RemoteProgress, RemoteSnapshot, SplitLimits,
    VIA_OPENAI_BATCH, is_remote_meta, remote_job_id, run_remote,
};
pub use request::{
    ASSUMED_OUTPUT_TOKENS, Prepared, Sampling, Structured, Task, prepare, task_line,
};
pub use runner::{
    BoxFuture, JobPlan, RowDone, RowSource, RowWork, RunContext, RunShared, Scheduler, Summary,
    run_job, run_rows,
};
pub use task_row::{RowTools, TaskSetup, prototype};
