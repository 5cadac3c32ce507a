//! `llmkit batch run|resume|status|list`: the batch runner's command line, progress bar and
//! reports (the work itself is in `llmkit-batch`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use llmkit_batch::{
    BatchError, DryRun, InputFormat, InputSpec, JobOptions, Progress, RowTools, RunContext,
    Sampling, Snapshot, Structured, Summary, Task, TaskSetup,
};
use llmkit_client::HttpClient;
use llmkit_store::batch::BatchJob;

use crate::app::Ctx;
use crate::app::PipelineSpec;
use crate::cli::ModelArgs;
use crate::error::CliError;
use crate::settings::ModelChoice;

#[derive(Debug, Args)]
pub(crate) struct BatchArgs {
    #[command(subcommand)]
    pub action: BatchAction,
}

// Parsed once per process; boxing the big variant would only add noise to the clap code.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum BatchAction {
    /// Run (or, with the same input and output, resume) a batch job.
    Run(BatchRunArgs),
    /// Resume a stored job by id.
    Resume {
        /// The job id (or a unique prefix), from `llmkit batch list`.
        job: String,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Show a job's progress (the most recent job without JOB).
    Status {
        job: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the stored jobs, newest first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum TaskKind {
    Summarize,
    Translate,
    Sentiment,
    Classify,
    Extract,
    Ask,
}

/// The flags of the tasks applied to text rows (as on the task commands).
#[derive(Debug, Args)]
pub(crate) struct BatchTaskArgs {
    /// Summary length (summarize).
    #[arg(long, value_name = "short|medium|long", default_value = "medium")]
    pub length: crate::cli::SummaryLength,
    /// At most this many words (summarize; wins over --length).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub words: Option<u32>,
    /// Prose or a bulleted list (summarize).
    #[arg(long, value_name = "paragraph|bullets", default_value = "paragraph")]
    pub summary_format: crate::cli::SummaryStyle,
    /// What the summary should concentrate on (summarize).
    #[arg(long, value_name = "TEXT")]
    pub focus: Option<String>,
    /// Target language (translate).
    #[arg(long, value_name = "LANG")]
    pub to: Option<String>,
    /// Source language (translate; default: detected by the model).
    #[arg(long, value_name = "LANG")]
    pub from: Option<String>,
    /// Glossary: TSV/CSV `source<TAB>target` lines or a JSON object (translate).
    #[arg(long, value_name = "FILE")]
    pub glossary: Option<PathBuf>,
    /// A glossary term missing from a translation makes that row an error (translate).
    #[arg(long)]
    pub strict: bool,
    /// The labels to choose from, comma-separated (classify).
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Allow several labels (classify).
    #[arg(long)]
    pub multi: bool,
    /// JSON Schema file each result must be valid against (extract).
    #[arg(long, value_name = "FILE.json")]
    pub schema: Option<PathBuf>,
    /// Follow-up requests quoting the validation error when an answer is invalid
    /// (sentiment, classify, extract).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub repair_attempts: u32,
    /// How JSON is requested: `schema` (strict json_schema) or `prompt` (JSON mode plus the
    /// schema in the prompt); `auto` is `schema`.
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub json_mode: crate::cli::JsonMode,
    /// Context window in tokens, overriding the model's (sizes the chunks of long rows).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(256..))]
    pub context_window: Option<u32>,
}

#[derive(Debug, Args)]
// `-o` is the output file here; request fields go in with `--option`.
#[command(mut_arg("options", |a| a.short(None)))]
pub(crate) struct BatchRunArgs {
    /// The input: JSONL (task rows, or OpenAI Batch requests without --task) or CSV.
    pub input: PathBuf,
    /// The output JSONL: one line per input row, in input order.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Apply a task to each row's text; without it, rows are OpenAI Batch requests
    /// ({custom_id, method, url, body}). CSV input implies `ask`.
    #[arg(long, value_enum)]
    pub task: Option<TaskKind>,
    #[command(flatten)]
    pub task_args: BatchTaskArgs,
    /// System prompt of the `ask` task.
    #[arg(short, long, value_name = "TEXT")]
    pub system: Option<String>,
    /// The CSV column (or JSONL field) holding the text.
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub text_column: String,
    /// Input format (default: from the file extension).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The most requests in flight (the scheduler may use fewer).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Requests per minute (default: learned from `x-ratelimit-*` headers).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,
    /// Tokens per minute (default: learned from `x-ratelimit-*` headers).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tpm: Option<u32>,
    /// Attempts per row before it is written as an error.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: u32,
    /// Rows that may finish ahead of the oldest unwritten one (bounds memory).
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Print the rows, tokens, cost and time the job would take; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub remote: crate::commands::batch_remote::RemoteArgs,
    #[command(flatten)]
    pub tools: crate::commands::tools::ToolArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum FormatArg {
    Jsonl,
    Csv,
}

pub(crate) async fn run(ctx: &Ctx, args: BatchArgs) -> Result<()> {
    match args.action {
        BatchAction::Run(a) => run_new(ctx, a).await,
        BatchAction::Resume { job, quiet } => resume(ctx, &job, quiet).await,
        BatchAction::Status { job, json } => status(ctx, job.as_deref(), json),
        BatchAction::List { json } => list(ctx, json),
    }
}

async fn run_new(ctx: &Ctx, a: BatchRunArgs) -> Result<()> {
    let opts = options(ctx, &a)?;
    if a.tools.any() {
        check_tool_flags(&a, &opts)?;
    }
    if a.dry_run {
        let d = llmkit_batch::dry_run(&opts, &ctx.settings.models.catalog)?;
        print_dry_run(&opts, &d, a.json);
        return Ok(());
    }
    if a.remote.via == crate::commands::batch_remote::Via::OpenaiBatch {
        return crate::commands::batch_remote::run(ctx, &opts, &a.remote, a.quiet, a.json).await;
    }
    let tools = if a.tools.any() {
        Some(RowTools {
            toolbox: Arc::new(crate::commands::tools::open(ctx, &a.tools).await?),
            max_calls: a.tools.max_tool_calls,
        })
    } else {
        None
    };
    execute(ctx, &opts, tools, a.quiet, a.json).await
}

/// The tool flags as the job's identity: each source of tools, named as given.
fn tool_flags(t: &crate::commands::tools::ToolArgs) -> Vec<String> {
    let mut out: Vec<String> = t.tools.iter().map(|s| format!("--tool {s}")).collect();
    if let Some(f) = &t.tools_file {
        out.push(format!("--tools {}", llmkit_batch::canonical(f)));
    }
    out.extend(t.mcp.iter().map(|s| format!("--mcp {s}")));
    out.extend(t.mcp_url.iter().map(|s| format!("--mcp-url {s}")));
    if !out.is_empty() {
        out.push(format!("--max-tool-calls {}", t.max_tool_calls));
    }
    out
}

/// Tools in a batch serve `ask` rows run here: each row's calls run without a person to
/// approve them, and the Batch API cannot run local tools.
fn check_tool_flags(a: &BatchRunArgs, opts: &JobOptions) -> Result<(), CliError> {
    let refuse = |what: &str, hint: &str| Err(CliError::usage(what.to_string(), hint));
    if !matches!(opts.task, Some(Task::Ask { .. })) {
        return refuse(
            "tools in a batch need --task ask",
            "add --task ask, or put the tools in each raw request's body",
        );
    }
    if a.remote.via == crate::commands::batch_remote::Via::OpenaiBatch {
        return refuse(
            "the Batch API cannot call local tools or MCP servers",
            "drop --via openai-batch to run the rows (and their tool calls) from here",
        );
    }
    if a.tools.approve || a.tools.tools_debug || a.tools.tool_choice.is_some() {
        return refuse(
            "--approve, --tools-debug and --tool-choice are for ask and chat",
            "a batch calls its tools without asking; try the prompt with `llmkit ask` first",
        );
    }
    Ok(())
}

async fn resume(ctx: &Ctx, job: &str, quiet: bool) -> Result<()> {
    let store = ctx.store()?;
    let record = store
        .batch_job(job)?
        .ok_or_else(|| anyhow::Error::from(BatchError::UnknownJob(job.to_string())))?;
    let mut opts: JobOptions = record
        .meta
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| {
            CliError::failure(
                format!("job {} has no usable options stored", record.id),
                None,
            )
        })?;
    if ctx.settings.budgets.max_cost_usd.is_some() {
        opts.max_cost = ctx.settings.budgets.max_cost_usd;
    }
    if record
        .meta
        .as_deref()
        .is_some_and(llmkit_batch::is_remote_meta)
    {
        let remote = crate::commands::batch_remote::RemoteArgs::default();
        return crate::commands::batch_remote::run(ctx, &opts, &remote, quiet, false).await;
    }
    if !opts.tools.is_empty() {
        return Err(CliError::usage(
            format!("job {job} calls tools, which `batch resume` cannot start again"),
            "run the same `llmkit batch run` command (with its tool flags): it picks the job up where it stopped",
        )
        .into());
    }
    execute(ctx, &opts, None, quiet, false).await
}

fn options(ctx: &Ctx, a: &BatchRunArgs) -> Result<JobOptions> {
    let format = match a.format {
        Some(FormatArg::Jsonl) => InputFormat::Jsonl,
        Some(FormatArg::Csv) => InputFormat::Csv,
        None => InputFormat::from_path(&a.input),
    };
    let task = match (a.task, format) {
        (Some(kind), _) => Some(task_of(kind, a)?),
        (None, InputFormat::Csv) => Some(Task::Ask {
            system: a.system.clone(),
        }),
        (None, InputFormat::Jsonl) => None,
    };
    let model = match ctx.settings.choose_model(a.model.model.as_deref()).0 {
        ModelChoice::Remote(m) => m,
        ModelChoice::Local(_) => {
            return Err(CliError::usage(
                "batch runs need an API backend, not the embedded model",
                "set OPENAI_API_KEY (or --base-url for a compatible server) and pass an API model",
            )
            .into());
        }
    };
    Ok(JobOptions {
        input: InputSpec {
            path: a.input.clone(),
            format,
            text_column: a.text_column.clone(),
            task_rows: task.is_some(),
        },
        output: a.output.clone(),
        task,
        model,
        sampling: Sampling {
            temperature: a.model.temperature,
            top_p: a.model.top_p,
            max_tokens: a.model.max_tokens,
            seed: a.model.seed,
            stop: a.model.stop.clone(),
            extra: crate::commands::request::extra_fields(&a.model)?,
        },
        structured: Structured {
            repair_attempts: a.task_args.repair_attempts,
            prompt_mode: a.task_args.json_mode == crate::cli::JsonMode::Prompt,
        },
        context_window: a.task_args.context_window,
        tools: tool_flags(&a.tools),
        concurrency: a.concurrency as usize,
        rpm: a.rpm,
        tpm: a.tpm,
        max_attempts: a.max_attempts,
        max_cost: ctx.settings.budgets.max_cost_usd,
        window: a.window as usize,
    })
}

/// The task of `--task KIND` with its flags; missing or unreadable inputs are usage errors.
fn task_of(kind: TaskKind, a: &BatchRunArgs) -> Result<Task> {
    use crate::cli::{SummaryLength, SummaryStyle};
    let t = &a.task_args;
    Ok(match kind {
        TaskKind::Ask => Task::Ask {
            system: a.system.clone(),
        },
        TaskKind::Summarize => Task::Summarize {
            length: match t.length {
                SummaryLength::Short => "short",
                SummaryLength::Medium => "medium",
                SummaryLength::Long => "long",
            }
            .into(),
            words: t.words,
            format: match t.summary_format {
                SummaryStyle::Paragraph => "paragraph",
                SummaryStyle::Bullets => "bullets",
            }
            .into(),
            focus: t.focus.clone(),
        },
        TaskKind::Translate => {
            let to = t.to.clone().ok_or_else(|| {
                CliError::usage(
                    "--task translate needs --to",
                    "pass the target language, e.g. --to French",
                )
            })?;
            let glossary = match &t.glossary {
                Some(path) => {
                    let text = crate::input::read_text_file(path)?;
                    llmkit_tasks::Glossary::parse(&text)?.terms
                }
                None => Vec::new(),
            };
            Task::Translate {
                to,
                from: t.from.clone(),
                glossary,
                strict: t.strict,
            }
        }
        TaskKind::Sentiment => Task::Sentiment,
        TaskKind::Classify => {
            let opts = llmkit_tasks::ClassifyOptions::new(&t.labels, t.multi).map_err(|_| {
                CliError::usage(
                    "--task classify needs --labels",
                    "pass the labels to choose from, e.g. --labels bug,feature,question",
                )
            })?;
            Task::Classify {
                labels: opts.labels,
                multi: t.multi,
            }
        }
        TaskKind::Extract => {
            let path = t.schema.as_ref().ok_or_else(|| {
                CliError::usage(
                    "--task extract needs --schema",
                    "pass a JSON Schema file, e.g. --schema person.json",
                )
            })?;
            let text = crate::input::read_text_file(path)?;
            let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                CliError::usage(
                    format!("{} is not valid JSON: {e}", path.display()),
                    "the schema file must hold one JSON Schema object",
                )
            })?;
            llmkit_tasks::check_schema(&schema)?;
            Task::Extract { schema }
        }
    })
}

/// What task rows need: the pipeline (redaction, cache, budgets, ledger) over a client that
/// does not retry, the templates and the model's window.
fn task_setup(
    ctx: &Ctx,
    opts: &JobOptions,
    client: &HttpClient,
    tools: Option<RowTools>,
) -> Result<TaskSetup> {
    let pipeline = ctx.pipeline(
        llmkit_client::Backend::Http(client.clone()),
        PipelineSpec::new("batch").job().batch_job(&opts.job_id()?),
    )?;
    let window = opts.context_window.map_or_else(
        || {
            ctx.settings
                .models
                .info(&opts.model)
                .map_or(8192, |i| i.context_window as usize)
        },
        |w| w as usize,
    );
    Ok(TaskSetup {
        pipeline,
        templates: llmkit_tasks::Templates::new(Some(crate::commands::tasks::templates_dir(ctx))),
        window,
        counter: llmkit_tasks::TokenCounter::for_model(&opts.model),
        redacting: ctx.redacting(),
        tools,
    })
}

async fn execute(
    ctx: &Ctx,
    opts: &JobOptions,
    tools: Option<RowTools>,
    quiet: bool,
    json: bool,
) -> Result<()> {
    let existed = opts.output.exists();
    let result = execute_job(ctx, opts, tools, quiet, json).await;
    if result.is_err() && !existed {
        remove_if_empty(&opts.output);
    }
    result
}

/// Removes `path` when it is an empty file: the output that a run which failed before
/// writing a row created, so that no empty output is left behind.
pub(crate) fn remove_if_empty(path: &std::path::Path) {
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
        let _ = std::fs::remove_file(path);
    }
}

async fn execute_job(
    ctx: &Ctx,
    opts: &JobOptions,
    tools: Option<RowTools>,
    quiet: bool,
    json: bool,
) -> Result<()> {
    check_output(opts)?;
    let store = ctx.store()?;
    // Retries happen in the scheduler, where a 429 can slow every worker down.
    let client = HttpClient::new(ctx.http()?.config().clone().max_retries(0))?;
    let progress = Arc::new(Progress::new());
    let bar = (!quiet && !json).then(|| spawn_bar(progress.clone()));
    let cx = RunContext {
        tasks: task_setup(ctx, opts, &client, tools)?,
        client,
        store,
        catalog: ctx.settings.models.catalog.clone(),
        progress: progress.clone(),
    };
    let result = llmkit_batch::run_job(opts, cx).await;
    if let Some((bar, task)) = bar {
        task.abort();
        render(&bar, &progress.snapshot());
        bar.finish();
    }
    let summary = result?;
    report(&summary, &progress.snapshot(), json, &opts.output);
    if summary.stopped.is_some() {
        return Err(CliError::failure(
            summary.stopped.clone().unwrap_or_default(),
            Some(format!(
                "`llmkit batch resume {}` continues the job",
                summary.job_id
            )),
        )
        .into());
    }
    rows_failed(&summary, &opts.output)
}

/// Exit code of a batch run that went through every row but wrote some or all of them as
/// error lines: distinct from 1 (the run itself failed or stopped early) so that a script
/// can tell "the output is complete, with failures in it" apart.
pub(crate) const EXIT_ROWS_FAILED: i32 = 3;

/// Success when no row failed; otherwise an error with [`EXIT_ROWS_FAILED`] that says how
/// many rows failed and where their errors are.
pub(crate) fn rows_failed(summary: &Summary, output: &std::path::Path) -> Result<()> {
    if summary.failed == 0 {
        return Ok(());
    }
    let what = if summary.failed >= summary.written {
        format!("all {} rows failed", summary.written)
    } else {
        format!("{} of {} rows failed", summary.failed, summary.written)
    };
    Err(CliError {
        message: format!(
            "{what}: each one's line in {} holds its `error`",
            output.display()
        ),
        hint: Some(
            "fix what the errors say, then delete the output file and run the job again \
             (rows that succeeded are sent again too)"
                .into(),
        ),
        code: EXIT_ROWS_FAILED,
    }
    .into())
}

/// An unwritable output is refused before any request is made.
pub(crate) fn check_output(opts: &JobOptions) -> Result<()> {
    let probe = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&opts.output);
    if let Err(source) = probe {
        return Err(anyhow::Error::from(BatchError::Output {
            path: opts.output.clone(),
            source,
        }));
    }
    Ok(())
}

fn spawn_bar(progress: Arc<Progress>) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    ticking_bar("{bar:30} {pos}/{len} rows  {msg}  ETA {eta}", move |b| {
        render(b, &progress.snapshot());
    })
}

/// A stderr progress bar in `template`, redrawn by `tick` four times a second until the
/// returned task is aborted.
pub(crate) fn ticking_bar(
    template: &str,
    tick: impl Fn(&indicatif::ProgressBar) + Send + 'static,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    let b = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            tick(&b);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (bar, task)
}

fn render(bar: &indicatif::ProgressBar, s: &Snapshot) {
    if s.total > 0 {
        bar.set_length(s.total);
    }
    bar.set_position(s.written);
    let secs = s.elapsed_secs.max(0.001);
    bar.set_message(format!(
        "{:.1} rows/s  {:.0} tok/s  ${:.4}  retries {}  429s {}",
        s.written_now as f64 / secs,
        s.tokens as f64 / secs,
        s.spent_usd,
        s.retries,
        s.rate_limited
    ));
}

fn report(summary: &Summary, s: &Snapshot, json: bool, output: &std::path::Path) {
    if json {
        let mut v = serde_json::to_value(summary).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("elapsed_secs".into(), s.elapsed_secs.into());
            o.insert("requests".into(), s.requests.into());
            o.insert("retries".into(), s.retries.into());
            o.insert("rate_limited".into(), s.rate_limited.into());
            o.insert("tokens".into(), s.tokens.into());
        }
        println!("{v}");
        return;
    }
    let mut err = std::io::stderr().lock();
    for n in &summary.notes {
        let _ = writeln!(err, "note: {n}");
    }
    if summary.already_complete {
        let _ = writeln!(
            err,
            "job {} already complete: {} rows ({} errors), output at {}; nothing was sent \
             (delete the output file to run it again)",
            summary.job_id,
            summary.written,
            summary.failed,
            output.display()
        );
        return;
    }
    let _ = writeln!(
        err,
        "job {}: {}/{} rows written ({} errors), ${:.4} spent, {} requests, {} retries, {} 429s, {:.1}s",
        summary.job_id,
        summary.written,
        summary.total,
        summary.failed,
        summary.spent_usd,
        s.requests,
        s.retries,
        s.rate_limited,
        s.elapsed_secs
    );
}

fn print_dry_run(opts: &JobOptions, d: &DryRun, json: bool) {
    if json {
        println!("{}", serde_json::to_value(d).unwrap_or_default());
        return;
    }
    let cost = d.cost_usd.map_or_else(
        || "price unknown (the model has no price in the catalogue)".into(),
        |c| format!("${c:.4}"),
    );
    let time = d.min_time.map_or_else(
        || "depends on the server's limits (pass --rpm/--tpm)".into(),
        |t| format!("at least {:.0}s at the given limits", t.as_secs_f64()),
    );
    println!("model:          {}", opts.model);
    println!("rows:           {} ({} malformed)", d.rows, d.bad_rows);
    println!("input tokens:   {}", d.input_tokens);
    println!(
        "output tokens:  {} (expected: --max-tokens per row, else {})",
        d.expected_output_tokens,
        llmkit_batch::ASSUMED_OUTPUT_TOKENS
    );
    println!("cost:           {cost}");
    println!("time:           {time}");
}

fn status(ctx: &Ctx, job: Option<&str>, json: bool) -> Result<()> {
    let store = ctx.store()?;
    let record = match job {
        Some(j) => store.batch_job(j)?,
        None => store.batch_jobs()?.into_iter().next(),
    };
    let Some(r) = record else {
        return Err(anyhow::Error::from(BatchError::UnknownJob(
            job.unwrap_or("(latest)").to_string(),
        )));
    };
    if json {
        println!("{}", serde_json::to_value(&r).unwrap_or_default());
        return Ok(());
    }
    println!("job:      {}", r.id);
    println!("status:   {}", r.status);
    println!("input:    {}", r.input_path);
    println!("output:   {}", r.output_path);
    println!(
        "written:  {}{}",
        r.rows_written,
        r.total_rows.map(|t| format!(" of {t}")).unwrap_or_default()
    );
    println!("errors:   {}", r.rows_failed);
    println!("spent:    ${:.4}", r.spent_usd);
    if let Some(m) = &r.message {
        println!("message:  {m}");
    }
    Ok(())
}

fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let store = ctx.store()?;
    let jobs = store.batch_jobs()?;
    if json {
        println!("{}", serde_json::to_value(&jobs).unwrap_or_default());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for j in &jobs {
        let _ = writeln!(out, "{}", line_of(j));
    }
    Ok(())
}

fn line_of(j: &BatchJob) -> String {
    let total = j.total_rows.map(|t| format!("/{t}")).unwrap_or_default();
    format!(
        "{}  {:<11} {}{} rows  ${:.4}  {}",
        j.id, j.status, j.rows_written, total, j.spent_usd, j.input_path
    )
}
