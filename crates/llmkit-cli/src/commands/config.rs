//! `llmkit config show|set|path`: the resolved settings (keys masked) and edits to the file.

use anyhow::Result;
use llmkit_client::ExposeSecret;
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{ConfigAction, ConfigArgs, GlobalArgs};
use crate::config_file;
use crate::output::{self, mask_key};

pub fn run(ctx: &Ctx, global: &GlobalArgs, args: ConfigArgs) -> Result<()> {
    let s = &ctx.settings;
    match args.action {
        ConfigAction::Path => output::line(&s.config_path.display().to_string()),
        ConfigAction::Set { key, value } => {
            config_file::set_value(&s.config_path, global.profile.as_deref(), &key, &value)?;
            let shown = if key == "api_key" {
                mask_key(&value)
            } else {
                value
            };
            let place = global
                .profile
                .as_deref()
                .filter(|_| key != "default_profile")
                .map_or(String::new(), |p| format!(" [profiles.{p}]"));
            output::line(&format!(
                "set {key} = {shown} in {}{place}",
                s.config_path.display()
            ))
        }
        ConfigAction::Show { json } => {
            let key = s
                .api_key
                .as_ref()
                .map(|k| (mask_key(k.value.expose_secret()), k.source));
            let (model, model_source) = match &s.model {
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
                "config_file": s.config_path,
                "config_file_exists": s.config_path.exists(),
                "profile": s.profile,
                "api_key": key.as_ref().map(|k| &k.0),
                "api_key_source": key.as_ref().map(|k| k.1),
                "base_url": s.base_url.value,
                "base_url_source": s.base_url.source,
                "model": model,
                "model_source": model_source,
                "organization": s.organization,
                "project": s.project,
                "azure_api_version": s.azure.as_ref().map(|a| &a.api_version),
                "azure_deployment": s.azure.as_ref().and_then(|a| a.deployment.as_ref()),
                "max_retries": s.retry.max_retries,
                "timeout_secs": s.timeouts.request.as_secs_f64(),
                "connect_timeout_secs": s.timeouts.connect.as_secs_f64(),
                "stall_timeout_secs": s.timeouts.stall.as_secs_f64(),
                "models_dir": s.models_dir,
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
