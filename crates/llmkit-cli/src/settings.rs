//! Resolves flags, environment and config file (in that order) into one immutable `Settings`.
//!
//! This is the only place that reads environment variables; every variable llmkit honours is
//! declared in [`Env`].

use std::path::PathBuf;
use std::time::Duration;

use llmkit_client::{
    AzureConfig, ClientConfig, ModelCatalog, ModelInfo, RetryPolicy, SecretString, Timeouts,
};

use crate::cli::GlobalArgs;
use crate::config_file::{self, FileConfig, ProfileConfig};
use crate::error::CliError;

/// OpenAI's public endpoint, the default base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The default API model when a key is configured.
pub const DEFAULT_API_MODEL: &str = "gpt-4o-mini";
/// The default embedding model for the API.
pub const DEFAULT_API_EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// Every environment variable llmkit reads, captured once at start-up.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `OPENAI_API_KEY`: the API key.
    pub openai_api_key: Option<String>,
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
}

impl Env {
    /// Reads the process environment (empty values count as unset).
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            openai_api_key: var("OPENAI_API_KEY"),
            openai_base_url: var("OPENAI_BASE_URL"),
            openai_org_id: var("OPENAI_ORG_ID"),
            openai_project_id: var("OPENAI_PROJECT_ID"),
            llmkit_model: var("LLMKIT_MODEL"),
            llmkit_profile: var("LLMKIT_PROFILE"),
            llmkit_config: var("LLMKIT_CONFIG"),
            llmkit_models_dir: var("LLMKIT_MODELS_DIR"),
            llmkit_threads: var("LLMKIT_THREADS"),
            llmkit_store: var("LLMKIT_STORE"),
            hf_endpoint: var("HF_ENDPOINT"),
            editor: var("VISUAL").or_else(|| var("EDITOR")),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
        }
    }
}

/// A resolved value and where it came from (for `config show`).
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub value: T,
    pub source: &'static str,
}

/// Everything a command needs, resolved once.
#[derive(Debug)]
pub struct Settings {
    pub config_path: PathBuf,
    pub profile: Option<String>,
    pub api_key: Option<Sourced<SecretString>>,
    pub base_url: Sourced<String>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub azure: Option<AzureConfig>,
    pub model: Option<Sourced<String>>,
    pub embedding_model: Option<String>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub models_dir: PathBuf,
    /// Worker threads for local models (`LLMKIT_THREADS`); `None`: the library's default.
    pub local_threads: Option<usize>,
    pub catalog: ModelCatalog,
    /// Where `models pull` downloads from.
    pub hf_endpoint: String,
    /// The user's editor (`VISUAL`/`EDITOR`), if set.
    pub editor: Option<String>,
    /// The SQLite store file.
    pub store_path: PathBuf,
    pub budget_daily_usd: Option<f64>,
    pub budget_monthly_usd: Option<f64>,
    /// Seconds a cached response stays valid.
    pub cache_ttl_secs: f64,
    /// `drop` or `summarize`.
    pub context_strategy: ContextStrategy,
    /// `$XDG_CONFIG_HOME/llmkit`: where role files live (`roles/NAME.toml`).
    pub config_dir: PathBuf,
    /// Redaction defaults from the config file (the flags are applied in `privacy.rs`).
    pub redact: RedactSettings,
}

/// What a conversation does when it outgrows the model's context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextStrategy {
    /// Drop the oldest turns (the system prompt is always kept).
    #[default]
    Drop,
    /// Summarise older turns into a running summary.
    Summarize,
}

/// The default cache TTL: 7 days.
pub const DEFAULT_CACHE_TTL_SECS: f64 = 7.0 * 86_400.0;

/// Redaction as the config file sets it up (`redact`, `redact_kinds`, `redact_deny`,
/// `redact_patterns`; a profile's values replace the top level's).
#[derive(Debug, Clone, Default)]
pub struct RedactSettings {
    pub enabled: bool,
    pub kinds: Option<Vec<String>>,
    pub deny: Vec<String>,
    pub patterns: std::collections::BTreeMap<String, String>,
}

/// Which backend a model name selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// An API model served over HTTP.
    Remote(String),
    /// The embedded model: a catalogue name or a file path.
    Local(String),
}

impl Settings {
    /// Resolves settings: flags win over environment, environment over the config file's
    /// profile, the profile over the file's top level.
    ///
    /// `editing` is set for `config` commands, which may name a profile that does not exist
    /// yet (`config set ... --profile new`).
    pub fn resolve(args: &GlobalArgs, env: &Env, editing: bool) -> Result<Self, CliError> {
        let config_path = args
            .config
            .clone()
            .or_else(|| env.llmkit_config.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| {
                config_file::default_path(env.xdg_config_home.as_deref(), env.home.as_deref())
            });
        let file = config_file::load(&config_path)?;
        let profile = args
            .profile
            .clone()
            .or_else(|| env.llmkit_profile.clone())
            .or_else(|| file.default_profile.clone());
        let prof = match &profile {
            Some(name) if editing && !file.profiles.contains_key(name) => ProfileConfig::default(),
            Some(name) => file.profiles.get(name).cloned().ok_or_else(|| {
                let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
                CliError::usage(
                    format!("unknown profile `{name}`"),
                    if known.is_empty() {
                        format!(
                            "add a [profiles.{name}] section to {}, or run `llmkit config set base_url URL --profile {name}`",
                            config_path.display()
                        )
                    } else {
                        format!("profiles in {}: {}", config_path.display(), known.join(", "))
                    },
                )
            })?,
            None => ProfileConfig::default(),
        };
        let layer = Layered {
            profile: &prof,
            top: &file.top,
        };

        let api_key = pick(
            None,
            env.openai_api_key.clone(),
            layer.get(|p| p.api_key.clone()),
            "OPENAI_API_KEY",
        )
        .map(|s| Sourced {
            value: SecretString::from(s.value),
            source: s.source,
        });
        let base_url = pick(
            args.base_url.clone(),
            env.openai_base_url.clone(),
            layer.get(|p| p.base_url.clone()),
            "OPENAI_BASE_URL",
        )
        .unwrap_or(Sourced {
            value: OPENAI_BASE_URL.to_string(),
            source: "default",
        });
        validate_url(&base_url.value)?;
        let organization = env
            .openai_org_id
            .clone()
            .or_else(|| layer.get(|p| p.organization.clone()));
        let project = env
            .openai_project_id
            .clone()
            .or_else(|| layer.get(|p| p.project.clone()));
        let azure = layer.get(|p| p.azure_api_version.clone()).map(|version| {
            let mut a = AzureConfig::new(version);
            if let Some(d) = layer.get(|p| p.azure_deployment.clone()) {
                a = a.deployment(d);
            }
            a
        });
        let model = pick(
            None,
            env.llmkit_model.clone(),
            layer.get(|p| p.model.clone()),
            "LLMKIT_MODEL",
        );

        let mut timeouts = Timeouts::default();
        if let Some(s) = args.timeout.or(layer.get(|p| p.timeout)) {
            timeouts.request = secs(s, "timeout")?;
        }
        if let Some(s) = layer.get(|p| p.connect_timeout) {
            timeouts.connect = secs(s, "connect_timeout")?;
        }
        if let Some(s) = args.stall_timeout.or(layer.get(|p| p.stall_timeout)) {
            timeouts.stall = secs(s, "stall_timeout")?;
        }
        let mut retry = RetryPolicy::default();
        if let Some(n) = args.max_retries.or(layer.get(|p| p.max_retries)) {
            retry.max_retries = n;
        }

        let models_dir = env
            .llmkit_models_dir
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| layer.get(|p| p.models_dir.clone()))
            .unwrap_or_else(|| default_models_dir(env));

        let local_threads = match env.llmkit_threads.as_deref() {
            None => None,
            Some(v) => Some(v.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                CliError::config(
                    format!("LLMKIT_THREADS must be a whole number above 0, got `{v}`"),
                    "unset LLMKIT_THREADS or set it to the number of threads for local models",
                )
            })?),
        };

        let store_path = env
            .llmkit_store
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| layer.get(|p| p.store.clone()))
            .unwrap_or_else(|| default_data_dir(env).join("llmkit.db"));
        let cache_ttl_secs = match layer.get(|p| p.cache_ttl.clone()) {
            None => DEFAULT_CACHE_TTL_SECS,
            Some(t) => config_file::parse_ttl(&t).ok_or_else(|| {
                CliError::config(
                    format!("`cache_ttl` must be a duration such as 7d, 12h or 3600, got `{t}`"),
                    "fix `cache_ttl` in the config file",
                )
            })?,
        };
        let context_strategy = match layer.get(|p| p.context_strategy.clone()).as_deref() {
            None | Some("drop") => ContextStrategy::Drop,
            Some("summarize" | "summarise") => ContextStrategy::Summarize,
            Some(other) => {
                return Err(CliError::config(
                    format!("`context_strategy` must be `drop` or `summarize`, got `{other}`"),
                    "fix `context_strategy` in the config file",
                ));
            }
        };
        let budget = |v: Option<f64>, name: &str| -> Result<Option<f64>, CliError> {
            match v {
                Some(x) if !(x.is_finite() && x >= 0.0) => Err(CliError::config(
                    format!("`{name}` must be an amount in USD ≥ 0, got {x}"),
                    format!("fix `{name}` in the config file"),
                )),
                other => Ok(other),
            }
        };
        let config_dir = config_path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();

        let redact = RedactSettings {
            enabled: layer.get(|p| p.redact).unwrap_or(false),
            kinds: layer.get(|p| p.redact_kinds.clone()),
            deny: layer.get(|p| p.redact_deny.clone()).unwrap_or_default(),
            patterns: layer.get(|p| p.redact_patterns.clone()).unwrap_or_default(),
        };

        Ok(Self {
            redact,
            budget_daily_usd: budget(layer.get(|p| p.budget_daily_usd), "budget_daily_usd")?,
            budget_monthly_usd: budget(layer.get(|p| p.budget_monthly_usd), "budget_monthly_usd")?,
            store_path,
            cache_ttl_secs,
            context_strategy,
            config_dir,
            catalog: catalog_with_overrides(&file),
            config_path,
            profile,
            api_key,
            base_url,
            organization,
            project,
            azure,
            model,
            embedding_model: layer.get(|p| p.embedding_model.clone()),
            timeouts,
            retry,
            models_dir,
            local_threads,
            editor: env.editor.clone(),
            hf_endpoint: env
                .hf_endpoint
                .clone()
                .unwrap_or_else(|| "https://huggingface.co".to_string())
                .trim_end_matches('/')
                .to_string(),
        })
    }

    /// True when the base URL is OpenAI's own endpoint (which always needs a key).
    pub fn is_openai(&self) -> bool {
        self.base_url.value.starts_with(OPENAI_BASE_URL) && self.azure.is_none()
    }

    /// Picks the model for a command: the flag, else env/config, else the default. With no
    /// model named anywhere and no API key, the default is the embedded local model; the
    /// returned flag says whether that fallback happened (so the caller can say so).
    pub fn choose_model(&self, flag: Option<&str>) -> (ModelChoice, bool) {
        let named = flag
            .map(str::to_string)
            .or_else(|| self.model.as_ref().map(|m| m.value.clone()));
        match named {
            Some(m) => (parse_model(&m), false),
            None if self.api_key.is_none() && self.is_openai() => (
                ModelChoice::Local(llmkit_local::DEFAULT_CHAT_MODEL.to_string()),
                true,
            ),
            None => (ModelChoice::Remote(DEFAULT_API_MODEL.to_string()), false),
        }
    }

    /// The HTTP client configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(self.base_url.value.clone())
            .api_key_secret(self.api_key.as_ref().map(|k| k.value.clone()))
            .timeouts(self.timeouts)
            .retry(self.retry);
        if let Some(o) = &self.organization {
            cfg = cfg.organization(o.clone());
        }
        if let Some(p) = &self.project {
            cfg = cfg.project(p.clone());
        }
        if let Some(a) = &self.azure {
            cfg = cfg.azure(a.clone());
        }
        cfg
    }

    /// The context window of a remote model, from the catalogue.
    pub fn model_info(&self, model: &str) -> Option<&ModelInfo> {
        self.catalog.get(model)
    }
}

/// `local:NAME` or `local:/path` selects the embedded model; anything else is remote.
pub fn parse_model(name: &str) -> ModelChoice {
    match name.strip_prefix("local:") {
        Some(rest) if !rest.is_empty() => ModelChoice::Local(rest.to_string()),
        Some(_) => ModelChoice::Local(llmkit_local::DEFAULT_CHAT_MODEL.to_string()),
        None => ModelChoice::Remote(name.to_string()),
    }
}

/// Profile values over top-level values.
struct Layered<'a> {
    profile: &'a ProfileConfig,
    top: &'a ProfileConfig,
}

impl Layered<'_> {
    fn get<T>(&self, f: impl Fn(&ProfileConfig) -> Option<T>) -> Option<T> {
        f(self.profile).or_else(|| f(self.top))
    }
}

fn pick(
    flag: Option<String>,
    env: Option<String>,
    file: Option<String>,
    env_name: &'static str,
) -> Option<Sourced<String>> {
    flag.map(|value| Sourced {
        value,
        source: "flag",
    })
    .or_else(|| {
        env.map(|value| Sourced {
            value,
            source: env_name,
        })
    })
    .or_else(|| {
        file.filter(|v| !v.is_empty()).map(|value| Sourced {
            value,
            source: "config file",
        })
    })
}

fn secs(v: f64, name: &str) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError::config(
                format!("`{name}` must be a positive number of seconds, got {v}"),
                format!("fix `{name}` in the config file"),
            )
        })
}

fn validate_url(url: &str) -> Result<(), CliError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(CliError::usage(
            format!("invalid base URL `{url}`"),
            "use a full http(s) URL such as https://api.openai.com/v1 or http://localhost:8000/v1",
        )),
    }
}

fn default_models_dir(env: &Env) -> PathBuf {
    let data = match (&env.xdg_data_home, &env.home) {
        (Some(x), _) => PathBuf::from(x),
        (None, Some(h)) => PathBuf::from(h).join(".local").join("share"),
        (None, None) => PathBuf::from(".local/share"),
    };
    data.join("llmkit").join("models")
}

/// `$XDG_DATA_HOME/llmkit`, else `~/.local/share/llmkit`.
fn default_data_dir(env: &Env) -> PathBuf {
    default_models_dir(env)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

fn catalog_with_overrides(file: &FileConfig) -> ModelCatalog {
    let base = ModelCatalog::builtin();
    let overrides: Vec<ModelInfo> = file
        .models
        .iter()
        .map(|(name, o)| {
            let mut info = base.get(name).cloned().unwrap_or_else(|| ModelInfo {
                id: name.clone(),
                context_window: 8192,
                max_output: 4096,
                input_per_mtok: 0.0,
                cached_input_per_mtok: None,
                output_per_mtok: 0.0,
                batch_discount: 0.5,
            });
            info.id.clone_from(name);
            if let Some(v) = o.context_window {
                info.context_window = v;
            }
            if let Some(v) = o.max_output {
                info.max_output = v;
            }
            if let Some(v) = o.input_per_mtok {
                info.input_per_mtok = v;
            }
            if o.cached_input_per_mtok.is_some() {
                info.cached_input_per_mtok = o.cached_input_per_mtok;
            }
            if let Some(v) = o.output_per_mtok {
                info.output_per_mtok = v;
            }
            info
        })
        .collect();
    base.with_overrides(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> GlobalArgs {
        GlobalArgs {
            profile: None,
            base_url: None,
            config: Some(PathBuf::from("/nonexistent/llmkit.toml")),
            max_retries: None,
            timeout: None,
            stall_timeout: None,
            redact: false,
            redact_kinds: Vec::new(),
            show_redactions: false,
            max_cost: None,
            no_cache: false,
            cache: None,
        }
    }

    #[test]
    fn local_threads_come_from_the_environment() {
        let s = Settings::resolve(&args(), &Env::default(), false).unwrap();
        assert_eq!(s.local_threads, None);
        let env = Env {
            llmkit_threads: Some("3".into()),
            ..Env::default()
        };
        let s = Settings::resolve(&args(), &env, false).unwrap();
        assert_eq!(s.local_threads, Some(3));
        for bad in ["0", "two", "-1"] {
            let env = Env {
                llmkit_threads: Some(bad.into()),
                ..Env::default()
            };
            assert!(Settings::resolve(&args(), &env, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_key_means_local_model() {
        let s = Settings::resolve(&args(), &Env::default(), false).unwrap();
        let (choice, fallback) = s.choose_model(None);
        assert!(matches!(choice, ModelChoice::Local(_)));
        assert!(fallback);
        let env = Env {
            openai_api_key: Some("sk-test".into()),
            ..Env::default()
        };
        let s = Settings::resolve(&args(), &env, false).unwrap();
        assert_eq!(
            s.choose_model(None),
            (ModelChoice::Remote(DEFAULT_API_MODEL.into()), false)
        );
        assert_eq!(
            s.choose_model(Some("local:/x.gguf")).0,
            ModelChoice::Local("/x.gguf".into())
        );
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "base_url = \"http://file/v1\"\nmodel = \"file-model\"\n[profiles.p]\nmodel = \"profile-model\"\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        let env = Env {
            openai_base_url: Some("http://env/v1".into()),
            ..Env::default()
        };
        let s = Settings::resolve(&a, &env, false).unwrap();
        assert_eq!(s.base_url.value, "http://env/v1");
        assert_eq!(s.model.as_ref().unwrap().value, "file-model");
        a.base_url = Some("http://flag/v1".into());
        a.profile = Some("p".into());
        let s = Settings::resolve(&a, &env, false).unwrap();
        assert_eq!(s.base_url.value, "http://flag/v1");
        assert_eq!(s.model.as_ref().unwrap().value, "profile-model");
        a.profile = Some("missing".into());
        assert!(Settings::resolve(&a, &env, false).is_err());
    }
}
