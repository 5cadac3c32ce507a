//! `llmkit finetune create|follow|list|show|cancel|events`: fine-tuning jobs on an
//! OpenAI-compatible server, through the client's files and fine-tuning calls.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use llmkit_client::HttpClient;
use llmkit_types::{CreateFineTuningJobRequest, FineTuningEvent, FineTuningJob, Hyperparameters};

use crate::app::{Ctx, notice};
use crate::commands::finetune::{check_file, findings_text, invalid_file};
use crate::error::CliError;
use crate::output;

/// The per-example token limit checked before upload (OpenAI's for current models).
const EXAMPLE_TOKEN_LIMIT: u64 = 65_536;

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The base model to tune (e.g. gpt-4o-mini-2024-07-18).
    #[arg(short, long)]
    pub model: String,
    /// The training JSONL (validated before upload).
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,
    /// A validation JSONL (validated too).
    #[arg(long, value_name = "FILE")]
    pub validation_file: Option<PathBuf>,
    /// Up to 64 characters that end up in the model name (`ft:BASE:ORG:SUFFIX:ID`).
    #[arg(long, value_name = "TEXT")]
    pub suffix: Option<String>,
    /// Training epochs (default: the server's choice).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=50))]
    pub epochs: Option<u32>,
    /// Seed, for a reproducible job.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Follow the job right away (as `finetune follow`).
    #[arg(long)]
    pub follow: bool,
    /// Print the created job as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct PollArgs {
    /// Longest wait between two polls of a followed job.
    #[arg(long, hide = true, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_max_ms: u64,
}

#[derive(Debug, Args)]
pub(crate) struct FollowArgs {
    /// The job id (`ftjob-...`).
    pub job: String,
    /// One JSON line per event, then the final job.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// How many jobs.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// The job id (`ftjob-...`).
    pub job: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// The job id (`ftjob-...`).
    pub job: String,
    /// How many of the latest events.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    if a.suffix.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(CliError::usage(
            "--suffix is longer than 64 characters",
            "pass a shorter suffix",
        )
        .into());
    }
    let mut files = vec![&a.file];
    files.extend(a.validation_file.as_ref());
    for f in &files {
        validate_before_upload(f, &a.model)?;
    }
    let client = ctx.http()?;
    let training = upload(&client, &a.file).await?;
    let validation = match &a.validation_file {
        Some(v) => Some(upload(&client, v).await?),
        None => None,
    };
    let req = CreateFineTuningJobRequest {
        model: a.model.clone(),
        training_file: training,
        validation_file: validation,
        suffix: a.suffix.clone(),
        seed: a.seed,
        hyperparameters: a.epochs.map(|n| Hyperparameters {
            n_epochs: Some(n.into()),
            ..Hyperparameters::default()
        }),
        ..CreateFineTuningJobRequest::default()
    };
    let job = client.create_fine_tuning_job(&req).await?.body;
    if a.json {
        output::json(&serde_json::to_value(&job)?)?;
    } else {
        output::write(&format!("{}\n", job.id))?;
        if !a.follow {
            notice(&format!(
                "job {} is {}; `llmkit finetune follow {}` shows its progress",
                job.id, job.status, job.id
            ));
        }
    }
    if a.follow {
        return follow_job(&client, &job.id, a.json, &a.poll).await;
    }
    Ok(())
}

pub(super) async fn follow(ctx: &Ctx, a: FollowArgs) -> Result<()> {
    let client = ctx.http()?;
    follow_job(&client, &a.job, a.json, &a.poll).await
}

pub(super) async fn list(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let page = ctx
        .http()?
        .list_fine_tuning_jobs(Some(a.limit), None)
        .await?
        .body;
    if a.json {
        return output::json(&serde_json::to_value(&page.data)?);
    }
    let mut out = String::new();
    for j in &page.data {
        out.push_str(&format!(
            "{}  {:<16} {:<28} {}\n",
            j.id,
            j.status,
            j.model,
            j.fine_tuned_model.as_deref().unwrap_or("-")
        ));
    }
    if page.data.is_empty() {
        notice("no fine-tuning jobs");
    }
    output::write(&out)
}

pub(super) async fn show(ctx: &Ctx, a: JobArgs) -> Result<()> {
    let client = ctx.http()?;
    let job = client.fine_tuning_job(&a.job).await?.body;
    // Checkpoints are a bonus: a server without the endpoint still shows the job.
    let checkpoints = match client.fine_tuning_checkpoints(&a.job).await {
        Ok(r) => r.body.data,
        Err(_) => Vec::new(),
    };
    if a.json {
        let mut v = serde_json::to_value(&job)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("checkpoints".into(), serde_json::to_value(&checkpoints)?);
        }
        return output::json(&v);
    }
    let mut out = describe(&job);
    for c in &checkpoints {
        out.push_str(&format!(
            "checkpoint:        step {} {}\n",
            c.step_number, c.fine_tuned_model_checkpoint
        ));
    }
    output::write(&out)
}

pub(super) async fn cancel(ctx: &Ctx, a: JobArgs) -> Result<()> {
    let job = ctx.http()?.cancel_fine_tuning_job(&a.job).await?.body;
    if a.json {
        return output::json(&serde_json::to_value(&job)?);
    }
    output::write(&format!("{} {}\n", job.id, job.status))
}

pub(super) async fn events(ctx: &Ctx, a: EventsArgs) -> Result<()> {
    let page = ctx
        .http()?
        .fine_tuning_events(&a.job, Some(a.limit), None)
        .await?
        .body;
    let mut out = String::new();
    for e in page.data.iter().rev() {
        if a.json {
            out.push_str(&serde_json::to_string(e)?);
            out.push('\n');
        } else {
            out.push_str(&event_line(e));
            out.push('\n');
        }
    }
    output::write(&out)
}

/// Refuses a file the validator finds errors in, listing them with their lines.
fn validate_before_upload(file: &Path, model: &str) -> Result<()> {
    let report = check_file(file, model, EXAMPLE_TOKEN_LIMIT)?;
    let text = findings_text(file, &report);
    if !text.is_empty() {
        eprint!("{text}");
    }
    if report.errors() > 0 {
        return Err(invalid_file(file, &report));
    }
    notice(&format!(
        "{}: {} examples, {} tokens per epoch",
        file.display(),
        report.examples,
        report.billed_tokens_per_epoch
    ));
    Ok(())
}

async fn upload(client: &HttpClient, file: &Path) -> Result<String> {
    let f = client.upload_file(file, "fine-tune").await?.body;
    notice(&format!("uploaded {} as {}", file.display(), f.id));
    Ok(f.id)
}

/// Polls the job and its events until it ends; prints the model name on success.
async fn follow_job(client: &HttpClient, id: &str, json: bool, poll: &PollArgs) -> Result<()> {
    let bar = (!json).then(new_bar);
    let mut seen: HashSet<String> = HashSet::new();
    let max_wait = Duration::from_millis(poll.poll_max_ms);
    let mut wait = Duration::from_millis(200).min(max_wait);
    let job = loop {
        let job = client.fine_tuning_job(id).await?.body;
        let page = client.fine_tuning_events(id, Some(100), None).await?.body;
        // Events come newest first: show the unseen ones oldest first.
        for e in page.data.iter().rev() {
            if !seen.insert(e.id.clone()) {
                continue;
            }
            match &bar {
                None => output::write(&format!("{}\n", serde_json::to_string(e)?))?,
                Some(b) => show_event(b, e),
            }
        }
        if let Some(b) = &bar {
            b.set_prefix(job.status.clone());
        }
        if job.is_terminal() {
            break job;
        }
        tokio::time::sleep(wait).await;
        wait = wait.mul_f64(1.5).min(max_wait);
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    finish(&job, json)
}

fn finish(job: &FineTuningJob, json: bool) -> Result<()> {
    if json {
        // One line, like the events before it.
        output::write(&format!("{}\n", serde_json::to_string(job)?))?;
    }
    match job.status.as_str() {
        "succeeded" => {
            let model = job.fine_tuned_model.clone().unwrap_or_default();
            if !json {
                if let Some(t) = job.trained_tokens {
                    notice(&format!("job {} succeeded ({t} trained tokens)", job.id));
                }
                output::write(&format!("{model}\n"))?;
                notice(&format!("use it with `-m {model}`"));
            }
            Ok(())
        }
        "failed" => Err(CliError::failure(
            format!(
                "fine-tuning job {} failed: {}",
                job.id,
                job.error_message().unwrap_or("no reason given")
            ),
            Some("fix the training file and run `llmkit finetune create` again".into()),
        )
        .into()),
        other => Err(CliError::failure(
            format!("fine-tuning job {} ended {other}", job.id),
            Some("`llmkit finetune create` starts a new job".into()),
        )
        .into()),
    }
}

fn new_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {prefix:<16} {bar:30} step {pos}/{len}  {msg}  {elapsed}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Messages above the bar, metrics in it; without a terminal (no bar drawn) every event is
/// a line on stderr.
fn show_event(bar: &indicatif::ProgressBar, e: &FineTuningEvent) {
    if bar.is_hidden() {
        notice(&event_line(e));
        return;
    }
    match e.step_metrics() {
        Some((step, total, loss)) => {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(step);
            if let Some(l) = loss {
                bar.set_message(format!("loss {l:.4}"));
            }
        }
        None => bar.println(event_line(e)),
    }
}

fn event_line(e: &FineTuningEvent) -> String {
    let level = if e.level == "error" || e.level == "warn" {
        format!("{}: ", e.level)
    } else {
        String::new()
    };
    format!("[{}] {level}{}", clock(e.created_at), e.message)
}

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn describe(job: &FineTuningJob) -> String {
    let mut out = String::new();
    let mut field = |k: &str, v: String| out.push_str(&format!("{k:<19}{v}\n"));
    field("id:", job.id.clone());
    field("status:", job.status.clone());
    field("model:", job.model.clone());
    field(
        "fine_tuned_model:",
        job.fine_tuned_model.clone().unwrap_or_else(|| "-".into()),
    );
    field("training_file:", job.training_file.clone());
    if let Some(v) = &job.validation_file {
        field("validation_file:", v.clone());
    }
    if let Some(h) = &job.hyperparameters {
        field(
            "epochs:",
            h.n_epochs.as_ref().map_or_else(
                || "auto".into(),
                |v| v.to_string().trim_matches('"').to_string(),
            ),
        );
    }
    if let Some(t) = job.trained_tokens {
        field("trained_tokens:", t.to_string());
    }
    if let Some(m) = job.error_message() {
        field("error:", m.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_event_lines() {
        assert_eq!(clock(3_661), "01:01:01");
        let e = FineTuningEvent {
            id: "e".into(),
            created_at: 0,
            level: "error".into(),
            message: "bad".into(),
            ..FineTuningEvent::default()
        };
        assert_eq!(event_line(&e), "[00:00:00] error: bad");
    }
}
