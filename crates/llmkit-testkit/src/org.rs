//! The organisation reports, `GET /v1/organization/usage/completions` and
//! `GET /v1/organization/costs`: daily buckets built from what the server served, priced with
//! a small price table, paginated with `limit`/`page`, and with the faults `OrgConfig` plants
//! (a cost drift, a model that was never served).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::config::OrgConfig;
use crate::errors::ApiError;
use crate::response::{Handled, Reply};
use crate::served::{Kind, ServedRow};

/// Seconds in a `1d` bucket.
const DAY: u64 = 86_400;

/// USD per million tokens: input, cached input, output. Longest prefix wins, as in llmkit's
/// price list, so dated snapshots find their model. These are the list prices llmkit's
/// built-in price list holds for the same models, so that matching traffic reconciles.
const PRICES: [(&str, f64, f64, f64); 9] = [
    ("gpt-4o-mini", 0.15, 0.075, 0.60),
    ("gpt-4o", 2.50, 1.25, 10.00),
    ("gpt-4.1", 2.00, 0.50, 8.00),
    ("gpt-4.1-mini", 0.40, 0.10, 1.60),
    ("gpt-4.1-nano", 0.10, 0.025, 0.40),
    ("gpt-5-mini", 0.25, 0.025, 2.00),
    ("gpt-3.5-turbo", 0.50, 0.50, 1.50),
    ("text-embedding-3-small", 0.02, 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.13, 0.0),
];
/// The price of a model the table does not hold (the planted extra model, or a model llmkit
/// sent with `--allow-unpriced`): the organisation always knows what it bills.
const OTHER_PRICE: (f64, f64, f64) = (1.00, 0.50, 4.00);
/// What the planted extra model used in the current day's bucket.
const EXTRA_USAGE: (u64, u64, u64, u64) = (1_000, 0, 500, 2);

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    Completions,
    Costs,
}

impl Report {
    fn groupings(self) -> &'static [&'static str] {
        match self {
            Report::Completions => &[
                "project_id",
                "user_id",
                "api_key_id",
                "model",
                "batch",
                "service_tier",
            ],
            Report::Costs => &["project_id", "line_item", "api_key_id"],
        }
    }

    /// The largest `limit` for daily buckets, and the default.
    fn limits(self) -> (usize, usize) {
        match self {
            Report::Completions => (31, 7),
            Report::Costs => (180, 7),
        }
    }
}

/// Answers one report over `served`, at unix time `now`.
pub(crate) fn handle(
    report: Report,
    query: Option<&str>,
    served: &[ServedRow],
    cfg: &OrgConfig,
    now: u64,
) -> Result<Handled, ApiError> {
    let q = Query::parse(report, query, now)?;
    let buckets = q.end.saturating_sub(q.start).div_ceil(DAY) as usize;
    let first = q.offset.min(buckets);
    let last = (first + q.limit).min(buckets);
    let data: Vec<Value> = (first..last)
        .map(|i| {
            let start = q.start + i as u64 * DAY;
            let end = start + DAY;
            let mut usage = day_usage(served, start, end, report);
            if let Some(extra) = &cfg.extra_model
                && (start..end).contains(&now)
            {
                let slot = usage.entry(extra.clone()).or_default();
                let (input, cached, output, requests) = EXTRA_USAGE;
                *slot = add(*slot, (input, cached, output, requests));
            }
            let results = match report {
                Report::Completions => completions_results(&usage, q.by_model),
                Report::Costs => cost_results(&usage, q.by_line_item, cfg.cost_drift),
            };
            json!({"object": "bucket", "start_time": start, "end_time": end, "results": results})
        })
        .collect();
    let has_more = last < buckets;
    let next_page = has_more.then(|| format!("page_{last}"));
    Ok(Handled::free(Reply::json(json!({
        "object": "page",
        "data": data,
        "has_more": has_more,
        "next_page": next_page,
    }))))
}

/// A report's query, checked as OpenAI checks it.
#[derive(Debug, PartialEq)]
struct Query {
    /// The first bucket's start: `start_time` rounded down to its UTC day.
    start: u64,
    end: u64,
    by_model: bool,
    by_line_item: bool,
    limit: usize,
    /// Index of the page's first bucket.
    offset: usize,
}

impl Query {
    fn parse(report: Report, query: Option<&str>, now: u64) -> Result<Self, ApiError> {
        let mut start = None;
        let mut end = None;
        let mut groups = Vec::new();
        let (max_limit, mut limit) = report.limits();
        let mut offset = 0;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name), decode(value));
            match name.trim_end_matches("[]") {
                "start_time" => start = Some(number(&value, "start_time")?),
                "end_time" => end = Some(number(&value, "end_time")?),
                "bucket_width" if value != "1d" => {
                    return Err(bad(
                        format!("llmkit-mock serves only bucket_width=1d, not `{value}`"),
                        "bucket_width",
                    ));
                }
                "group_by" => {
                    if !report.groupings().contains(&value.as_str()) {
                        return Err(bad(
                            format!("Invalid value for 'group_by': `{value}`"),
                            "group_by",
                        ));
                    }
                    groups.push(value);
                }
                "limit" => {
                    limit = usize::try_from(number(&value, "limit")?).unwrap_or(usize::MAX);
                    if limit == 0 || limit > max_limit {
                        return Err(bad(
                            format!("limit must be between 1 and {max_limit}, got {value}"),
                            "limit",
                        ));
                    }
                }
                "page" => {
                    offset = value
                        .strip_prefix("page_")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| bad(format!("invalid page cursor `{value}`"), "page"))?;
                }
                _ => {}
            }
        }
        let start = start.ok_or_else(|| ApiError::missing_param("start_time"))? / DAY * DAY;
        let end = end.unwrap_or(now);
        if end <= start {
            return Err(bad("end_time must be after start_time", "end_time"));
        }
        Ok(Self {
            start,
            end,
            by_model: groups.iter().any(|g| g == "model"),
            by_line_item: groups.iter().any(|g| g == "line_item"),
            limit,
            offset,
        })
    }
}

/// `(input, cached, output, requests)` per model of the rows in `[start, end)` that the
/// report covers (the completions usage leaves embeddings out; the costs bill them).
fn day_usage(
    served: &[ServedRow],
    start: u64,
    end: u64,
    report: Report,
) -> BTreeMap<String, (u64, u64, u64, u64)> {
    let mut usage: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for r in served.iter().filter(|r| (start..end).contains(&r.ts)) {
        if report == Report::Completions && r.kind != Kind::Completions {
            continue;
        }
        let slot = usage.entry(r.model.clone()).or_default();
        *slot = add(*slot, (r.input, r.cached, r.output, 1));
    }
    usage
}

fn add(a: (u64, u64, u64, u64), b: (u64, u64, u64, u64)) -> (u64, u64, u64, u64) {
    (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
}

fn completions_results(usage: &BTreeMap<String, (u64, u64, u64, u64)>, by_model: bool) -> Value {
    let row = |model: Option<&str>, (input, cached, output, requests): (u64, u64, u64, u64)| {
        json!({
            "object": "organization.usage.completions.result",
            "input_tokens": input,
            "input_cached_tokens": cached,
            "output_tokens": output,
            "input_audio_tokens": 0,
            "output_audio_tokens": 0,
            "num_model_requests": requests,
            "project_id": null,
            "user_id": null,
            "api_key_id": null,
            "model": model,
            "batch": null,
        })
    };
    if by_model {
        return usage.iter().map(|(m, u)| row(Some(m), *u)).collect();
    }
    if usage.is_empty() {
        return json!([]);
    }
    let total = usage.values().fold((0, 0, 0, 0), |a, b| add(a, *b));
    json!([row(None, total)])
}

fn cost_results(
    usage: &BTreeMap<String, (u64, u64, u64, u64)>,
    by_line_item: bool,
    drift: f64,
) -> Value {
    let mut items: Vec<(String, f64)> = Vec::new();
    for (model, (input, cached, output, _)) in usage {
        let (p_in, p_cached, p_out) = price(model);
        let cached = (*cached).min(*input);
        let parts = [
            ("input", (input - cached) as f64 * p_in),
            ("cached input", cached as f64 * p_cached),
            ("output", *output as f64 * p_out),
        ];
        for (what, micro_usd) in parts {
            if micro_usd > 0.0 {
                items.push((format!("{model}, {what}"), micro_usd / 1e6 * (1.0 + drift)));
            }
        }
    }
    let row = |line_item: Option<&str>, value: f64| {
        json!({
            "object": "organization.costs.result",
            "amount": {"value": value, "currency": "usd"},
            "line_item": line_item,
            "project_id": null,
        })
    };
    if by_line_item {
        return items.iter().map(|(item, v)| row(Some(item), *v)).collect();
    }
    if items.is_empty() {
        return json!([]);
    }
    json!([row(None, items.iter().map(|(_, v)| v).sum())])
}

/// Input, cached input and output USD per million tokens of `model`.
fn price(model: &str) -> (f64, f64, f64) {
    PRICES
        .iter()
        .filter(|(id, ..)| {
            model == *id
                || model
                    .strip_prefix(id)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|(id, ..)| id.len())
        .map_or(OTHER_PRICE, |(_, i, c, o)| (*i, *c, *o))
}

fn number(value: &str, param: &'static str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| bad(format!("{param} must be an integer, got `{value}`"), param))
}

fn bad(message: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).with_param(param)
}

/// Percent-decoding of a query name or value (`group_by%5B%5D`), `+` as a space.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: u64, model: &str, input: u64, output: u64) -> ServedRow {
        ServedRow {
            ts,
            kind: Kind::Completions,
            model: model.into(),
            input,
            cached: 0,
            output,
        }
    }

    fn body(h: Handled) -> Value {
        match h.reply.body {
            crate::response::ReplyBody::Json(v) => v,
            other => panic!("not JSON: {other:?}"),
        }
    }

    #[test]
    fn usage_is_bucketed_per_utc_day_and_grouped_by_model() {
        let served = [
            row(DAY + 5, "gpt-4o-mini", 10, 4),
            row(DAY + 9, "gpt-4o-mini", 6, 2),
            row(2 * DAY + 1, "gpt-4o", 3, 1),
        ];
        let q = format!(
            "start_time={}&end_time={}&group_by=model",
            DAY + 100,
            3 * DAY
        );
        let v = body(
            handle(
                Report::Completions,
                Some(&q),
                &served,
                &OrgConfig::default(),
                0,
            )
            .unwrap(),
        );
        assert_eq!(v["data"][0]["start_time"], DAY);
        assert_eq!(v["data"][0]["results"][0]["input_tokens"], 16);
        assert_eq!(v["data"][0]["results"][0]["num_model_requests"], 2);
        assert_eq!(v["data"][1]["results"][0]["model"], "gpt-4o");
        assert_eq!(v["has_more"], false);
    }

    #[test]
    fn costs_bill_line_items_with_the_planted_drift_and_extra_model() {
        let served = [row(10, "gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)];
        let cfg = OrgConfig {
            cost_drift: 0.05,
            extra_model: Some("gpt-9-preview".into()),
            ..OrgConfig::default()
        };
        let q = "start_time=0&end_time=86400&group_by%5B%5D=line_item";
        let v = body(handle(Report::Costs, Some(q), &served, &cfg, 20).unwrap());
        let items: Vec<(String, f64)> = v["data"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["line_item"].as_str().unwrap().to_string(),
                    r["amount"]["value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(items[0].0, "gpt-4o-mini-2024-07-18, input");
        assert!((items[0].1 - 0.15 * 1.05).abs() < 1e-9, "{items:?}");
        assert!((items[1].1 - 0.60 * 1.05).abs() < 1e-9, "{items:?}");
        assert!(items.iter().any(|(i, _)| i == "gpt-9-preview, output"));
    }

    #[test]
    fn pages_follow_limit_and_cursor_and_bad_queries_are_refused() {
        let q = |extra: &str| format!("start_time=0&end_time={}{extra}", 5 * DAY);
        let cfg = OrgConfig::default();
        let page =
            |extra: &str| body(handle(Report::Costs, Some(&q(extra)), &[], &cfg, 0).unwrap());
        let first = page("&limit=2");
        assert_eq!(first["data"].as_array().unwrap().len(), 2);
        assert_eq!(first["next_page"], "page_2");
        let last = page("&limit=2&page=page_4");
        assert_eq!(last["data"].as_array().unwrap().len(), 1);
        assert_eq!(last["has_more"], false);
        assert!(last["next_page"].is_null());
        for bad in [
            "end_time=5",
            "start_time=x",
            "start_time=0&bucket_width=1h",
            "start_time=0&group_by=model",
            "start_time=0&limit=181",
            "start_time=0&page=zzz",
            "start_time=86400&end_time=86400",
        ] {
            let err = handle(Report::Costs, Some(bad), &[], &cfg, DAY * 3).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(decode("group_by%5B%5D"), "group_by[]");
        assert_eq!(decode("100%"), "100%");
    }
}
