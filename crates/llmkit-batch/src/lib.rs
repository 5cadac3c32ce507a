//! llmkit-batch: runs many requests from a JSONL or CSV file against an OpenAI-compatible
//! server, fast and safely.
//!
//! - [`run_job`] streams the input, admits rows through a request bucket and a token bucket
//!   (with refunds of over-estimates, adaptation to `x-ratelimit-*` headers and AIMD on 429
//!   bursts), retries rows at the scheduler level, and writes one output line per row in
//!   input order.
//! - Every finished row is checkpointed in SQLite (`llmkit-store`) before it reaches the
//!   output, so a job killed at any moment resumes with no row lost or repeated.
//! - [`dry_run`] estimates rows, tokens, cost and time without sending anything.
//!
//! The crate never reads the environment or prints: the CLI builds [`JobOptions`] and
//! renders [`Progress`].

mod error;
mod input;
mod job;
mod limiter;
mod output;
mod progress;
mod request;
mod runner;

pub use error::BatchError;
pub use input::{InputFormat, InputSpec, Row, RowItem, RowReader, count_rows};
pub use job::{DryRun, JobOptions, canonical, dry_run};
pub use limiter::{Limiter, LimiterView, Limits, Permit};
pub use output::OutputFile;
pub use progress::{Progress, Snapshot};
pub use request::{ASSUMED_OUTPUT_TOKENS, Prepared, Sampling, Task, prepare};
pub use runner::{RunContext, Summary, run_job};
