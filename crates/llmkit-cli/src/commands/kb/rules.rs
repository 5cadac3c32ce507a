//! `--rules FILE` for ask, qa and chat: reading the rule base, its system-prompt text, and
//! reporting the answer's violations on stderr and in `--json` (`rule_violations`).

use std::path::Path;

use anyhow::Result;
use llmkit_kb::{RuleBase, RuleViolation};

use crate::app::notice;
use crate::error::CliError;

/// Reads and parses a rule file, if one was given.
pub(crate) fn load(path: Option<&Path>) -> Result<Option<RuleBase>> {
    let Some(path) = path else { return Ok(None) };
    let text = crate::input::read_text_file(path)?;
    let rules = RuleBase::parse(&text, &path.display().to_string())
        .map_err(|e| CliError::usage(e.to_string(), e.hint().unwrap_or_default()))?;
    Ok(Some(rules))
}

/// Checks `answer`, prints each violation as a warning, and returns them.
pub(crate) fn check(rules: Option<&RuleBase>, answer: &str) -> Vec<RuleViolation> {
    let Some(r) = rules else { return Vec::new() };
    let found = r.check(answer);
    for v in &found {
        notice(&format!("warning: rule violation: {v}"));
    }
    found
}
