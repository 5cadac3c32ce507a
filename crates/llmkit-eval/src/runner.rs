//! Running a variant over a dataset through the request pipeline (a modest number of items
//! at once), and estimating tokens and cost without sending (`--dry-run`).

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use llmkit_client::{ModelInfo, Pipeline};
use llmkit_tasks::to_minijinja;
use llmkit_tasks::{
    ClassifyOptions, SummarizeOptions, TaskError, TaskRunner, Templates, TokenCounter,
    TranslateOptions,
};
use llmkit_types::ChatCompletionRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::{ItemResult, SentPrompt, VariantResult, score_variant};
use crate::spec::{Dataset, EvalSpec, Item, Task, Variant};

/// Everything needed to send one variant's requests; the CLI builds it (backend, pipeline
/// with cache/budgets/ledger, prototype request with model and sampling).
#[derive(Clone)]
pub struct VariantSetup {
    pub variant: Variant,
    pub pipeline: Pipeline,
    /// Model and sampling set; messages are ignored.
    pub prototype: ChatCompletionRequest,
    pub templates: Templates,
    pub window: usize,
    pub counter: TokenCounter,
    /// Catalogue prices, when known.
    pub price: Option<ModelInfo>,
    /// The embedded model costs nothing.
    pub free: bool,
    /// Items sent at once (1 for the local model).
    pub concurrency: usize,
}

/// Tokens and cost a variant would use (`--dry-run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub variant: String,
    pub model: String,
    pub items: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// None when the model's price is unknown.
    pub cost_usd: Option<f64>,
}

impl Estimate {
    /// An estimate of `tokens` (prompt, completion) over `items`, priced at the catalogue
    /// price (free for the embedded model, unknown without a price).
    pub(crate) fn priced(
        variant: String,
        model: &str,
        items: usize,
        (prompt, completion): (u64, u64),
        price: Option<&ModelInfo>,
        free: bool,
    ) -> Self {
        let cost_usd = if free {
            Some(0.0)
        } else {
            price.map(|p| p.cost_of(prompt, 0, completion, false))
        };
        Self {
            variant,
            model: model.to_string(),
            items,
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_usd,
        }
    }
}

/// Runs every item of `data` through one variant and scores the outputs.
pub async fn run_variant(setup: &VariantSetup, spec: &EvalSpec, data: &Dataset) -> VariantResult {
    let n = setup.concurrency.max(1);
    let mut items: Vec<ItemResult> = futures::stream::iter(data.items.iter())
        .map(|item| run_item(setup, spec, item))
        .buffer_unordered(n)
        .collect()
        .await;
    items.sort_by_key(|i| i.index);
    score_variant(spec, &setup.variant, &setup.prototype.model, items)
}

pub(crate) async fn run_item(setup: &VariantSetup, spec: &EvalSpec, item: &Item) -> ItemResult {
    // A runner per item so its statistics (tokens, cache hit) are this item's alone.
    let runner = TaskRunner::new(
        setup.pipeline.clone(),
        setup.prototype.clone(),
        setup.templates.clone(),
    )
    .window(setup.window)
    .counter(setup.counter.clone());
    let input = display_input(spec, item);
    let start = Instant::now();
    let result = perform(&runner, spec, &setup.variant, item).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let stats = runner.stats();
    let cost_usd = if setup.free {
        Some(0.0)
    } else {
        setup
            .price
            .as_ref()
            .map(|p| p.cost_of(stats.prompt_tokens, 0, stats.completion_tokens, false))
    };
    let (output, error) = match result {
        Ok(o) => (Some(o), None),
        Err(e) => (None, Some(e)),
    };
    ItemResult {
        index: item.index,
        input,
        expected: item.expected.clone(),
        output,
        error,
        latency_ms,
        prompt_tokens: stats.prompt_tokens,
        completion_tokens: stats.completion_tokens,
        cache_hit: stats.cache_hits > 0,
        cost_usd,
        scores: BTreeMap::new(),
        judge: None,
        prompt: match spec.task {
            Task::Prompt => render_prompt(spec, &setup.variant, item)
                .ok()
                .map(|(system, user)| SentPrompt { system, user }),
            _ => None,
        },
    }
}

/// The item's input as shown in reports: the input field, or the rendered prompt.
fn display_input(spec: &EvalSpec, item: &Item) -> String {
    match spec.task {
        Task::Prompt => item
            .fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => item.input(&spec.input),
    }
}

/// Sends one item and returns the text the metrics score.
async fn perform(
    runner: &TaskRunner,
    spec: &EvalSpec,
    variant: &Variant,
    item: &Item,
) -> Result<String, String> {
    let text = item.input(&spec.input);
    let err = |e: TaskError| e.to_string();
    match spec.task {
        Task::Sentiment => Ok(llmkit_tasks::sentiment(runner, &text)
            .await
            .map_err(err)?
            .label),
        Task::Classify => {
            let opts = ClassifyOptions::new(&spec.labels, false).map_err(err)?;
            let c = llmkit_tasks::classify(runner, &text, &opts)
                .await
                .map_err(err)?;
            Ok(c.labels
                .first()
                .map(|l| l.label.clone())
                .unwrap_or_default())
        }
        Task::Summarize => llmkit_tasks::summarize(runner, &text, &SummarizeOptions::default())
            .await
            .map_err(err),
        Task::Translate => {
            let opts = TranslateOptions {
                to: spec.to.clone().unwrap_or_default(),
                ..TranslateOptions::default()
            };
            Ok(llmkit_tasks::translate(runner, &text, &opts)
                .await
                .map_err(err)?
                .text)
        }
        Task::Extract => {
            let schema = spec.schema_value.clone().unwrap_or(Value::Null);
            let v = llmkit_tasks::extract(runner, &text, &schema)
                .await
                .map_err(err)?;
            Ok(v.to_string())
        }
        Task::Prompt => {
            let (system, user) = render_prompt(spec, variant, item)?;
            let out = runner.output_budget(512);
            let answer = runner.ask(&system, &user, out).await.map_err(err)?;
            Ok(match first_label(&answer, &spec.labels) {
                Some(l) => l.to_string(),
                None => answer,
            })
        }
    }
}

/// The first of `labels` that `answer` says, as a whole word in any case ("The review is
/// Positive." says `positive`); `None` when it says none (or there are no labels). Lets a
/// `prompt` task with `labels` score free-text answers by label, as small models give them.
pub(crate) fn first_label<'a>(answer: &str, labels: &'a [String]) -> Option<&'a str> {
    let lower = answer.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    // A label may be several words: find the earliest position where one starts.
    let mut best: Option<(usize, &'a str)> = None;
    for label in labels {
        let parts: Vec<String> = label
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        if parts.is_empty() {
            continue;
        }
        let at = words
            .windows(parts.len())
            .position(|w| w.iter().zip(&parts).all(|(a, b)| *a == b.as_str()));
        if let Some(at) = at
            && best.is_none_or(|(b, _)| at < b)
        {
            best = Some((at, label.as_str()));
        }
    }
    best.map(|(_, l)| l)
}

/// The (system, user) texts of a `prompt` task item: minijinja templates over the item's
/// fields; an undefined variable is an error, not an empty string.
pub(crate) fn render_prompt(
    spec: &EvalSpec,
    variant: &Variant,
    item: &Item,
) -> Result<(String, String), String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let template = variant
        .prompt
        .as_deref()
        .or(spec.prompt.as_deref())
        .unwrap_or("{{ input }}");
    let ctx = minijinja::Value::from(
        item.fields
            .iter()
            .map(|(k, v)| (k.clone(), to_minijinja(v)))
            .collect::<BTreeMap<String, minijinja::Value>>(),
    );
    let user = env
        .render_str(template, &ctx)
        .map_err(|e| format!("prompt template: {e}"))?;
    let system = match variant.system.as_deref().or(spec.system.as_deref()) {
        Some(s) => env
            .render_str(s, &ctx)
            .map_err(|e| format!("system template: {e}"))?,
        None => String::new(),
    };
    Ok((system, user))
}

/// The (prompt, completion) tokens one item is expected to take under `variant`.
pub(crate) fn estimate_item(
    spec: &EvalSpec,
    variant: &Variant,
    item: &Item,
    counter: &TokenCounter,
) -> (u64, u64) {
    let input = match spec.task {
        Task::Prompt => match render_prompt(spec, variant, item) {
            Ok((s, u)) => counter.count(&s) as u64 + counter.count(&u) as u64,
            Err(_) => 0,
        },
        _ => counter.count(&item.input(&spec.input)) as u64 + TASK_OVERHEAD,
    };
    let guess = match spec.task {
        Task::Sentiment => 60,
        Task::Classify => 40,
        Task::Summarize => 250,
        Task::Translate => input.saturating_sub(TASK_OVERHEAD) * 6 / 5 + 10,
        Task::Extract => 150,
        Task::Prompt => 256,
    };
    (
        input + 8,
        variant
            .max_tokens
            .map_or(guess, |m| u64::from(m).min(guess)),
    )
}

/// Tokens the task's own instructions add, roughly (their templates are a few hundred
/// characters).
const TASK_OVERHEAD: u64 = 150;

/// Estimates one variant's tokens and cost without sending anything: input tokens are
/// counted, output tokens are `max_tokens` or a per-task guess.
pub fn estimate_variant(
    spec: &EvalSpec,
    data: &Dataset,
    variant: &Variant,
    model: &str,
    counter: &TokenCounter,
    price: Option<&ModelInfo>,
    free: bool,
) -> Estimate {
    let (mut prompt, mut completion) = (0u64, 0u64);
    for item in &data.items {
        let (p, c) = estimate_item(spec, variant, item, counter);
        prompt += p;
        completion += c;
    }
    Estimate::priced(
        variant.name.clone(),
        model,
        data.items.len(),
        (prompt, completion),
        price,
        free,
    )
}

#[cfg(test)]
mod tests {
    use super::first_label;

    #[test]
    fn first_label_reads_free_text_answers() {
        let labels: Vec<String> = ["positive", "negative", "not sure"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            first_label("The review is Positive.", &labels),
            Some("positive")
        );
        assert_eq!(
            first_label("negative, not positive", &labels),
            Some("negative")
        );
        assert_eq!(first_label("I am NOT SURE.", &labels), Some("not sure"));
        assert_eq!(first_label("positively great", &labels), None);
        assert_eq!(first_label("anything", &[]), None);
    }
}
