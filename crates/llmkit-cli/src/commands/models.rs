//! `llmkit models`: the server's model list, installed local models, and `models pull`.

use anyhow::Result;
use llmkit_local::{KNOWN_MODELS, ModelKind, ModelSource};
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{ModelsAction, ModelsArgs};
use crate::error::CliError;
use crate::output;

pub async fn run(ctx: &Ctx, args: ModelsArgs) -> Result<()> {
    match args.action {
        None => remote(ctx, args.json).await,
        Some(ModelsAction::List { local: false, json }) => remote(ctx, json || args.json).await,
        Some(ModelsAction::List { local: true, json }) => local(ctx, json || args.json),
        Some(ModelsAction::Pull { name }) => pull(ctx, &name).await,
    }
}

/// Lists the server's models; without a key (on OpenAI's URL) lists the local ones instead.
async fn remote(ctx: &Ctx, json: bool) -> Result<()> {
    if ctx.settings.api_key.is_none() && ctx.settings.is_openai() {
        crate::app::notice(
            "no API key set: listing local models (see `llmkit models list --local`)",
        );
        return local(ctx, json);
    }
    let client = ctx.http()?;
    let list = client.models().await?;
    if json {
        return output::json(&list.body);
    }
    let mut ids: Vec<&str> = list.body.data.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    for id in ids {
        output::line(id)?;
    }
    Ok(())
}

/// Shows the catalogue of local models: installed or not, size, and where they come from.
fn local(ctx: &Ctx, json: bool) -> Result<()> {
    let dir = &ctx.settings.models_dir;
    let mut rows = Vec::new();
    for m in KNOWN_MODELS {
        let path = dir.join(m.local_name);
        let size = disk_size(&path);
        rows.push((m, path, size));
    }
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(m, path, size)| {
                json!({
                    "name": format!("local:{}", m.name),
                    "kind": match m.kind { ModelKind::Chat => "chat", ModelKind::Embedding => "embedding" },
                    "installed": size.is_some(),
                    "path": path,
                    "size_bytes": size,
                    "context_window": m.context_window,
                    "description": m.description,
                })
            })
            .collect();
        return output::json(&json!({"models_dir": dir, "models": items}));
    }
    output::line(&format!("models directory: {}", dir.display()))?;
    for (m, _, size) in &rows {
        let state = match size {
            Some(bytes) => format!("installed {:>8}", human_size(*bytes)),
            None => match m.source {
                ModelSource::FetchScript => "run scripts/fetch-models.sh".to_string(),
                ModelSource::HuggingFace { .. } => format!("llmkit models pull {}", m.name),
            },
        };
        output::line(&format!(
            "local:{:<20} {:<28} {}",
            m.name, state, m.description
        ))?;
    }
    Ok(())
}

/// Downloads a catalogued model from the Hugging Face Hub, verifying its checksum when known.
async fn pull(ctx: &Ctx, name: &str) -> Result<()> {
    let name = name.strip_prefix("local:").unwrap_or(name);
    let Some(model) = llmkit_local::find_known_model(name) else {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        return Err(CliError::usage(
            format!("unknown model `{name}`"),
            format!("known models: {}", names.join(", ")),
        )
        .into());
    };
    let ModelSource::HuggingFace { repo, file } = model.source else {
        return Err(CliError::usage(
            format!("`{name}` is installed by scripts/fetch-models.sh, not downloaded"),
            "run scripts/fetch-models.sh",
        )
        .into());
    };
    let dest = ctx.settings.models_dir.join(model.local_name);
    if dest.exists() {
        output::line(&format!(
            "{name} is already installed at {}",
            dest.display()
        ))?;
        return Ok(());
    }
    let url = format!("{}/{repo}/resolve/main/{file}", ctx.settings.hf_endpoint);
    crate::app::notice(&format!(
        "downloading {name} (~{} MB) from {url}",
        model.approx_size_mb
    ));
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        move |done: u64, total: Option<u64>| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        }
    };
    let sha = llmkit_client::download_file(&url, &dest, model.sha256, progress).await;
    bar.finish_and_clear();
    let sha = sha?;
    output::line(&format!(
        "installed {name} at {} (sha256 {sha})",
        dest.display()
    ))?;
    Ok(())
}

fn disk_size(path: &std::path::Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some(meta.len());
    }
    let entries = std::fs::read_dir(path).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
    )
}

fn human_size(bytes: u64) -> String {
    let mb = bytes as f64 / 1_048_576.0;
    if mb >= 1024.0 {
        format!("{:.1} GiB", mb / 1024.0)
    } else {
        format!("{mb:.1} MiB")
    }
}
