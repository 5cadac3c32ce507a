//! `Env`: every environment variable llmkit honours, read once at start-up. This is the only
//! place in llmkit that reads the environment.

use std::collections::BTreeMap;

use secrecy::SecretString;

/// Every environment variable llmkit reads, captured once at start-up.
#[derive(Debug, Default, Clone)]
pub(crate) struct Env {
    /// `OPENAI_API_KEY`: the API key.
    pub openai_api_key: Option<String>,
    /// `OPENAI_ADMIN_KEY`: the organisation admin key (`usage reconcile` reads the
    /// organisation's usage and cost reports with it; never sent on model requests).
    pub openai_admin_key: Option<String>,
    /// `OPENAI_BASE_URL`: the API base URL.
    pub openai_base_url: Option<String>,
    /// `OPENAI_ORG_ID`: the organisation header.
    pub openai_org_id: Option<String>,
    /// `OPENAI_PROJECT_ID`: the project header.
    pub openai_project_id: Option<String>,
    /// `LLMKIT_MODEL`: the default model.
    pub llmkit_model: Option<String>,
    /// `LLMKIT_PROFILE`: the config profile.
    pub llmkit_profile: Option<String>,
    /// `LLMKIT_CONFIG`: the config file path.
    pub llmkit_config: Option<String>,
    /// `LLMKIT_MODELS_DIR`: where local model files live.
    pub llmkit_models_dir: Option<String>,
    /// `LLMKIT_THREADS`: worker threads for local models (default: physical cores).
    pub llmkit_threads: Option<String>,
    /// `LLMKIT_KV_CACHE_MB`: the local model's KV prefix cache cap in MiB (0: off).
    pub llmkit_kv_cache_mb: Option<String>,
    /// `HF_ENDPOINT`: the Hugging Face Hub URL for `models pull` (a mirror), as in
    /// `huggingface_hub`.
    pub hf_endpoint: Option<String>,
    /// `VISUAL`, else `EDITOR`: the editor `templates edit` opens.
    pub editor: Option<String>,
    /// `LLMKIT_STORE`: the SQLite store file (sessions, ledger, cache).
    pub llmkit_store: Option<String>,
    /// `XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `HOME`: standard locations.
    pub xdg_config_home: Option<String>,
    pub xdg_data_home: Option<String>,
    pub home: Option<String>,
    /// `LLMKIT_MASTER_KEY`: the gateway admin API's master key.
    pub llmkit_master_key: Option<SecretString>,
    /// Every variable, captured at the same moment, for the ones a flag or the config file
    /// names (`llmkit serve --master-key-env VAR`). Values are secrets: never printed.
    pub all: BTreeMap<String, SecretString>,
}

impl Env {
    /// Reads the process environment (empty values count as unset).
    pub(crate) fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            openai_api_key: var("OPENAI_API_KEY"),
            openai_admin_key: var("OPENAI_ADMIN_KEY"),
            openai_base_url: var("OPENAI_BASE_URL"),
            openai_org_id: var("OPENAI_ORG_ID"),
            openai_project_id: var("OPENAI_PROJECT_ID"),
            llmkit_model: var("LLMKIT_MODEL"),
            llmkit_profile: var("LLMKIT_PROFILE"),
            llmkit_config: var("LLMKIT_CONFIG"),
            llmkit_models_dir: var("LLMKIT_MODELS_DIR"),
            llmkit_threads: var("LLMKIT_THREADS"),
            llmkit_kv_cache_mb: var("LLMKIT_KV_CACHE_MB"),
            llmkit_store: var("LLMKIT_STORE"),
            hf_endpoint: var("HF_ENDPOINT"),
            editor: var("VISUAL").or_else(|| var("EDITOR")),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
            llmkit_master_key: var("LLMKIT_MASTER_KEY").map(SecretString::from),
            all: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k, SecretString::from(v)))
                .collect(),
        }
    }
}
