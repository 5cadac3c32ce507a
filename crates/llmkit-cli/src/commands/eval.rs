//! `llmkit eval`: run an eval spec (variants × metrics through the request pipeline), save
//! the run, report it (table, JSON, HTML), enforce quality gates, and compare saved runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_client::Backend;
use llmkit_eval::{
    EvalJobOptions, EvalSpec, RunRecord, Threshold, Variant, VariantSetup, compare_runs,
    estimate_variant, render_html, render_table, run_eval,
};
use llmkit_tasks::{Templates, TokenCounter};
use llmkit_types::ChatCompletionRequest;
use serde_json::json;

use crate::app::PipelineSpec;
use crate::app::{Ctx, notice};
use crate::cli::ModelArgs;
use crate::commands::batch::EXIT_ROWS_FAILED;
use crate::commands::request::apply_sampling;
use crate::error::CliError;
use crate::output;
use crate::settings::ModelChoice;

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EvalCommand {
    /// Run an eval spec (TOML): every variant over the dataset, scored by the spec's metrics.
    Run(RunArgs),
    /// Compare two saved runs (ids or JSON files): metric deltas and per-item regressions.
    Compare(CompareArgs),
    /// List saved runs.
    List,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The spec file (see examples/eval/sentiment.toml).
    pub spec: PathBuf,
    /// Print the whole run as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Estimate tokens and cost without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// A quality gate such as `accuracy>=0.8` (repeatable); any failure exits with code 1.
    #[arg(long, value_name = "METRIC>=VALUE")]
    pub cutoff: Vec<String>,
    /// Do not save the run under the data directory.
    #[arg(long)]
    pub no_save: bool,
    /// Start over: forget the checkpoints of an earlier run of the same spec and send every
    /// item again, past the response cache (so latencies and outputs are new).
    #[arg(long, conflicts_with = "dry_run")]
    pub fresh: bool,
    /// Requests per minute (default: learned from `x-ratelimit-*` headers).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,
    /// Tokens per minute (default: learned from `x-ratelimit-*` headers).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tpm: Option<u32>,
    /// Attempts per request before the item is scored as an error.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: u32,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The earlier run: an id from `llmkit eval list` or a run JSON file.
    pub run_a: String,
    /// The later run.
    pub run_b: String,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: EvalArgs) -> Result<()> {
    match args.command {
        EvalCommand::Run(a) => run_spec(ctx, a).await,
        EvalCommand::Compare(a) => compare(ctx, &a),
        EvalCommand::List => list(ctx),
    }
}

/// The pipeline of an eval run: it enforces `--max-cost` itself over the resumable job, and
/// `--fresh` reads no cached answers.
fn eval_pipeline(fresh: bool) -> PipelineSpec {
    let spec = PipelineSpec::new("eval").job();
    if fresh {
        spec.cache(llmkit_accounting::CachePolicy::Off)
    } else {
        spec
    }
}

/// `<data dir>/eval/runs`, beside the store.
fn runs_dir(ctx: &Ctx) -> PathBuf {
    ctx.settings
        .paths
        .store
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("eval")
        .join("runs")
}

async fn run_spec(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let spec = EvalSpec::load(&args.spec)?;
    let data = spec.load_dataset()?;
    let gates = args
        .cutoff
        .iter()
        .map(|c| Threshold::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    if args.dry_run {
        return dry_run(ctx, &spec, &data, args.json);
    }
    if let Some(path) = &args.html {
        check_report_path(path)?;
    }
    let mut setups = Vec::new();
    for v in &spec.variants {
        notice(&format!("eval: {} ({} items)", v.name, data.items.len()));
        setups.push(setup(ctx, &spec, v, args.fresh).await?);
    }
    let variants = run_job(ctx, &args, &spec, &data, setups).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let record = RunRecord {
        id: RunRecord::make_id(&spec.name, now.as_millis()),
        created: now.as_secs(),
        spec: spec.name.clone(),
        task: spec.task,
        dataset: spec.dataset_path().display().to_string(),
        metrics: spec.metrics.clone(),
        variants,
        judge: spec.judge.clone(),
    };
    if !args.no_save {
        let dir = runs_dir(ctx);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", record.id));
        std::fs::write(&path, serde_json::to_string_pretty(&record)?)?;
        notice(&format!("saved run {} ({})", record.id, path.display()));
    }
    if let Some(path) = &args.html {
        std::fs::write(path, render_html(&record)).map_err(|e| {
            CliError::failure(
                format!("cannot write {}: {e}", path.display()),
                Some(REPORT_HINT.into()),
            )
        })?;
        notice(&format!("wrote {}", path.display()));
    }
    let failures: Vec<String> = gates.iter().flat_map(|g| g.check(&record)).collect();
    if args.json {
        let mut v = serde_json::to_value(&record)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("gate_failures".into(), json!(failures));
        }
        output::json(&v)?;
    } else {
        output::write(&render_table(&record))?;
    }
    if failures.is_empty() {
        return items_failed(&record);
    }
    for f in &failures {
        notice(&format!("gate failed: {f}"));
    }
    Err(CliError::failure(
        format!("{} quality gate check(s) failed", failures.len()),
        Some("see the lines above; lower the --cutoff or improve the variant".to_string()),
    )
    .into())
}

/// Success when no item failed; otherwise an error with the batch's exit code for "went
/// through every row, some or all failed" ([`EXIT_ROWS_FAILED`]), so that a script can tell
/// a complete report with failures in it from a run that failed or stopped (exit 1). A
/// failed quality gate is reported first, with exit 1.
fn items_failed(record: &RunRecord) -> Result<()> {
    let failed: usize = record.variants.iter().map(|v| v.errors).sum();
    if failed == 0 {
        return Ok(());
    }
    let total: usize = record.variants.iter().map(|v| v.items.len()).sum();
    let what = if failed >= total {
        format!("all {total} items failed")
    } else {
        format!("{failed} of {total} items failed")
    };
    Err(CliError {
        message: format!(
            "{what}: the table counts them under `errors`, and each item's `error` is in the \
             run's JSON (--json, or the saved run)"
        ),
        hint: Some(
            "fix what the errors say, then run the spec again with --fresh (every item is \
             sent again)"
                .into(),
        ),
        code: EXIT_ROWS_FAILED,
    }
    .into())
}

const REPORT_HINT: &str = "choose a --html path in an existing, writable directory";

/// An `--html` report whose directory does not exist is refused before any request is made
/// (and nothing is created).
fn check_report_path(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(CliError::failure(
        format!(
            "cannot write {}: the directory {} does not exist",
            path.display(),
            dir.display()
        ),
        Some(REPORT_HINT.into()),
    )
    .into())
}

/// Runs every variant × item as one batch job (throttled, retried, cost-capped, resumable).
async fn run_job(
    ctx: &Ctx,
    args: &RunArgs,
    spec: &EvalSpec,
    data: &llmkit_eval::Dataset,
    setups: Vec<VariantSetup>,
) -> Result<Vec<llmkit_eval::VariantResult>> {
    let opts = EvalJobOptions {
        dir: runs_dir(ctx)
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            .join("jobs"),
        spec_path: llmkit_batch::canonical(&args.spec),
        rpm: args.rpm,
        tpm: args.tpm,
        max_attempts: args.max_attempts,
        max_cost: ctx.settings.budgets.max_cost_usd,
        fresh: args.fresh,
    };
    let cx = llmkit_batch::RunShared {
        store: ctx.store()?,
        catalog: ctx.settings.models.catalog.clone(),
        progress: Arc::new(llmkit_batch::Progress::new()),
    };
    let judge = match &spec.judge {
        Some(j) => Some(judge_setup(ctx, j, args.fresh).await?),
        None => None,
    };
    let outcome = run_eval(spec, data, setups, judge, &opts, cx).await?;
    let s = &outcome.summary;
    if s.already_complete {
        notice(&format!(
            "eval job {} already complete: {} items, results from its checkpoints",
            s.job_id, s.written
        ));
    } else {
        notice(&format!(
            "eval job {}: {}/{} items, ${:.4} spent",
            s.job_id, s.written, s.total, s.spent_usd
        ));
    }
    outcome.variants.ok_or_else(|| {
        CliError::failure(
            s.stopped
                .clone()
                .unwrap_or_else(|| "the eval job stopped early".into()),
            Some(
                "run the same command again (with a higher --max-cost) to continue; finished \
                 items are not sent again"
                    .to_string(),
            ),
        )
        .into()
    })
}

/// Opens the judge model (metric `judge`), sampling at temperature 0.
async fn judge_setup(
    ctx: &Ctx,
    j: &llmkit_eval::JudgeSpec,
    fresh: bool,
) -> Result<llmkit_eval::JudgeSetup> {
    let opened = ctx.open_chat(Some(&j.model)).await?;
    let backend = match opened.backend {
        Backend::Http(c) => Backend::Http(llmkit_client::HttpClient::new(
            c.config().clone().max_retries(0),
        )?),
        other => other,
    };
    let mut prototype = ChatCompletionRequest::new(opened.model.clone(), Vec::new());
    prototype.temperature = Some(0.0);
    Ok(llmkit_eval::JudgeSetup {
        spec: j.clone(),
        pipeline: ctx.pipeline(backend, eval_pipeline(fresh))?,
        prototype,
    })
}

/// The model a variant (or the judge) will use, as named in requests (`local:NAME` for the
/// embedded one).
fn model_name(ctx: &Ctx, model: Option<&str>) -> String {
    match ctx.settings.choose_model(model).0 {
        ModelChoice::Remote(m) => m,
        ModelChoice::Local(s) => format!("local:{s}"),
    }
}

/// The counter and whether it is free, for a model named as [`model_name`] names it.
fn counter_for(model: &str) -> (TokenCounter, bool) {
    if model.starts_with("local:") {
        (TokenCounter::Approx, true)
    } else {
        (TokenCounter::for_model(model), false)
    }
}

fn dry_run(ctx: &Ctx, spec: &EvalSpec, data: &llmkit_eval::Dataset, json_out: bool) -> Result<()> {
    let mut estimates = Vec::new();
    let mut judging = Vec::new();
    for v in &spec.variants {
        let model = model_name(ctx, v.model.as_deref());
        let (counter, free) = counter_for(&model);
        let price = ctx.settings.models.catalog.price(&model);
        estimates.push(estimate_variant(
            spec, data, v, &model, &counter, price, free,
        ));
        if let Some(j) = &spec.judge {
            let judge_model = model_name(ctx, Some(&j.model));
            let (counter, free) = counter_for(&judge_model);
            let mut e = j.estimate(
                spec,
                data,
                v,
                &counter,
                ctx.settings.models.catalog.price(&judge_model),
                free,
            );
            e.model = judge_model;
            judging.push(e);
        }
    }
    let all = estimates.iter().chain(&judging);
    let total = all
        .clone()
        .map(|e| e.cost_usd)
        .try_fold(0.0, |acc, c| c.map(|c| acc + c));
    if json_out {
        return output::json(&json!({
            "dry_run": true,
            "estimates": estimates,
            "judge": judging,
            "total_cost_usd": total,
        }));
    }
    let mut out = String::from("dry run: nothing was sent\n");
    for e in all {
        let cost = e.cost_usd.map_or_else(
            || "price unknown (the model has no price in the catalogue)".to_string(),
            |c| format!("about ${c:.4}"),
        );
        out.push_str(&format!(
            "{} ({}): {} items, about {} prompt + {} completion tokens, {}\n",
            e.variant, e.model, e.items, e.prompt_tokens, e.completion_tokens, cost
        ));
    }
    match total {
        Some(t) => out.push_str(&format!("total: about ${t:.4}\n")),
        None => out.push_str("total: price unknown (a model has no price in the catalogue)\n"),
    }
    output::write(&out)
}

/// Opens a variant's backend and builds what the runner needs, as the task commands do.
async fn setup(ctx: &Ctx, spec: &EvalSpec, v: &Variant, fresh: bool) -> Result<VariantSetup> {
    let opened = ctx.open_chat(v.model.as_deref()).await?;
    let (window, counter, concurrency, free) = match &opened.backend {
        Backend::Local(l) => match l.model() {
            Some(m) => {
                let m2 = m.clone();
                let counter = TokenCounter::Custom(Arc::new(move |t: &str| {
                    m2.count_tokens(t)
                        .unwrap_or_else(|_| t.chars().count().div_ceil(3))
                }));
                (m.context_window(), counter, 1, true)
            }
            None => (8192, TokenCounter::Approx, 1, true),
        },
        Backend::Http(_) | Backend::Pool(_) => (
            ctx.settings
                .models
                .info(&opened.model)
                .map_or(8192, |i| i.context_window as usize),
            TokenCounter::for_model(&opened.model),
            spec.concurrency,
            false,
        ),
    };
    let sampling = ModelArgs {
        temperature: v.temperature,
        top_p: v.top_p,
        max_tokens: v.max_tokens,
        seed: v.seed,
        ..ModelArgs::default()
    };
    let prototype = apply_sampling(
        ChatCompletionRequest::new(opened.model.clone(), Vec::new()),
        &sampling,
    )?;
    let price = ctx.settings.models.catalog.price(&opened.model).cloned();
    // Retries happen in the batch scheduler, where a 429 slows every request down.
    let backend = match opened.backend {
        Backend::Http(c) => Backend::Http(llmkit_client::HttpClient::new(
            c.config().clone().max_retries(0),
        )?),
        other => other,
    };
    let pipeline = ctx.pipeline(backend, eval_pipeline(fresh))?;
    Ok(VariantSetup {
        variant: v.clone(),
        pipeline,
        prototype,
        templates: Templates::new(Some(crate::commands::tasks::templates_dir(ctx))),
        window,
        counter,
        price,
        free,
        concurrency,
    })
}

/// A run by id (in the runs directory) or by file path.
pub(crate) fn load_run(ctx: &Ctx, which: &str) -> Result<RunRecord> {
    let direct = PathBuf::from(which);
    let path = if direct.is_file() {
        direct
    } else {
        runs_dir(ctx).join(format!("{which}.json"))
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::usage(
            format!("cannot read run `{which}` ({}): {e}", path.display()),
            "list saved runs with `llmkit eval list`",
        )
    })?;
    RunRecord::from_json(&text).map_err(anyhow::Error::from)
}

fn compare(ctx: &Ctx, args: &CompareArgs) -> Result<()> {
    let a = load_run(ctx, &args.run_a)?;
    let b = load_run(ctx, &args.run_b)?;
    let c = compare_runs(&a, &b);
    if args.json {
        return output::json(&c);
    }
    let mut out = format!("{} → {}\n", a.id, b.id);
    for d in &c.deltas {
        out.push_str(&format!(
            "{:<20} {:<14} {:>12.4} → {:<12.4} ({:+.4})\n",
            d.variant,
            d.metric,
            d.before,
            d.after,
            d.after - d.before
        ));
    }
    if c.regressions.is_empty() {
        out.push_str("no per-item regressions\n");
    } else {
        out.push_str(&format!(
            "{} per-item regression(s):\n",
            c.regressions.len()
        ));
        for r in &c.regressions {
            out.push_str(&format!(
                "- {} item #{} {}: {:.3} → {:.3}\n  input:  {}\n  before: {}\n  after:  {}\n",
                r.variant,
                r.index,
                r.metric,
                r.before,
                r.after,
                one_line(&r.input),
                one_line(r.output_before.as_deref().unwrap_or("(error)")),
                one_line(r.output_after.as_deref().unwrap_or("(error)")),
            ));
        }
    }
    output::write(&out)
}

/// First 100 characters on one line.
fn one_line(s: &str) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

fn list(ctx: &Ctx) -> Result<()> {
    let dir = runs_dir(ctx);
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".json").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    let mut out = String::new();
    for id in ids {
        out.push_str(&id);
        out.push('\n');
    }
    output::write(&out)
}
