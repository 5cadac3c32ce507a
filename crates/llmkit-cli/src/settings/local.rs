//! The local-model group (models directory, threads, where `models pull` downloads from),
//! the store file and the config paths.

use std::path::{Path, PathBuf};

use super::{Env, Layered};
use crate::error::CliError;

/// The embedded models.
#[derive(Debug)]
pub(crate) struct LocalSettings {
    /// Where local model files live (`LLMKIT_MODELS_DIR`, the config's `models_dir`).
    pub models_dir: PathBuf,
    /// Worker threads for local models (`LLMKIT_THREADS`); `None`: the library's default.
    pub threads: Option<usize>,
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
        let hf_endpoint = env
            .hf_endpoint
            .clone()
            .unwrap_or_else(|| "https://huggingface.co".to_string())
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            models_dir,
            threads,
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
