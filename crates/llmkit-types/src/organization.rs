//! The organisation usage and cost reports (`GET /organization/costs`,
//! `GET /organization/usage/completions`): their query and their paginated bucket pages.
//!
//! Both endpoints answer a `page` of time buckets, each holding result rows; a page with
//! `has_more` names the next one in `next_page`, which goes back as the `page` query
//! parameter. Decoding is lenient like the rest of the crate: every field defaults, and a
//! result row of another kind decodes with its counts at zero.

use serde::{Deserialize, Serialize};

use crate::common::null_as_default;

/// Seconds in a `1d` bucket.
pub const DAY_SECS: i64 = 86_400;

/// One page of a usage or costs report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct UsagePage<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<UsageBucket<T>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_more: bool,
    /// The cursor of the next page (`page=`), when `has_more`.
    #[serde(default)]
    pub next_page: Option<String>,
}

impl<T> Default for UsagePage<T> {
    fn default() -> Self {
        Self {
            object: "page".into(),
            data: Vec::new(),
            has_more: false,
            next_page: None,
        }
    }
}

/// One time bucket: `[start_time, end_time)` in unix seconds, and its result rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct UsageBucket<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub start_time: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub end_time: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<T>,
}

/// A row of `/organization/costs` (`organization.costs.result`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostsResult {
    #[serde(default, deserialize_with = "null_as_default")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub amount: CostAmount,
    /// With `group_by=line_item`: what was billed, such as `gpt-4o-mini-2024-07-18, input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_unit: Option<String>,
}

impl CostsResult {
    /// The model a line item bills, the part before its first `, ` (`gpt-4o, input` gives
    /// `gpt-4o`); the whole item when it names no model that way (`web search tool calls`).
    pub fn line_item_model(&self) -> Option<&str> {
        let item = self.line_item.as_deref()?.trim();
        if item.is_empty() {
            return None;
        }
        Some(
            item.split_once(", ")
                .map_or(item, |(model, _)| model.trim()),
        )
    }
}

/// An amount of money: `value` in `currency` (`usd`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostAmount {
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub currency: String,
}

/// A row of `/organization/usage/completions` (`organization.usage.completions.result`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageCompletionsResult {
    #[serde(default, deserialize_with = "null_as_default")]
    pub object: String,
    /// Every input token, cached ones included.
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_cached_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub num_model_requests: u64,
    /// With `group_by=model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

/// The query of either report. `group_by` and `bucket_width` take the spec's values
/// (`model`, `line_item`, ...; `1d`); the page cursor is the previous page's `next_page`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageQuery {
    /// Inclusive start, unix seconds.
    pub start_time: i64,
    /// Exclusive end, unix seconds.
    pub end_time: Option<i64>,
    pub bucket_width: Option<String>,
    pub group_by: Vec<String>,
    /// Buckets per page.
    pub limit: Option<u32>,
    pub page: Option<String>,
}

impl UsageQuery {
    /// Daily buckets over `[start_time, end_time)`, grouped by `group_by`.
    pub fn daily(start_time: i64, end_time: i64, group_by: &str) -> Self {
        Self {
            start_time,
            end_time: Some(end_time),
            bucket_width: Some("1d".into()),
            group_by: vec![group_by.into()],
            limit: None,
            page: None,
        }
    }

    /// The query's `(name, value)` pairs in order, unencoded; an array parameter
    /// (`group_by`) repeats its name once per value (OpenAPI's default form style).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("start_time", self.start_time.to_string())];
        if let Some(end) = self.end_time {
            q.push(("end_time", end.to_string()));
        }
        if let Some(width) = &self.bucket_width {
            q.push(("bucket_width", width.clone()));
        }
        q.extend(self.group_by.iter().map(|g| ("group_by", g.clone())));
        if let Some(limit) = self.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(page) = &self.page {
            q.push(("page", page.clone()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_decode_leniently() {
        let page: UsagePage<UsageCompletionsResult> = serde_json::from_str(
            r#"{"object":"page","has_more":true,"next_page":"p2","data":[
                {"object":"bucket","start_time":0,"end_time":86400,"results":[
                    {"object":"organization.usage.completions.result","input_tokens":10,
                     "output_tokens":4,"num_model_requests":1,"model":"gpt-4o-mini",
                     "input_cached_tokens":null,"future_field":1}]},
                {"object":"bucket","start_time":86400,"end_time":172800,"results":null}]}"#,
        )
        .unwrap();
        assert!(page.has_more);
        assert_eq!(page.next_page.as_deref(), Some("p2"));
        let row = &page.data[0].results[0];
        assert_eq!((row.input_tokens, row.input_cached_tokens), (10, 0));
        assert_eq!(row.model.as_deref(), Some("gpt-4o-mini"));
        assert!(page.data[1].results.is_empty());
        let empty: UsagePage<CostsResult> = serde_json::from_str("{}").unwrap();
        assert!(!empty.has_more && empty.data.is_empty());
    }

    #[test]
    fn line_items_name_their_model() {
        let item = |s: &str| CostsResult {
            line_item: Some(s.into()),
            ..CostsResult::default()
        };
        assert_eq!(
            item("gpt-4o-mini-2024-07-18, cached input").line_item_model(),
            Some("gpt-4o-mini-2024-07-18")
        );
        assert_eq!(
            item("web search tool calls").line_item_model(),
            Some("web search tool calls")
        );
        assert_eq!(item(" ").line_item_model(), None);
        assert_eq!(CostsResult::default().line_item_model(), None);
    }

    #[test]
    fn queries_list_their_parameters_in_order() {
        let mut q = UsageQuery::daily(100, 200, "model");
        q.limit = Some(31);
        q.page = Some("next".into());
        let names: Vec<&str> = q.pairs().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "start_time",
                "end_time",
                "bucket_width",
                "group_by",
                "limit",
                "page"
            ]
        );
        assert_eq!(q.pairs()[2].1, "1d");
    }
}
