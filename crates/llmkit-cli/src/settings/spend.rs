//! The groups that shape the request pipeline: the response cache, the spending limits and
//! redaction.

use std::collections::BTreeMap;

use llmkit_accounting::{CachePolicy, DEFAULT_CACHE_TTL_SECS};
use llmkit_store::Budgets;

use super::Layered;
use crate::cli::{CacheMode, GlobalArgs};
use crate::config_file;
use crate::error::CliError;

/// The response cache: `--no-cache`, `--cache auto|always` and the config's `cache_ttl`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheSettings {
    pub policy: CachePolicy,
    /// Seconds a cached response stays valid.
    pub ttl_secs: f64,
}

impl CacheSettings {
    pub(super) fn resolve(args: &GlobalArgs, layer: &Layered<'_>) -> Result<Self, CliError> {
        let policy = if args.no_cache {
            CachePolicy::Off
        } else {
            match args.cache.unwrap_or_default() {
                CacheMode::Auto => CachePolicy::Auto,
                CacheMode::Always => CachePolicy::Always,
            }
        };
        let ttl_secs = match layer.get(|p| p.cache_ttl.clone()) {
            None => DEFAULT_CACHE_TTL_SECS,
            Some(t) => config_file::parse_ttl(&t).ok_or_else(|| {
                CliError::config(
                    format!("`cache_ttl` must be a duration such as 7d, 12h or 3600, got `{t}`"),
                    "fix `cache_ttl` in the config file",
                )
            })?,
        };
        Ok(Self { policy, ttl_secs })
    }
}

/// Spending limits: the config's daily and monthly budgets and `--max-cost`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BudgetSettings {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// Most this invocation may spend (`--max-cost`).
    pub max_cost_usd: Option<f64>,
    /// `--allow-unpriced`: send to models without a known price despite the limits.
    pub allow_unpriced: bool,
}

impl BudgetSettings {
    pub(super) fn resolve(args: &GlobalArgs, layer: &Layered<'_>) -> Result<Self, CliError> {
        let budget = |v: Option<f64>, name: &str| -> Result<Option<f64>, CliError> {
            match v {
                Some(x) if !(x.is_finite() && x >= 0.0) => Err(CliError::config(
                    format!("`{name}` must be an amount in USD ≥ 0, got {x}"),
                    format!("fix `{name}` in the config file"),
                )),
                other => Ok(other),
            }
        };
        Ok(Self {
            daily_usd: budget(layer.get(|p| p.budget_daily_usd), "budget_daily_usd")?,
            monthly_usd: budget(layer.get(|p| p.budget_monthly_usd), "budget_monthly_usd")?,
            max_cost_usd: args.max_cost,
            allow_unpriced: args.allow_unpriced,
        })
    }

    /// The stored (daily, monthly) budgets.
    pub(crate) fn stored(&self) -> Budgets {
        Budgets {
            daily_usd: self.daily_usd,
            monthly_usd: self.monthly_usd,
        }
    }
}

/// Redaction, from the flags over the config file (`redact`, `redact_kinds`, `redact_deny`,
/// `redact_patterns`; a profile's values replace the top level's).
#[derive(Debug, Clone, Default)]
pub(crate) struct RedactSettings {
    /// `--redact`, any `--redact-kinds`, or the config's `redact = true`.
    pub enabled: bool,
    /// The kinds to redact: `--redact-kinds` replaces the config's list; `None`: all.
    pub kinds: Option<Vec<String>>,
    pub deny: Vec<String>,
    pub patterns: BTreeMap<String, String>,
    /// `--show-redactions`: counts by kind on stderr.
    pub show_counts: bool,
}

impl RedactSettings {
    pub(super) fn resolve(args: &GlobalArgs, layer: &Layered<'_>) -> Self {
        let from_file = layer.get(|p| p.redact).unwrap_or(false);
        let kinds = if args.redact_kinds.is_empty() {
            layer.get(|p| p.redact_kinds.clone())
        } else {
            Some(args.redact_kinds.clone())
        };
        Self {
            enabled: args.redact || !args.redact_kinds.is_empty() || from_file,
            kinds,
            deny: layer.get(|p| p.redact_deny.clone()).unwrap_or_default(),
            patterns: layer.get(|p| p.redact_patterns.clone()).unwrap_or_default(),
            show_counts: args.show_redactions,
        }
    }
}
