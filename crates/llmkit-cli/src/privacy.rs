//! Builds the redaction step of the request pipeline from `--redact`, `--redact-kinds` and the
//! config (the detection itself lives in `llmkit-tasks`).

use std::sync::Arc;

use anyhow::Result;
use llmkit_client::Redact;
use llmkit_tasks::{Kind, RedactConfig, RedactError, Redactor};

use crate::app::Ctx;
use crate::error::CliError;

/// The redactor the flags and config ask for, or `None` when redaction is off.
///
/// `--redact-kinds` implies `--redact` and replaces the config's `redact_kinds`; the config's
/// `redact = true` turns redaction on by default; `redact_deny` and `redact_patterns` apply
/// whenever redaction is on.
pub fn redactor(ctx: &Ctx) -> Result<Option<Arc<dyn Redact>>> {
    let file = &ctx.settings.redact;
    let flag_kinds = &ctx.global.redact_kinds;
    if !ctx.global.redact && flag_kinds.is_empty() && !file.enabled {
        return Ok(None);
    }
    let names: Option<&[String]> = if flag_kinds.is_empty() {
        file.kinds.as_deref()
    } else {
        Some(flag_kinds)
    };
    let kinds = names
        .map(|ns| {
            ns.iter()
                .map(|n| n.parse::<Kind>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(cli_error)?;
    let cfg = RedactConfig {
        kinds,
        deny_list: file.deny.clone(),
        patterns: file
            .patterns
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let r = Redactor::new(cfg).map_err(cli_error)?;
    Ok(Some(Arc::new(r)))
}

/// A redaction error as a usage error with its hint on its own line.
fn cli_error(e: RedactError) -> CliError {
    match e {
        RedactError::UnknownKind { name, valid } => CliError::usage(
            format!("unknown redaction kind `{name}`"),
            format!("valid kinds: {valid}"),
        ),
        RedactError::InvalidPattern { label, source } => CliError::config(
            format!("invalid pattern `{label}` in `redact_patterns`: {source}"),
            "fix the regex in the config file (Rust `regex` syntax)",
        ),
        other => CliError::config(
            other.to_string(),
            "shorten `redact_deny` in the config file",
        ),
    }
}
