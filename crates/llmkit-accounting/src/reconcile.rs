//! Ledger reconciliation: the local ledger's spend and tokens, per UTC day and model, against
//! the organisation's own usage and cost reports, with every disagreement named.
//!
//! A pure function of its inputs (ledger rows, report buckets, the price list): the CLI
//! fetches the reports and reads the ledger, this module compares them.

use std::collections::{BTreeMap, BTreeSet};

use llmkit_client::ModelCatalog;
use llmkit_store::LedgerRow;
use llmkit_types::{CostsResult, DAY_SECS, UsageBucket, UsageCompletionsResult};
use serde::Serialize;

/// The default drift threshold: 2%. Tokens should agree exactly and costs to rounding, so
/// anything beyond a couple of percent is a price list that is out of date, a discount or
/// surcharge llmkit does not model, or traffic it did not see.
pub const DEFAULT_THRESHOLD: f64 = 0.02;
/// Differences in USD at most this small are float noise, not drift.
const USD_EPSILON: f64 = 1e-9;

/// How strict the comparison is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconcileOptions {
    /// The largest relative difference, `(org - ledger) / ledger`, that still matches.
    pub threshold: f64,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// The comparison: one row per day and model seen on either side, and the findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    pub threshold: f64,
    pub rows: Vec<DayModel>,
    pub findings: Vec<Finding>,
}

impl Reconciliation {
    /// True when the two sides agree everywhere.
    pub fn matches(&self) -> bool {
        self.findings.is_empty()
    }
}

/// One UTC day and model, as each side counts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayModel {
    /// `YYYY-MM-DD`, UTC (the organisation's buckets are UTC days).
    pub day: String,
    /// The model, without a dated snapshot suffix (`gpt-4o-mini-2024-07-18` is
    /// `gpt-4o-mini`), so that an alias and its snapshot meet.
    pub model: String,
    pub ledger: Side,
    pub org: Side,
    /// `(org - ledger) / ledger` of the cost, when both sides have a cost to compare.
    pub cost_drift: Option<f64>,
    pub status: Status,
}

/// What one side counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Side {
    pub requests: u64,
    /// Every input token, cached ones included.
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Ledger: requests whose model had no known price (not in `cost_usd`). Org: always 0.
    pub unpriced: u64,
    /// Org: the completions usage report has a row for this day and model (embeddings, for
    /// one, appear only in the costs). Ledger: always true when there are requests.
    pub has_usage: bool,
}

/// How a day and model came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Drift,
    /// The organisation billed it, the ledger has no row for it.
    NotInLedger,
    /// The ledger has it, the organisation reported nothing.
    NotReported,
    /// The ledger could not price it, so its cost cannot be compared.
    Unpriced,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Drift => "drift",
            Status::NotInLedger => "not in ledger",
            Status::NotReported => "not reported",
            Status::Unpriced => "unpriced",
        }
    }
}

/// One disagreement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The costs differ by more than the threshold (`drift` is `None` when the ledger's
    /// cost is 0).
    CostDrift {
        day: String,
        model: String,
        ledger_usd: f64,
        org_usd: f64,
        drift: Option<f64>,
    },
    /// Input or output tokens differ by more than the threshold.
    TokenDrift {
        day: String,
        model: String,
        /// `input` or `output`.
        tokens: &'static str,
        ledger: u64,
        org: u64,
        drift: Option<f64>,
    },
    /// A model the price list has no price for: the ledger cannot cost it.
    Unpriced { model: String, days: Vec<String> },
    /// Spend the ledger never saw: the organisation billed a day and model with no ledger row.
    NotInLedger {
        day: String,
        model: String,
        org_usd: f64,
        input_tokens: u64,
        output_tokens: u64,
    },
    /// Ledger rows the organisation never reported.
    NotReported {
        day: String,
        model: String,
        ledger_usd: f64,
        requests: u64,
    },
}

impl Finding {
    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            Finding::CostDrift {
                day,
                model,
                ledger_usd,
                org_usd,
                drift,
            } => format!(
                "cost drift: {day} {model}: the organisation billed ${org_usd:.8}, the ledger \
                 recorded ${ledger_usd:.8} ({})",
                percent(*drift)
            ),
            Finding::TokenDrift {
                day,
                model,
                tokens,
                ledger,
                org,
                drift,
            } => format!(
                "token drift: {day} {model}: the organisation counted {org} {tokens} tokens, \
                 the ledger {ledger} ({})",
                percent(*drift)
            ),
            Finding::Unpriced { model, days } => format!(
                "unpriced model: {model} (on {}) is not in the price list, so the ledger \
                 cannot cost it",
                days.join(", ")
            ),
            Finding::NotInLedger {
                day,
                model,
                org_usd,
                input_tokens,
                output_tokens,
            } => format!(
                "not in ledger: {day} {model}: the organisation billed ${org_usd:.8} \
                 ({input_tokens} input, {output_tokens} output tokens) that llmkit never sent"
            ),
            Finding::NotReported {
                day,
                model,
                ledger_usd,
                requests,
            } => format!(
                "not reported: {day} {model}: the ledger has {requests} requests \
                 (${ledger_usd:.8}) the organisation did not report"
            ),
        }
    }
}

/// A drift as a signed percentage, `+5.00%`; `new` when there was nothing to compare with.
pub fn percent(drift: Option<f64>) -> String {
    match drift {
        Some(d) => format!("{:+.2}%", d * 100.0),
        None => "new".into(),
    }
}

/// Compares `ledger` with the organisation's `usage` and `costs`, day by model.
///
/// Only ledger rows the organisation could have billed count: successful (2xx) requests
/// sent over HTTP that were not answered from the cache. `catalog` says which models have a
/// price.
pub fn reconcile(
    ledger: &[LedgerRow],
    usage: &[UsageBucket<UsageCompletionsResult>],
    costs: &[UsageBucket<CostsResult>],
    catalog: &ModelCatalog,
    opts: &ReconcileOptions,
) -> Reconciliation {
    let mut cells: BTreeMap<(i64, String), (Side, Side)> = BTreeMap::new();
    for row in ledger.iter().filter(|r| billable(r)) {
        let day = (row.ts.floor() as i64).div_euclid(DAY_SECS);
        let side = &mut cells.entry((day, model_key(&row.model))).or_default().0;
        side.requests += 1;
        side.input_tokens += row.prompt_tokens;
        side.cached_tokens += row.cached_tokens;
        side.output_tokens += row.completion_tokens;
        side.cost_usd += row.cost_usd;
        side.unpriced += u64::from(row.cost_unknown);
        side.has_usage = true;
    }
    for bucket in usage {
        let day = bucket.start_time.div_euclid(DAY_SECS);
        for r in &bucket.results {
            let model = model_key(r.model.as_deref().unwrap_or("(all models)"));
            let side = &mut cells.entry((day, model)).or_default().1;
            side.requests += r.num_model_requests;
            side.input_tokens += r.input_tokens;
            side.cached_tokens += r.input_cached_tokens;
            side.output_tokens += r.output_tokens;
            side.has_usage = true;
        }
    }
    for bucket in costs {
        let day = bucket.start_time.div_euclid(DAY_SECS);
        for r in &bucket.results {
            let model = model_key(r.line_item_model().unwrap_or("(all line items)"));
            cells.entry((day, model)).or_default().1.cost_usd += r.amount.value;
        }
    }

    let mut rows = Vec::new();
    let mut findings = Vec::new();
    let mut unpriced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((day, model), (ledger, org)) in cells {
        let day = utc_day(day * DAY_SECS);
        // A model the usage report or the ledger names must have a price; a costs line item
        // may be a tool or a storage charge rather than a model, so it is not checked.
        let names_model = ledger.requests > 0 || org.has_usage;
        if names_model && (ledger.unpriced > 0 || catalog.price(&model).is_none()) {
            unpriced
                .entry(model.clone())
                .or_default()
                .insert(day.clone());
        }
        let (status, cost_drift, mut found) = compare(&day, &model, &ledger, &org, opts);
        findings.append(&mut found);
        rows.push(DayModel {
            day,
            model,
            ledger,
            org,
            cost_drift,
            status,
        });
    }
    findings.extend(unpriced.into_iter().map(|(model, days)| Finding::Unpriced {
        model,
        days: days.into_iter().collect(),
    }));
    Reconciliation {
        threshold: opts.threshold,
        rows,
        findings,
    }
}

/// One day and model: its status, cost drift and findings.
fn compare(
    day: &str,
    model: &str,
    ledger: &Side,
    org: &Side,
    opts: &ReconcileOptions,
) -> (Status, Option<f64>, Vec<Finding>) {
    let org_seen = org.has_usage || org.cost_usd.abs() > USD_EPSILON;
    if ledger.requests == 0 {
        if !org_seen || (org.input_tokens + org.output_tokens == 0 && !org_billed(org)) {
            return (Status::Ok, None, Vec::new());
        }
        let found = Finding::NotInLedger {
            day: day.into(),
            model: model.into(),
            org_usd: org.cost_usd,
            input_tokens: org.input_tokens,
            output_tokens: org.output_tokens,
        };
        return (Status::NotInLedger, None, vec![found]);
    }
    if !org_seen {
        if ledger.input_tokens + ledger.output_tokens == 0 && ledger.cost_usd <= USD_EPSILON {
            return (Status::Ok, None, Vec::new());
        }
        let found = Finding::NotReported {
            day: day.into(),
            model: model.into(),
            ledger_usd: ledger.cost_usd,
            requests: ledger.requests,
        };
        return (Status::NotReported, None, vec![found]);
    }
    let mut found = Vec::new();
    if org.has_usage {
        for (tokens, l, o) in [
            ("input", ledger.input_tokens, org.input_tokens),
            ("output", ledger.output_tokens, org.output_tokens),
        ] {
            let drift = relative(l as f64, o as f64);
            if beyond(l as f64, o as f64, drift, opts.threshold) {
                found.push(Finding::TokenDrift {
                    day: day.into(),
                    model: model.into(),
                    tokens,
                    ledger: l,
                    org: o,
                    drift,
                });
            }
        }
    }
    if ledger.unpriced > 0 {
        let status = if found.is_empty() {
            Status::Unpriced
        } else {
            Status::Drift
        };
        return (status, None, found);
    }
    let drift = relative(ledger.cost_usd, org.cost_usd);
    if beyond(ledger.cost_usd, org.cost_usd, drift, opts.threshold) {
        found.push(Finding::CostDrift {
            day: day.into(),
            model: model.into(),
            ledger_usd: ledger.cost_usd,
            org_usd: org.cost_usd,
            drift,
        });
    }
    let status = if found.is_empty() {
        Status::Ok
    } else {
        Status::Drift
    };
    (status, drift, found)
}

fn org_billed(org: &Side) -> bool {
    org.cost_usd.abs() > USD_EPSILON
}

/// `(org - ledger) / ledger`, or `None` when the ledger has nothing to divide by.
fn relative(ledger: f64, org: f64) -> Option<f64> {
    (ledger.abs() > USD_EPSILON).then(|| (org - ledger) / ledger)
}

fn beyond(ledger: f64, org: f64, drift: Option<f64>, threshold: f64) -> bool {
    if (org - ledger).abs() <= USD_EPSILON {
        return false;
    }
    drift.is_none_or(|d| d.abs() > threshold)
}

/// Rows the organisation bills: answered (2xx) by an HTTP backend, not from the cache.
fn billable(row: &LedgerRow) -> bool {
    row.backend == "http" && (200..300).contains(&row.status) && !row.cache_hit
}

/// The model without a trailing dated snapshot (`-2024-07-18`), so that the alias the
/// ledger recorded and the snapshot the organisation reports meet.
pub fn model_key(model: &str) -> String {
    let model = model.trim();
    let bytes = model.as_bytes();
    if bytes.len() > 11 {
        let tail = &bytes[bytes.len() - 11..];
        let dated = tail[0] == b'-'
            && tail[5] == b'-'
            && tail[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|&i| tail[i].is_ascii_digit());
        if dated {
            return model[..model.len() - 11].to_string();
        }
    }
    model.to_string()
}

/// `YYYY-MM-DD` of a unix time, in UTC.
pub fn utc_day(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY_SECS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix seconds of `YYYY-MM-DD` at 00:00 UTC; `None` unless it is a real calendar date.
pub fn parse_utc_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // A day past the month's end comes back as another date.
    (civil_from_days(days) == (y, m, d)).then_some(days * DAY_SECS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_types::CostAmount;

    const DAY1: i64 = 19_700 * DAY_SECS;

    fn ledger(ts: i64, model: &str, input: u64, output: u64, cost: f64) -> LedgerRow {
        LedgerRow {
            ts: ts as f64 + 0.5,
            backend: "http".into(),
            model: model.into(),
            command: "ask".into(),
            prompt_tokens: input,
            completion_tokens: output,
            cost_usd: cost,
            status: 200,
            ..LedgerRow::default()
        }
    }

    fn usage(day: i64, rows: &[(&str, u64, u64)]) -> UsageBucket<UsageCompletionsResult> {
        UsageBucket {
            object: "bucket".into(),
            start_time: day,
            end_time: day + DAY_SECS,
            results: rows
                .iter()
                .map(|(m, i, o)| UsageCompletionsResult {
                    model: Some((*m).into()),
                    input_tokens: *i,
                    output_tokens: *o,
                    num_model_requests: 1,
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn costs(day: i64, rows: &[(&str, f64)]) -> UsageBucket<CostsResult> {
        UsageBucket {
            object: "bucket".into(),
            start_time: day,
            end_time: day + DAY_SECS,
            results: rows
                .iter()
                .map(|(item, v)| CostsResult {
                    line_item: Some((*item).into()),
                    amount: CostAmount {
                        value: *v,
                        currency: "usd".into(),
                    },
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn run(
        l: &[LedgerRow],
        u: &[UsageBucket<UsageCompletionsResult>],
        c: &[UsageBucket<CostsResult>],
    ) -> Reconciliation {
        reconcile(
            l,
            u,
            c,
            &ModelCatalog::builtin(),
            &ReconcileOptions::default(),
        )
    }

    #[test]
    fn matching_sides_have_no_findings_and_snapshots_meet_their_alias() {
        let l = [
            ledger(DAY1 + 10, "gpt-4o-mini", 100, 50, 0.000_045),
            ledger(DAY1 + 20, "gpt-4o-mini", 100, 50, 0.000_045),
        ];
        let u = [usage(DAY1, &[("gpt-4o-mini-2024-07-18", 200, 100)])];
        let c = [costs(
            DAY1,
            &[
                ("gpt-4o-mini-2024-07-18, input", 0.000_030),
                ("gpt-4o-mini-2024-07-18, output", 0.000_060),
            ],
        )];
        let r = run(&l, &u, &c);
        assert!(r.matches(), "{:#?}", r.findings);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].model, "gpt-4o-mini");
        assert_eq!(r.rows[0].status, Status::Ok);
        assert_eq!(r.rows[0].day, utc_day(DAY1));
        assert!(r.rows[0].cost_drift.unwrap().abs() < 1e-9);
    }

    #[test]
    fn a_cost_drift_over_the_threshold_is_found_and_one_under_it_is_not() {
        let l = [ledger(DAY1, "gpt-4o-mini", 100, 50, 0.001)];
        let u = [usage(DAY1, &[("gpt-4o-mini", 100, 50)])];
        let drifted = run(&l, &u, &[costs(DAY1, &[("gpt-4o-mini, input", 0.00105)])]);
        assert_eq!(drifted.findings.len(), 1, "{:#?}", drifted.findings);
        let Finding::CostDrift { drift, .. } = &drifted.findings[0] else {
            panic!("{:?}", drifted.findings);
        };
        assert!((drift.unwrap() - 0.05).abs() < 1e-9);
        assert_eq!(drifted.rows[0].status, Status::Drift);
        assert!(drifted.findings[0].describe().contains("+5.00%"));
        let close = run(&l, &u, &[costs(DAY1, &[("gpt-4o-mini, input", 0.001015)])]);
        assert!(close.matches(), "{:#?}", close.findings);
        // A stricter threshold catches it.
        let strict = reconcile(
            &l,
            &u,
            &[costs(DAY1, &[("gpt-4o-mini, input", 0.001015)])],
            &ModelCatalog::builtin(),
            &ReconcileOptions { threshold: 0.01 },
        );
        assert_eq!(strict.findings.len(), 1);
    }

    #[test]
    fn token_drift_is_found_where_the_usage_report_has_the_model() {
        let l = [ledger(DAY1, "gpt-4o", 100, 50, 0.00075)];
        let u = [usage(DAY1, &[("gpt-4o", 130, 50)])];
        let c = [costs(DAY1, &[("gpt-4o, input", 0.00075)])];
        let r = run(&l, &u, &c);
        assert!(
            matches!(
                &r.findings[..],
                [Finding::TokenDrift {
                    tokens: "input",
                    ledger: 100,
                    org: 130,
                    ..
                }]
            ),
            "{:#?}",
            r.findings
        );
        // Embeddings are billed but not in the completions usage: only costs compare.
        let l = [ledger(DAY1, "text-embedding-3-small", 500, 0, 0.00001)];
        let c = [costs(DAY1, &[("text-embedding-3-small, input", 0.00001)])];
        assert!(run(&l, &[], &c).matches());
    }

    #[test]
    fn unknown_models_unseen_spend_and_unreported_rows_are_named() {
        let l = [
            ledger(DAY1, "gpt-4o-mini", 100, 50, 0.000045),
            ledger(DAY1 + DAY_SECS, "gpt-4o", 10, 5, 0.000075),
        ];
        let u = [usage(
            DAY1,
            &[("gpt-4o-mini", 100, 50), ("gpt-9-preview", 1000, 500)],
        )];
        let c = [costs(
            DAY1,
            &[
                ("gpt-4o-mini, input", 0.000015),
                ("gpt-4o-mini, output", 0.00003),
                ("gpt-9-preview, input", 0.001),
                ("gpt-9-preview, output", 0.002),
                ("web search tool calls", 0.01),
            ],
        )];
        let r = run(&l, &u, &c);
        let kinds: Vec<String> = r
            .findings
            .iter()
            .map(|f| f.describe().split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "not in ledger",
                "not in ledger",
                "not reported",
                "unpriced model"
            ],
            "{:#?}",
            r.findings
        );
        assert!(
            matches!(&r.findings[3], Finding::Unpriced { model, .. } if model == "gpt-9-preview")
        );
        let web = r
            .rows
            .iter()
            .find(|d| d.model == "web search tool calls")
            .unwrap();
        assert_eq!(web.status, Status::NotInLedger);
    }

    #[test]
    fn rows_the_org_cannot_bill_are_left_out_and_unpriced_ledger_rows_are_flagged() {
        let mut hit = ledger(DAY1, "gpt-4o-mini", 0, 0, 0.0);
        hit.cache_hit = true;
        let mut local = ledger(DAY1, "smollm2", 10, 10, 0.0);
        local.backend = "local".into();
        let mut failed = ledger(DAY1, "gpt-4o-mini", 10, 0, 0.0);
        failed.status = 429;
        assert!(run(&[hit, local, failed], &[], &[]).rows.is_empty());

        let mut unpriced = ledger(DAY1, "gpt-5.1-mini", 100, 50, 0.0);
        unpriced.cost_unknown = true;
        let u = [usage(DAY1, &[("gpt-5.1-mini", 100, 50)])];
        let c = [costs(DAY1, &[("gpt-5.1-mini, input", 0.0002)])];
        let r = run(&[unpriced], &u, &c);
        assert_eq!(r.rows[0].status, Status::Unpriced);
        assert!(
            matches!(&r.findings[..], [Finding::Unpriced { model, .. }] if model == "gpt-5.1-mini"),
            "{:#?}",
            r.findings
        );
    }

    #[test]
    fn dates_convert_both_ways_and_snapshots_are_stripped() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(parse_utc_day("2024-02-29"), Some(1_709_164_800));
        assert_eq!(utc_day(1_709_164_800 + 86_399), "2024-02-29");
        assert_eq!(parse_utc_day("2023-02-29"), None);
        assert_eq!(parse_utc_day("2024-13-01"), None);
        assert_eq!(parse_utc_day("yesterday"), None);
        assert_eq!(parse_utc_day("1969-12-31"), Some(-86_400));
        assert_eq!(model_key("gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
        assert_eq!(model_key("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(model_key("o1-2024-12-17"), "o1");
        assert_eq!(
            model_key("ft:gpt-4o-mini:org:x:1"),
            "ft:gpt-4o-mini:org:x:1"
        );
    }
}
