//! Builds the redaction step of the request pipeline from the resolved redaction settings
//! (the detection itself lives in `llmkit-tasks`).

use std::sync::Arc;

use llmkit_client::Redact;
use llmkit_tasks::{Kind, RedactConfig, RedactError, Redactor};

use crate::settings::RedactSettings;

/// The redactor the settings ask for, or `None` when redaction is off.
///
/// `--redact-kinds` implies `--redact` and replaces the config's `redact_kinds`; the config's
/// `redact = true` turns redaction on by default; `redact_deny` and `redact_patterns` apply
/// whenever redaction is on (all merged in [`RedactSettings`]).
pub(crate) fn redactor(settings: &RedactSettings) -> Result<Option<Arc<dyn Redact>>, RedactError> {
    if !settings.enabled {
        return Ok(None);
    }
    let kinds = settings
        .kinds
        .as_ref()
        .map(|ns| {
            ns.iter()
                .map(|n| n.parse::<Kind>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let cfg = RedactConfig {
        kinds,
        deny_list: settings.deny.clone(),
        patterns: settings
            .patterns
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    Ok(Some(Arc::new(Redactor::new(cfg)?)))
}
