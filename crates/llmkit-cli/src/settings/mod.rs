//! Resolves flags, environment and config file (in that order) into one immutable
//! [`Settings`], made of small groups that each resolve themselves (the way uv composes its
//! settings). Nothing reads the raw flags after this, and no command changes the result.
//!
//! This is the only place that reads environment variables; every variable llmkit honours is
//! declared in [`Env`].

mod client;
mod env;
mod gateway;
mod local;
mod spend;
mod tools;

use std::path::PathBuf;

use crate::cli::GlobalArgs;
use crate::config_file::{self, FileConfig, ProfileConfig};
use crate::error::CliError;

pub(crate) use client::{ClientSettings, ModelChoice, ModelSettings, parse_model};
pub(crate) use env::Env;
pub(crate) use gateway::{GatewaySettings, RouteUpstream};
pub(crate) use local::{LocalSettings, MAX_KV_CACHE_MB, Paths};
pub(crate) use spend::{BudgetSettings, CacheSettings, RedactSettings};
pub(crate) use tools::ToolSettings;

/// OpenAI's public endpoint, the default base URL.
pub(crate) const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The default API model when a key is configured.
pub(crate) const DEFAULT_API_MODEL: &str = "gpt-4o-mini";
/// The default embedding model for the API.
pub(crate) const DEFAULT_API_EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// A resolved value and where it came from (for `config show`).
#[derive(Debug, Clone)]
pub(crate) struct Sourced<T> {
    pub value: T,
    pub source: &'static str,
}

/// Everything a command needs, resolved once.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The profile in force (flag, `LLMKIT_PROFILE` or the file's `default_profile`).
    pub profile: Option<String>,
    /// The profile named by `--profile` itself: where `config set` writes.
    pub profile_flag: Option<String>,
    pub paths: Paths,
    pub client: ClientSettings,
    pub models: ModelSettings,
    pub local: LocalSettings,
    pub cache: CacheSettings,
    pub budgets: BudgetSettings,
    pub redaction: RedactSettings,
    /// `[gateway]`: the replicas' shared state for `serve` and `keys`.
    pub gateway: GatewaySettings,
    /// `[mcp.NAME]`: MCP servers the config file names.
    pub tools: ToolSettings,
    /// The user's editor (`VISUAL`/`EDITOR`), if set.
    pub editor: Option<String>,
    /// Warnings found while resolving (a config file with a key that others can read), for
    /// the caller to print once.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Resolves settings: flags win over environment, environment over the config file's
    /// profile, the profile over the file's top level.
    ///
    /// `editing` is set for `config` commands, which may name a profile that does not exist
    /// yet (`config set ... --profile new`).
    pub(crate) fn resolve(args: &GlobalArgs, env: &Env, editing: bool) -> Result<Self, CliError> {
        let config_path = args
            .config
            .clone()
            .or_else(|| env.llmkit_config.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| {
                config_file::default_path(env.xdg_config_home.as_deref(), env.home.as_deref())
            });
        // A file named by --config must be there; the default one and LLMKIT_CONFIG's (a
        // location set once, perhaps before the file is written) are optional, and
        // `config` commands may create the named one.
        if args.config.is_some() && !editing && !config_path.exists() {
            return Err(CliError::config(
                format!("config file {} does not exist", config_path.display()),
                "check the path given to --config (`llmkit config set KEY VALUE --config \
                 FILE` creates one)",
            ));
        }
        let file = config_file::load(&config_path)?;
        let profile = args
            .profile
            .clone()
            .or_else(|| env.llmkit_profile.clone())
            .or_else(|| file.default_profile.clone());
        let prof = select_profile(&file, profile.as_deref(), editing, &config_path)?;
        let layer = Layered {
            profile: &prof,
            top: &file.top,
        };
        let warnings = config_file::exposed_key_warning(&config_path, &file)
            .into_iter()
            .collect();
        let paths = Paths::resolve(config_path, env, &layer);
        Ok(Self {
            profile,
            profile_flag: args.profile.clone(),
            client: ClientSettings::resolve(args, env, &layer)?,
            models: ModelSettings::resolve(env, &layer, &file)?,
            local: LocalSettings::resolve(env, &layer)?,
            cache: CacheSettings::resolve(args, &layer)?,
            budgets: BudgetSettings::resolve(args, &layer)?,
            redaction: RedactSettings::resolve(args, &layer),
            gateway: GatewaySettings {
                routes: gateway::resolve_routes(args, env, &file)?,
                ..GatewaySettings::resolve(&file.gateway)?
            },
            tools: ToolSettings::resolve(&file.mcp)?,
            editor: env.editor.clone(),
            warnings,
            paths,
        })
    }

    /// Picks the model for a command: the flag, else env/config, else the default. With no
    /// model named anywhere and no API key, the default is the embedded local model; the
    /// returned flag says whether that fallback happened (so the caller can say so).
    pub(crate) fn choose_model(&self, flag: Option<&str>) -> (ModelChoice, bool) {
        let named = flag
            .map(str::to_string)
            .or_else(|| self.models.chat.as_ref().map(|m| m.value.clone()));
        match named {
            Some(m) => (parse_model(&m), false),
            None if self.client.needs_local_fallback() => (
                ModelChoice::Local(llmkit_local::DEFAULT_CHAT_MODEL.to_string()),
                true,
            ),
            None => (ModelChoice::Remote(DEFAULT_API_MODEL.to_string()), false),
        }
    }
}

/// The profile's section of the file (empty for no profile, or a new one being edited).
fn select_profile(
    file: &FileConfig,
    name: Option<&str>,
    editing: bool,
    config_path: &std::path::Path,
) -> Result<ProfileConfig, CliError> {
    let Some(name) = name else {
        return Ok(ProfileConfig::default());
    };
    if let Some(p) = file.profiles.get(name) {
        return Ok(p.clone());
    }
    if editing {
        return Ok(ProfileConfig::default());
    }
    let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
    Err(CliError::usage(
        format!("unknown profile `{name}`"),
        if known.is_empty() {
            format!(
                "add a [profiles.{name}] section to {}, or run `llmkit config set base_url URL --profile {name}`",
                config_path.display()
            )
        } else {
            format!(
                "profiles in {}: {}",
                config_path.display(),
                known.join(", ")
            )
        },
    ))
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

/// The first of flag, environment and file that is set, with where it came from.
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

#[cfg(test)]
mod tests;
