//! `llmkit usage`: spend and tokens from the ledger, grouped, as JSON or a bar chart.

use std::collections::BTreeMap;

use anyhow::Result;
use llmkit_store::{Store, UsageFilter, UsageGroup, UsageRow};
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{UsageArgs, UsageBy};
use crate::error::CliError;
use crate::output;

/// Width of the longest bar of `--chart`.
const CHART_WIDTH: f64 = 40.0;

pub(crate) fn run(ctx: &Ctx, args: UsageArgs) -> Result<()> {
    let store = ctx.store()?;
    let filter = UsageFilter {
        since: parse_time(&store, args.since.as_deref(), "--since")?,
        until: parse_time(&store, args.until.as_deref(), "--until")?,
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since >= until
    {
        return Err(CliError::usage(
            format!(
                "--since {} is not before --until {}: the range is empty",
                args.since.as_deref().unwrap_or_default(),
                args.until.as_deref().unwrap_or_default()
            ),
            "--since is inclusive and --until exclusive; swap them, or widen the range",
        )
        .into());
    }
    let group = if args.chart {
        UsageGroup::Day
    } else {
        match args.by {
            None => UsageGroup::Total,
            Some(UsageBy::Day) => UsageGroup::Day,
            Some(UsageBy::Model) => UsageGroup::Model,
            Some(UsageBy::Session) => UsageGroup::Session,
            Some(UsageBy::Command) => UsageGroup::Command,
        }
    };
    let rows = store.usage(&filter, group)?;
    let total = store
        .usage(&filter, UsageGroup::Total)?
        .into_iter()
        .next()
        .unwrap_or_default();
    let saved = savings(ctx, &store, &filter, group)?;
    let total_saved = saved.values().sum::<f64>();
    if args.json {
        let with_saved = |r: &UsageRow, usd: f64| {
            let mut v = json!(r);
            v["saved_usd"] = json!(usd);
            v
        };
        let rows: Vec<_> = rows
            .iter()
            .map(|r| with_saved(r, saved.get(&r.key).copied().unwrap_or(0.0)))
            .collect();
        return output::json(&json!({ "rows": rows, "total": with_saved(&total, total_saved) }));
    }
    if args.chart {
        return chart(&rows, &total);
    }
    table(
        &rows,
        &total,
        group != UsageGroup::Total,
        &saved,
        total_saved,
    )
}

/// What the prompt cache saved in each group: the cached prompt tokens of each model at the
/// difference between its input and cached-input prices (0 where the catalogue has no
/// cached price, or does not know the model).
fn savings(
    ctx: &Ctx,
    store: &Store,
    filter: &UsageFilter,
    group: UsageGroup,
) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (key, model, cached) in store.cached_by_model(filter, group)? {
        let Some(info) = ctx.settings.models.catalog.price(&model) else {
            continue;
        };
        let per_token = info
            .cached_input_per_mtok
            .map_or(0.0, |c| (info.input_per_mtok - c).max(0.0) / 1_000_000.0);
        *out.entry(key).or_insert(0.0) += cached as f64 * per_token;
    }
    Ok(out)
}

fn parse_time(store: &Store, text: Option<&str>, flag: &str) -> Result<Option<f64>> {
    let Some(text) = text else { return Ok(None) };
    match store.local_time_to_secs(text)? {
        Some(v) => Ok(Some(v)),
        None => Err(CliError::usage(
            format!("{flag} `{text}` is not a date"),
            "use YYYY-MM-DD or \"YYYY-MM-DD HH:MM\" (local time)",
        )
        .into()),
    }
}

fn table(
    rows: &[UsageRow],
    total: &UsageRow,
    with_total: bool,
    saved: &BTreeMap<String, f64>,
    total_saved: f64,
) -> Result<()> {
    let width = rows
        .iter()
        .map(|r| r.key.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    output::line(&format!(
        "{:<width$}  {:>8}  {:>10}  {:>10}  {:>8}  {:>6}  {:>6}  {:>10}  {:>10}",
        "", "requests", "prompt", "completion", "cached", "hits", "errors", "cost", "saved"
    ))?;
    let line = |r: &UsageRow, saved: f64| {
        format!(
            "{:<width$}  {:>8}  {:>10}  {:>10}  {:>8}  {:>6}  {:>6}  {:>10}  {:>10}",
            r.key,
            r.requests,
            r.prompt_tokens,
            r.completion_tokens,
            r.cached_tokens,
            r.cache_hits,
            r.errors,
            cost_text(r),
            format!("${saved:.6}")
        )
    };
    for r in rows {
        output::line(&line(r, saved.get(&r.key).copied().unwrap_or(0.0)))?;
    }
    if with_total {
        output::line(&line(total, total_saved))?;
    }
    Ok(())
}

/// The known cost, and how many requests had no known price (so are not in it): a model
/// missing from the price list is never summed as free.
fn cost_text(r: &UsageRow) -> String {
    if r.unpriced == 0 {
        format!("${:.6}", r.cost_usd)
    } else {
        format!("${:.6} + {} unpriced", r.cost_usd, r.unpriced)
    }
}

fn chart(rows: &[UsageRow], total: &UsageRow) -> Result<()> {
    if rows.is_empty() {
        return output::line("no usage recorded in this period");
    }
    let max = rows.iter().map(|r| r.cost_usd).fold(0.0, f64::max);
    for r in rows {
        let len = if max > 0.0 {
            ((r.cost_usd / max) * CHART_WIDTH).round() as usize
        } else {
            0
        };
        // A day with spend always shows at least a sliver.
        let len = if r.cost_usd > 0.0 { len.max(1) } else { len };
        output::line(&format!(
            "{}  {:<w$}  ${:.6}  ({} requests)",
            r.key,
            "█".repeat(len),
            r.cost_usd,
            r.requests,
            w = CHART_WIDTH as usize
        ))?;
    }
    output::line(&format!(
        "total {} over {} requests",
        cost_text(total),
        total.requests
    ))
}
