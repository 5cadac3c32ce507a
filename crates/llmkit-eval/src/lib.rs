//! llmkit-eval: evaluate prompts and models on datasets (metrics, specs, runs, reports) and
//! check chat fine-tuning data.
//!
//! The library never reads argv or the environment: the CLI resolves the spec file, opens
//! the backends and passes a [`VariantSetup`] per variant. Runs go through the request
//! pipeline, so cache, budgets and the usage ledger apply to every item.

mod error;
mod export;
mod finetune;
mod html;
mod job;
mod judge;
pub mod metrics;
mod report;
mod runner;
mod spec;

pub use error::EvalError;
pub use export::{ExportOptions, Exported, passed_examples};
pub use finetune::{Finding, FinetuneReport, Severity, validate_chat_jsonl};
pub use html::render_html;
pub use job::{EvalJobOptions, EvalOutcome, JudgeSetup, eval_job_id, run_eval};
pub use judge::{JudgeSpec, Judgement};
pub use report::{
    Comparison, Delta, ItemResult, Regression, RunRecord, SentPrompt, Threshold, VariantResult,
    best_per_metric, compare_runs, render_table,
};
pub use runner::{Estimate, VariantSetup, estimate_variant, run_variant};
pub use spec::{Dataset, EvalSpec, Item, Task, Variant};
