//! `llmkit usage reconcile`: the ledger against the organisation's usage and cost reports,
//! day by model, as a table or JSON, with an exit code that says whether they agree.

use anyhow::Result;
use clap::Args;
use llmkit_accounting::{
    DEFAULT_THRESHOLD, ReconcileOptions, Reconciliation, Side, Status, parse_utc_day, percent,
    reconcile, utc_day,
};
use llmkit_client::{ClientError, HttpClient};
use llmkit_store::UsageFilter;
use llmkit_types::{DAY_SECS, UsageQuery};
use serde_json::json;

use crate::app::Ctx;
use crate::commands::batch::EXIT_ROWS_FAILED;
use crate::error::CliError;
use crate::output;

/// Days compared when `--since` is not given (today included).
const DEFAULT_DAYS: i64 = 7;
/// The exit code when the two sides disagree: the comparison ran to the end and its output
/// is complete, with findings in it, as for a batch whose rows failed (1 stays "could not
/// compare": no admin key, an unreachable server, a refused key).
const EXIT_FINDINGS: i32 = EXIT_ROWS_FAILED;

const ADMIN_KEY_HINT: &str = "set OPENAI_ADMIN_KEY to an organisation admin key \
     (sk-admin-..., made by an organisation owner under Admin keys); a project API key cannot \
     read the usage and cost reports";

#[derive(Debug, Args)]
pub(crate) struct ReconcileArgs {
    /// First UTC day compared (YYYY-MM-DD), inclusive [default: six days before today].
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// UTC day the comparison stops before (YYYY-MM-DD), exclusive [default: tomorrow].
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Largest difference, in percent, that still counts as matching.
    #[arg(long, value_name = "PCT", default_value_t = DEFAULT_THRESHOLD * 100.0,
          value_parser = threshold)]
    pub threshold: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: ReconcileArgs) -> Result<()> {
    let (start, end) = range(&args)?;
    let Some(admin) = ctx.settings.client.admin_config() else {
        return Err(CliError::failure(
            "no admin key set for the organisation's usage and cost reports",
            Some(ADMIN_KEY_HINT.to_string()),
        )
        .into());
    };
    let store = ctx.store()?;
    let ledger = store.ledger_rows(&UsageFilter {
        since: Some(start as f64),
        until: Some(end as f64),
    })?;
    let client = HttpClient::new(admin)?;
    let usage_query = UsageQuery::daily(start, end, "model");
    let costs_query = UsageQuery::daily(start, end, "line_item");
    let (usage, costs) = tokio::try_join!(
        client.usage_completions(&usage_query),
        client.costs(&costs_query)
    )
    .map_err(|e| report_error(&e))?;
    let opts = ReconcileOptions {
        threshold: args.threshold / 100.0,
    };
    let result = reconcile(&ledger, &usage, &costs, &ctx.settings.models.catalog, &opts);
    let (since, until) = (utc_day(start), utc_day(end));
    if args.json {
        output::json(&json!({
            "since": since,
            "until": until,
            "matches": result.matches(),
            "threshold": result.threshold,
            "rows": result.rows,
            "findings": result.findings,
        }))?;
    } else {
        table(&result, &since, &until)?;
    }
    if result.matches() {
        return Ok(());
    }
    let n = result.findings.len();
    Err(CliError {
        message: format!(
            "the ledger and the organisation's reports disagree: {n} finding{}",
            if n == 1 { "" } else { "s" }
        ),
        hint: Some(
            "a cost drift usually means an out-of-date price: compare `llmkit models --prices` \
             with the bill and set [models.\"NAME\"] prices in the config; spend not in the \
             ledger came from another tool or key, and today's reports can lag by hours"
                .into(),
        ),
        code: EXIT_FINDINGS,
    }
    .into())
}

/// `[start, end)` in unix seconds, both at 00:00 UTC.
fn range(args: &ReconcileArgs) -> Result<(i64, i64)> {
    let day = |text: &str, flag: &str| {
        parse_utc_day(text).ok_or_else(|| {
            CliError::usage(
                format!("{flag} `{text}` is not a date"),
                "use YYYY-MM-DD (a UTC day, as the organisation's reports count days)",
            )
        })
    };
    let end = match &args.until {
        Some(text) => day(text, "--until")?,
        None => today() + DAY_SECS,
    };
    let start = match &args.since {
        Some(text) => day(text, "--since")?,
        None => end - DEFAULT_DAYS * DAY_SECS,
    };
    if start >= end {
        return Err(CliError::usage(
            format!(
                "--since {} is not before --until {}: the range is empty",
                utc_day(start),
                utc_day(end)
            ),
            "--since is inclusive and --until exclusive; swap them, or widen the range",
        )
        .into());
    }
    Ok((start, end))
}

fn today() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(now).unwrap_or(i64::MAX) / DAY_SECS * DAY_SECS
}

fn threshold(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a percentage between 0 and 100")),
    }
}

/// A refused key gets the admin-key hint: the reports need an admin key, not an API key.
fn report_error(e: &ClientError) -> anyhow::Error {
    let refused = match e {
        ClientError::Api { status, .. } => matches!(status, 401 | 403),
        _ => false,
    };
    let mut err = CliError::from(e);
    if refused {
        err.hint = Some(ADMIN_KEY_HINT.to_string());
    }
    err.into()
}

fn table(r: &Reconciliation, since: &str, until: &str) -> Result<()> {
    output::line(&format!(
        "ledger vs organisation, {since} to {until} (UTC, until exclusive), threshold {:.2}%",
        r.threshold * 100.0
    ))?;
    if r.rows.is_empty() {
        output::line("no usage on either side in this period")?;
    } else {
        let cells: Vec<[String; 8]> = r.rows.iter().map(cells).collect();
        let head = [
            "day", "model", "requests", "input", "output", "ledger", "org", "drift",
        ]
        .map(String::from);
        let mut widths = head.clone().map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let statuses = r.rows.iter().map(|d| d.status.as_str());
        for (row, status) in std::iter::once((&head, "status")).chain(cells.iter().zip(statuses)) {
            let mut text = String::new();
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                if i < 2 {
                    text.push_str(&format!("{c:<w$}  "));
                } else {
                    text.push_str(&format!("{c:>w$}  "));
                }
            }
            text.push_str(status);
            output::line(&text)?;
        }
    }
    output::line("")?;
    if r.findings.is_empty() {
        return output::line("no findings: the ledger matches the organisation's reports");
    }
    output::line(&format!("findings ({}):", r.findings.len()))?;
    for f in &r.findings {
        output::line(&format!("  {}", f.describe()))?;
    }
    Ok(())
}

/// A row's cells: requests, input and output tokens as `ledger/org`, the two costs, drift.
fn cells(d: &llmkit_accounting::DayModel) -> [String; 8] {
    let pair = |l: u64, o: u64, org: &Side| {
        let o = if org.has_usage {
            o.to_string()
        } else {
            "-".into()
        };
        format!("{l}/{o}")
    };
    let ledger_cost = if d.ledger.unpriced > 0 {
        format!("${:.8}+{} unpriced", d.ledger.cost_usd, d.ledger.unpriced)
    } else {
        format!("${:.8}", d.ledger.cost_usd)
    };
    let drift = match d.status {
        Status::NotInLedger | Status::NotReported | Status::Unpriced => "-".into(),
        Status::Ok | Status::Drift => percent(d.cost_drift),
    };
    [
        d.day.clone(),
        d.model.clone(),
        pair(d.ledger.requests, d.org.requests, &d.org),
        pair(d.ledger.input_tokens, d.org.input_tokens, &d.org),
        pair(d.ledger.output_tokens, d.org.output_tokens, &d.org),
        ledger_cost,
        format!("${:.8}", d.org.cost_usd),
        drift,
    ]
}
