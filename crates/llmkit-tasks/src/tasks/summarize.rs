//! `summarize`: one request when the text fits the window, else map-reduce: each chunk is
//! summarised, and the summaries are merged in groups, recursively, until one remains.

use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::chunk::chunk_text;
use crate::error::TaskError;
use crate::runner::TaskRunner;

/// How long the summary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Length {
    Short,
    #[default]
    Medium,
    Long,
}

impl Length {
    pub fn name(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Medium => "medium",
            Self::Long => "long",
        }
    }
}

/// Prose or a bulleted list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummaryFormat {
    #[default]
    Paragraph,
    Bullets,
}

/// The summary's shape.
#[derive(Debug, Clone, Default)]
pub struct SummarizeOptions {
    pub length: Length,
    /// A word limit; wins over `length`.
    pub words: Option<u32>,
    pub format: SummaryFormat,
    /// What the summary should concentrate on.
    pub focus: Option<String>,
}

/// Merging rounds after which the reduction stops (each round at least halves the count).
const MAX_ROUNDS: usize = 12;

/// Summarises `text`.
pub async fn summarize(
    runner: &TaskRunner,
    text: &str,
    opts: &SummarizeOptions,
) -> Result<String, TaskError> {
    if text.trim().is_empty() {
        return Err(TaskError::EmptyInput);
    }
    let out = runner.output_budget(default_budget(opts));
    let whole = render(runner, "summarize", opts, false)?;
    let budget = runner.input_budget(&whole, out)?;
    if runner.tokens(text) <= budget {
        return runner.ask(&whole, text, out).await;
    }

    // Map: each chunk summarised with a budget that lets at least two summaries share a
    // merge request.
    let part = render(runner, "summarize", opts, true)?;
    let chunk_budget = runner.input_budget(&part, out)?;
    let combine = render(runner, "summarize-combine", opts, false)?;
    let merge_budget = runner.input_budget(&combine, out)?;
    let part_out = out
        .min(u32::try_from(merge_budget / 3).unwrap_or(u32::MAX))
        .max(16);
    let overlap = (chunk_budget / 20).min(200);
    let chunks = chunk_text(text, runner.token_counter(), chunk_budget, overlap);
    runner.progress_add(chunks.len() as u64);
    let mut summaries = map_all(runner, &part, chunks, part_out).await?;

    // Reduce: merge groups that fit the window until one request can take them all.
    for _ in 0..MAX_ROUNDS {
        let joined = join_parts(&summaries);
        if runner.tokens(&joined) <= merge_budget {
            let result = runner.ask(&combine, &joined, out).await;
            runner.progress_finish();
            return result;
        }
        let groups = group(runner, &summaries, merge_budget);
        runner.progress_add(groups.len() as u64);
        summaries = map_all(
            runner,
            &combine,
            groups.iter().map(|g| join_parts(g)).collect(),
            part_out,
        )
        .await?;
    }
    runner.progress_finish();
    // Still too long after every round (a window barely larger than the instructions):
    // summarise what fits.
    let joined = join_parts(&summaries);
    let first = chunk_text(&joined, runner.token_counter(), merge_budget, 0)
        .into_iter()
        .next()
        .unwrap_or_default();
    runner.ask(&combine, &first, out).await
}

fn default_budget(opts: &SummarizeOptions) -> u32 {
    match (opts.words, opts.length) {
        (Some(w), _) => w.saturating_mul(2).max(32),
        (None, Length::Short) => 150,
        (None, Length::Medium) => 400,
        (None, Length::Long) => 900,
    }
}

fn render(
    runner: &TaskRunner,
    name: &str,
    opts: &SummarizeOptions,
    part: bool,
) -> Result<String, TaskError> {
    let vars = json!({
        "length": opts.length.name(),
        "words": opts.words,
        "format": match opts.format { SummaryFormat::Paragraph => "paragraph", SummaryFormat::Bullets => "bullets" },
        "focus": opts.focus,
        "part": part,
    });
    runner.render(name, &vars)
}

/// Sends one request per input (up to the runner's concurrency at once), in order.
async fn map_all(
    runner: &TaskRunner,
    system: &str,
    inputs: Vec<String>,
    out: u32,
) -> Result<Vec<String>, TaskError> {
    futures::stream::iter(inputs)
        .map(|input| async move {
            let r = runner.ask(system, &input, out).await;
            runner.progress_inc();
            r
        })
        .buffered(runner.parallel())
        .try_collect()
        .await
}

/// Consecutive summaries packed into groups that fit `budget`, each of at least two (the
/// budgets guarantee two fit) so every round shrinks the list.
fn group(runner: &TaskRunner, parts: &[String], budget: usize) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut used = 0;
    for p in parts {
        let n = runner.tokens(p) + 8;
        if !current.is_empty() && used + n > budget {
            groups.push(std::mem::take(&mut current));
            used = 0;
        }
        used += n;
        current.push(p.clone());
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn join_parts(parts: &[String]) -> String {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| format!("Part {}:\n{}", i + 1, p.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}
