//! `llmkit config show|set|path`: the resolved settings (keys masked) and edits to the file.

use anyhow::Result;
use llmkit_client::ExposeSecret;
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{ConfigAction, ConfigArgs};
use crate::config_file;
use crate::output::{self, mask_key};

pub(crate) fn run(ctx: &Ctx, args: ConfigArgs) -> Result<()> {
    let s = &ctx.settings;
    match args.action {
        ConfigAction::Path => output::line(&s.paths.config_file.display().to_string()),
        ConfigAction::Set { key, value } => {
            config_file::set_value(
                &s.paths.config_file,
                s.profile_flag.as_deref(),
                &key,
                &value,
            )?;
            let shown = if key == "api_key" {
                mask_key(&value)
            } else {
                value
            };
            let place = s
                .profile_flag
                .as_deref()
                .filter(|_| key != "default_profile")
                .map_or(String::new(), |p| format!(" [profiles.{p}]"));
            output::line(&format!(
                "set {key} = {shown} in {}{place}",
                s.paths.config_file.display()
            ))
        }
        ConfigAction::Show { json } => {
            let key = s
                .client
                .api_key
                .as_ref()
                .map(|k| (mask_key(k.value.expose_secret()), k.source));
            let (model, model_source) = match &s.models.chat {
                Some(m) => (m.value.clone(), m.source),
                None => {
                    let (choice, _) = s.choose_model(None);
                    let name = match choice {
                        crate::settings::ModelChoice::Remote(m) => m,
                        crate::settings::ModelChoice::Local(m) => format!("local:{m}"),
                    };
                    (name, "default")
                }
            };
            let value = json!({
                "config_file": s.paths.config_file,
                "config_file_exists": s.paths.config_file.exists(),
                "profile": s.profile,
                "api_key": key.as_ref().map(|k| &k.0),
                "api_key_source": key.as_ref().map(|k| k.1),
                "base_url": s.client.base_url.value,
                "base_url_source": s.client.base_url.source,
                "model": model,
                "model_source": model_source,
                "organization": s.client.organization,
                "project": s.client.project,
                "azure_api_version": s.client.azure.as_ref().map(|a| &a.api_version),
                "azure_deployment": s.client.azure.as_ref().and_then(|a| a.deployment.as_ref()),
                "max_retries": s.client.retry.max_retries,
                "timeout_secs": s.client.timeouts.request.as_secs_f64(),
                "connect_timeout_secs": s.client.timeouts.connect.as_secs_f64(),
                "stall_timeout_secs": s.client.timeouts.stall.as_secs_f64(),
                "models_dir": s.local.models_dir,
                "kv_cache_mb": s.local.kv_cache_mb,
            });
            if json {
                return output::json(&value);
            }
            if let serde_json::Value::Object(map) = value {
                for (k, v) in map {
                    let v = match v {
                        serde_json::Value::Null => "(not set)".to_string(),
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    output::line(&format!("{k:<22} {v}"))?;
                }
            }
            Ok(())
        }
    }
}
