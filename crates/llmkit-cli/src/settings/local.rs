//! The local-model group (models directory, threads, the KV prefix cache cap, where
//! `models pull` downloads from), the store file and the config paths.

use std::path::{Path, PathBuf};

use super::{Env, Layered};
use crate::error::CliError;

/// The KV prefix cache cap when none is configured: about 11,000 positions of SmolLM2-135M
/// (23 KB each), so a long conversation and a few shared system prompts stay cached.
pub(crate) const DEFAULT_KV_CACHE_MB: u64 = 256;
/// The largest cap accepted (1 TiB): far past any machine this runs on, and small enough that
/// the byte count cannot overflow.
pub(crate) const MAX_KV_CACHE_MB: u64 = 1 << 20;

/// The embedded models.
#[derive(Debug)]
pub(crate) struct LocalSettings {
    /// Where local model files live (`LLMKIT_MODELS_DIR`, the config's `models_dir`).
    pub models_dir: PathBuf,
    /// Worker threads for local models (`LLMKIT_THREADS`); `None`: the library's default.
    pub threads: Option<usize>,
    /// The embedded model's KV prefix cache cap in MiB (`LLMKIT_KV_CACHE_MB`, the config's
    /// `kv_cache_mb`, else [`DEFAULT_KV_CACHE_MB`]); 0 turns reuse off.
    pub kv_cache_mb: u64,
    /// Where `models pull` downloads from (`HF_ENDPOINT`).
    pub hf_endpoint: String,
}

impl LocalSettings {
    pub(super) fn resolve(env: &Env, layer: &Layered<'_>) -> Result<Self, CliError> {
        let models_dir = env
            .llmkit_models_dir
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| layer.get(|p| p.models_dir.clone()))
            .unwrap_or_else(|| data_dir(env).join("models"));
        let threads = match env.llmkit_threads.as_deref() {
            None => None,
            Some(v) => Some(v.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                CliError::config(
                    format!("LLMKIT_THREADS must be a whole number above 0, got `{v}`"),
                    "unset LLMKIT_THREADS or set it to the number of threads for local models",
                )
            })?),
        };
        let kv_cache_mb = match env.llmkit_kv_cache_mb.as_deref() {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n <= MAX_KV_CACHE_MB)
                .ok_or_else(|| {
                    CliError::config(
                        format!(
                            "LLMKIT_KV_CACHE_MB must be a whole number of MiB from 0 to \
                             {MAX_KV_CACHE_MB}, got `{v}`"
                        ),
                        "unset LLMKIT_KV_CACHE_MB, or set it to the KV cache size in MiB (0 turns it off)",
                    )
                })?,
            None => match layer.get(|p| p.kv_cache_mb) {
                Some(n) if n > MAX_KV_CACHE_MB => {
                    return Err(CliError::config(
                        format!(
                            "kv_cache_mb in the config file must be at most {MAX_KV_CACHE_MB}, got {n}"
                        ),
                        "run `llmkit config set kv_cache_mb 256` (0 turns the cache off)",
                    ));
                }
                Some(n) => n,
                None => DEFAULT_KV_CACHE_MB,
            },
        };
        let hf_endpoint = env
            .hf_endpoint
            .clone()
            .unwrap_or_else(|| "https://huggingface.co".to_string())
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            models_dir,
            threads,
            kv_cache_mb,
            hf_endpoint,
        })
    }
}

/// Files and directories llmkit reads and writes.
#[derive(Debug)]
pub(crate) struct Paths {
    /// The config file (it may not exist).
    pub config_file: PathBuf,
    /// `$XDG_CONFIG_HOME/llmkit`: where role and template files live.
    pub config_dir: PathBuf,
    /// The SQLite store (sessions, ledger, cache): `LLMKIT_STORE`, the config's `store`, else
    /// `$XDG_DATA_HOME/llmkit/llmkit.db`.
    pub store: PathBuf,
}

impl Paths {
    pub(super) fn resolve(config_file: PathBuf, env: &Env, layer: &Layered<'_>) -> Self {
        let store = env
            .llmkit_store
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| layer.get(|p| p.store.clone()))
            .unwrap_or_else(|| data_dir(env).join("llmkit.db"));
        let config_dir = config_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Self {
            config_file,
            config_dir,
            store,
        }
    }
}

/// `$XDG_DATA_HOME/llmkit`, else `~/.local/share/llmkit`.
fn data_dir(env: &Env) -> PathBuf {
    let data = match (&env.xdg_data_home, &env.home) {
        (Some(x), _) => PathBuf::from(x),
        (None, Some(h)) => PathBuf::from(h).join(".local").join("share"),
        (None, None) => PathBuf::from(".local/share"),
    };
    data.join("llmkit")
}
