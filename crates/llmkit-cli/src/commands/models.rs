//! `llmkit models`: the server's model list, the built-in price list, installed local models, and `models pull`.

use anyhow::Result;
use llmkit_client::{ModelCatalog, ModelInfo};
use llmkit_local::{KNOWN_MODELS, ModelKind, ModelSource};
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{ModelsAction, ModelsArgs};
use crate::error::CliError;
use crate::output;

pub(crate) async fn run(ctx: &Ctx, args: ModelsArgs) -> Result<()> {
    if args.prices {
        if args.action.is_some() {
            return Err(CliError::usage(
                "`--prices` takes no subcommand",
                "run `llmkit models --prices` on its own",
            )
            .into());
        }
        return prices(&ctx.settings.models.catalog, args.json);
    }
    match args.action {
        None => remote(ctx, args.json).await,
        Some(ModelsAction::List { local: false, json }) => remote(ctx, json || args.json).await,
        Some(ModelsAction::List { local: true, json }) => local(ctx, json || args.json),
        Some(ModelsAction::Pull { name }) => pull(ctx, &name).await,
    }
}

/// Lists the server's models; without a key (on OpenAI's URL) lists the local ones instead.
async fn remote(ctx: &Ctx, json: bool) -> Result<()> {
    if ctx.settings.client.needs_local_fallback() {
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

/// Shows the price list: the built-in one with the config's overrides applied. Needs no
/// server and no key.
fn prices(catalog: &ModelCatalog, json: bool) -> Result<()> {
    if let Some(e) = ModelCatalog::builtin_error() {
        crate::app::notice(&format!("warning: {e}; every model is unpriced"));
    }
    let checked = catalog.checked().unwrap_or("never");
    let source = catalog.source().unwrap_or("none");
    if json {
        let models: Vec<_> = catalog.list().map(price_json).collect();
        return output::json(&json!({
            "checked": catalog.checked(),
            "source": catalog.source(),
            "unit": "USD per 1M tokens, standard tier",
            "models": models,
        }));
    }
    output::line(&format!(
        "prices in USD per 1M tokens, standard tier; checked {checked} against {source}; \
         [models.\"NAME\"] in the config file overrides them"
    ))?;
    output::line(&format!(
        "{:<36} {:>9} {:>8} {:>9} {:>9} {:>9} {:>6}",
        "MODEL", "WINDOW", "MAX OUT", "INPUT", "CACHED", "OUTPUT", "BATCH"
    ))?;
    for m in catalog.list() {
        let usd = |v: Option<f64>| match v {
            Some(v) if m.priced => format!("{v:.3}"),
            _ => "-".to_string(),
        };
        let batch = if m.priced {
            format!("{:.2}x", 1.0 - m.batch_discount)
        } else {
            "-".to_string()
        };
        let mut flags = Vec::new();
        if !m.priced {
            flags.push("unpriced");
        }
        if m.responses_only {
            flags.push("responses only");
        }
        output::line(
            format!(
                "{:<36} {:>9} {:>8} {:>9} {:>9} {:>9} {:>6}  {}",
                m.id,
                m.context_window,
                m.max_output,
                usd(Some(m.input_per_mtok)),
                usd(m.cached_input_per_mtok),
                usd(Some(m.output_per_mtok)),
                batch,
                flags.join(", ")
            )
            .trim_end(),
        )?;
    }
    Ok(())
}

fn price_json(m: &ModelInfo) -> serde_json::Value {
    let price = |v: f64| m.priced.then_some(v);
    json!({
        "id": m.id,
        "context_window": m.context_window,
        "max_output": m.max_output,
        "priced": m.priced,
        "input_per_mtok": price(m.input_per_mtok),
        "cached_input_per_mtok": m.cached_input_per_mtok.filter(|_| m.priced),
        "output_per_mtok": price(m.output_per_mtok),
        "batch_multiplier": price(1.0 - m.batch_discount),
        "flex_multiplier": m.flex_multiplier,
        "priority_multiplier": m.priority_multiplier,
        "responses_only": m.responses_only,
        "input_modalities": m.input_modalities.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        "output_modalities": m.output_modalities.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
    })
}

/// One row of `models list --local`.
struct LocalRow {
    name: String,
    kind: &'static str,
    path: std::path::PathBuf,
    size: Option<u64>,
    context_window: Option<u32>,
    description: String,
    /// What to run to install it, when it is not installed.
    install: String,
}

/// Shows the catalogue of local models (installed or not, size, where they come from), then
/// any other GGUF file in the models directory (pulled with `hf:`, or copied there).
fn local(ctx: &Ctx, json: bool) -> Result<()> {
    let dir = &ctx.settings.local.models_dir;
    let mut rows: Vec<LocalRow> = KNOWN_MODELS
        .iter()
        .map(|m| {
            let path = dir.join(m.local_name);
            LocalRow {
                name: format!("local:{}", m.name),
                kind: match m.kind {
                    ModelKind::Chat => "chat",
                    ModelKind::Embedding => "embedding",
                },
                size: disk_size(&path),
                path,
                context_window: Some(m.context_window),
                description: m.description.to_string(),
                install: match m.source {
                    ModelSource::FetchScript => "run scripts/fetch-models.sh".to_string(),
                    ModelSource::HuggingFace { .. } => format!("llmkit models pull {}", m.name),
                },
            }
        })
        .collect();
    rows.extend(
        other_gguf_files(dir)
            .into_iter()
            .map(|(file, size)| LocalRow {
                name: format!("local:{file}"),
                kind: "chat",
                path: dir.join(&file),
                size: Some(size),
                context_window: None,
                description: "GGUF file in the models directory".to_string(),
                install: String::new(),
            }),
    );
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "kind": r.kind,
                    "installed": r.size.is_some(),
                    "path": r.path,
                    "size_bytes": r.size,
                    "context_window": r.context_window,
                    "description": r.description,
                })
            })
            .collect();
        return output::json(&json!({"models_dir": dir, "models": items}));
    }
    output::line(&format!("models directory: {}", dir.display()))?;
    for r in &rows {
        let state = match r.size {
            Some(bytes) => format!("installed {:>8}", human_size(bytes)),
            None => r.install.clone(),
        };
        output::line(&format!("{:<26} {:<28} {}", r.name, state, r.description))?;
    }
    Ok(())
}

/// GGUF files in `dir` that are neither catalogued nor llmkit's own Q8_0 conversion caches
/// (`<stem>.<16 hex>.q8_0.gguf`), by name, with their sizes.
fn other_gguf_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let is_cache = |name: &str| {
        name.strip_suffix(".q8_0.gguf")
            .and_then(|stem| stem.rsplit_once('.'))
            .is_some_and(|(_, tag)| tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            let wanted = meta.is_file()
                && name.ends_with(".gguf")
                && !is_cache(&name)
                && !KNOWN_MODELS.iter().any(|m| m.local_name == name);
            wanted.then_some((name, meta.len()))
        })
        .collect();
    files.sort();
    files
}

/// Downloads a catalogued model from the Hugging Face Hub at its pinned revision and checks
/// its checksum, or (`hf:OWNER/REPO/FILE[@REVISION]`) any single Hub file, whose checksum is
/// printed for the user to pin.
async fn pull(ctx: &Ctx, name: &str) -> Result<()> {
    if let Some(spec) = name.strip_prefix("hf:") {
        let hub = llmkit_local::HubFile::parse(spec).map_err(|e| {
            CliError::usage(
                e.to_string(),
                "for example: llmkit models pull hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf",
            )
        })?;
        let dest = ctx.settings.local.models_dir.join(hub.local_name());
        let label = format!("{}/{}", hub.repo, hub.file);
        let done = download(
            &label,
            &hub.url(&ctx.settings.local.hf_endpoint),
            &dest,
            None,
            None,
        )
        .await?;
        if done {
            output::line(&format!(
                "use it with: -m local:{} (or -m local:{})",
                hub.local_name(),
                dest.display()
            ))?;
        }
        return Ok(());
    }
    let name = name.strip_prefix("local:").unwrap_or(name);
    let Some(model) = llmkit_local::find_known_model(name) else {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        return Err(CliError::usage(
            format!("unknown model `{name}`"),
            format!(
                "known models: {}; or pull any Hub file with hf:OWNER/REPO/FILE",
                names.join(", ")
            ),
        )
        .into());
    };
    let Some(hub) = model.hub_file() else {
        return Err(CliError::usage(
            format!("`{name}` is installed by scripts/fetch-models.sh, not downloaded"),
            "run scripts/fetch-models.sh",
        )
        .into());
    };
    let dest = ctx.settings.local.models_dir.join(model.local_name);
    let url = hub.url(&ctx.settings.local.hf_endpoint);
    download(name, &url, &dest, model.sha256, Some(model.approx_size_mb)).await?;
    Ok(())
}

/// Downloads `url` to `dest` with a progress bar (checked against `sha256` when given);
/// returns false when `dest` was already there.
async fn download(
    label: &str,
    url: &str,
    dest: &std::path::Path,
    sha256: Option<&str>,
    approx_mb: Option<u32>,
) -> Result<bool> {
    if dest.exists() {
        output::line(&format!(
            "{label} is already installed at {}",
            dest.display()
        ))?;
        return Ok(false);
    }
    let size = approx_mb
        .map(|mb| format!(" (~{mb} MB)"))
        .unwrap_or_default();
    crate::app::notice(&format!("downloading {label}{size} from {url}"));
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
    let sha = llmkit_client::download_file(url, dest, sha256, progress).await;
    bar.finish_and_clear();
    let sha = sha?;
    let checked = if sha256.is_some() {
        ", checksum verified"
    } else {
        ""
    };
    output::line(&format!(
        "installed {label} at {} (sha256 {sha}{checked})",
        dest.display()
    ))?;
    Ok(true)
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
