//! The gateway group: where `llmkit serve` replicas keep their shared state and which
//! upstreams serve which model (the config file's `[gateway]` table). Without `store`, the
//! gateway runs on the local SQLite store; without `routes`, every model goes to the one
//! upstream the other commands use.

use std::path::PathBuf;
use std::time::Duration;

use llmkit_client::ClientConfig;
use llmkit_gateway::{Balance, LimitsFallback};
use secrecy::{ExposeSecret, SecretString};

use super::client::ClientSettings;
use super::{Env, Layered};
use crate::cli::GlobalArgs;
use crate::config_file::{FileConfig, GatewayFileConfig};
use crate::error::CliError;

/// The resolved `[gateway]` table.
#[derive(Debug, Clone, Default)]
pub(crate) struct GatewaySettings {
    /// `postgres://...`: keys, budgets and the ledger shared by replicas.
    pub store_url: Option<SecretString>,
    /// `redis://...`: the shared response cache and key-change messages.
    pub redis_url: Option<SecretString>,
    /// Where ledger rows wait while PostgreSQL is down; one file per replica.
    pub spool: Option<PathBuf>,
    pub key_cache_ttl: Duration,
    pub limits_fallback: LimitsFallback,
    /// `[gateway.routes]`, by model name.
    pub routes: Vec<RouteSettings>,
    /// `[gateway] master_key_env`: the variable holding the admin API's master key.
    pub master_key_env: Option<String>,
    /// The admin API's master key, once [`GatewaySettings::resolve_master_key`] ran
    /// (for `llmkit serve`); `None`: the admin API and the dashboard are off.
    pub master_key: Option<SecretString>,
}

/// One `[gateway.routes]` entry: a model, each upstream serving it (by name, in fallback
/// order), and how they are balanced.
#[derive(Debug, Clone)]
pub(crate) struct RouteSettings {
    pub model: String,
    pub upstreams: Vec<(String, RouteUpstream)>,
    pub balance: Balance,
}

/// A route's upstream: a profile's client, or the embedded model `local:SPEC` (loaded by
/// `serve`, not here: settings only resolve).
// Resolved once at start, a handful per route: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum RouteUpstream {
    Profile(ClientConfig),
    /// The model spec after `local:` (a catalogue name or a path).
    Local(String),
}

impl GatewaySettings {
    pub(super) fn resolve(file: &GatewayFileConfig) -> Result<Self, CliError> {
        let scheme = |url: &str, schemes: &[&str]| schemes.iter().any(|s| url.starts_with(s));
        if let Some(url) = &file.store
            && !scheme(url, &["postgres://", "postgresql://"])
        {
            return Err(CliError::config(
                "`[gateway] store` is not a PostgreSQL URL",
                "write it as store = \"postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE\", or remove it to use the local SQLite store",
            ));
        }
        if let Some(url) = &file.redis
            && !scheme(url, &["redis://", "rediss://"])
        {
            return Err(CliError::config(
                "`[gateway] redis` is not a Redis URL",
                "write it as redis = \"redis://HOST[:PORT][/DB]\"",
            ));
        }
        if file.redis.is_some() && file.store.is_none() {
            return Err(CliError::config(
                "`[gateway] redis` is set without `store`",
                "Redis is shared state for replicas, which also need the PostgreSQL `store`; set both or neither",
            ));
        }
        let ttl = file.key_cache_ttl_secs.unwrap_or(5.0);
        if !(ttl.is_finite() && (0.0..=3600.0).contains(&ttl)) {
            return Err(CliError::config(
                "`[gateway] key_cache_ttl_secs` must be between 0 and 3600",
                "it is how long a replica trusts a key it read (default 5)",
            ));
        }
        let limits_fallback = match (file.limits_when_redis_down.as_deref(), file.replicas) {
            (None | Some("closed"), None) => LimitsFallback::FailClosed,
            (Some("per-replica"), Some(n)) if n >= 1 => LimitsFallback::PerReplica { replicas: n },
            (Some("per-replica"), _) => {
                return Err(CliError::config(
                    "`[gateway] limits_when_redis_down = \"per-replica\"` needs `replicas`",
                    "set replicas = N, the number of gateway replicas (each enforces 1/N of every limit while Redis is down)",
                ));
            }
            (None | Some("closed"), Some(_)) => {
                return Err(CliError::config(
                    "`[gateway] replicas` is only used with limits_when_redis_down = \"per-replica\"",
                    "remove replicas, or set limits_when_redis_down = \"per-replica\"",
                ));
            }
            (Some(other), _) => {
                return Err(CliError::config(
                    format!("`[gateway] limits_when_redis_down` is `{other}`"),
                    "use \"closed\" (refuse limited keys while Redis is down) or \"per-replica\" (with replicas = N)",
                ));
            }
        };
        Ok(Self {
            limits_fallback,
            store_url: file.store.clone().map(SecretString::from),
            redis_url: file.redis.clone().map(SecretString::from),
            spool: file.spool.clone(),
            key_cache_ttl: Duration::from_secs_f64(ttl),
            routes: Vec::new(),
            master_key_env: file.master_key_env.clone(),
            master_key: None,
        })
    }

    /// The admin API's master key for `llmkit serve`: from the variable `--master-key-env`
    /// names, else the one `[gateway] master_key_env` names, else `LLMKIT_MASTER_KEY`. A
    /// named variable that is unset, or a key shorter than [`MIN_MASTER_KEY`], is an error
    /// rather than an admin API left open or silently off.
    pub(crate) fn resolve_master_key(
        &mut self,
        flag: Option<&str>,
        env: &Env,
    ) -> Result<(), CliError> {
        let named = flag.map(|v| (v, "--master-key-env")).or_else(|| {
            self.master_key_env
                .as_deref()
                .map(|v| (v, "`[gateway] master_key_env`"))
        });
        let key = match named {
            Some((var, source)) => Some(env.all.get(var.trim()).cloned().ok_or_else(|| {
                CliError::config(
                    format!("{source} names `{var}`, which is not set"),
                    format!("export {var}=... (a long random string) before `llmkit serve`"),
                )
            })?),
            None => env.llmkit_master_key.clone(),
        };
        if let Some(k) = &key
            && k.expose_secret().trim().chars().count() < MIN_MASTER_KEY
        {
            return Err(CliError::config(
                format!("the master key is shorter than {MIN_MASTER_KEY} characters"),
                "use a long random string, e.g. `openssl rand -hex 32`",
            ));
        }
        self.master_key = key;
        Ok(())
    }
}

/// The shortest master key accepted: it guards every key and the whole ledger.
pub(crate) const MIN_MASTER_KEY: usize = 16;

/// `[gateway.routes]`: each profile resolved as `--profile NAME` resolves it (its values
/// over the file's top level), except that a profile's own `api_key` and `base_url` win
/// over `OPENAI_API_KEY`, `OPENAI_BASE_URL` and `--base-url`, which would otherwise send
/// every upstream to one server; they fill in only what a profile leaves unset.
pub(super) fn resolve_routes(
    args: &GlobalArgs,
    env: &Env,
    file: &FileConfig,
) -> Result<Vec<RouteSettings>, CliError> {
    let mut routes = Vec::with_capacity(file.gateway.routes.len());
    for (model, route) in &file.gateway.routes {
        if model.trim().is_empty() {
            return Err(CliError::config(
                "`[gateway.routes]` has an empty model name",
                "write each route as \"MODEL\" = [\"PROFILE\", ...]",
            ));
        }
        let names = route.upstreams();
        if names.is_empty() {
            return Err(CliError::config(
                format!("`[gateway.routes]` gives model `{model}` no upstream"),
                format!(
                    "list the profiles (or local:MODEL) that serve it: \"{model}\" = [\"PROFILE\", ...]"
                ),
            ));
        }
        let balance = match route.balance() {
            None | Some("p2c") => Balance::P2c,
            Some("ewma") => Balance::Ewma,
            Some(other) => {
                return Err(CliError::config(
                    format!("`[gateway.routes.\"{model}\"] balance` is `{other}`"),
                    "use \"p2c\" (the less busy of two, the default) or \"ewma\" (the lowest latency average times requests in flight)",
                ));
            }
        };
        let mut upstreams = Vec::with_capacity(names.len());
        for name in names {
            if upstreams.iter().any(|(n, _)| n == name) {
                return Err(CliError::config(
                    format!("`[gateway.routes]` lists `{name}` twice for model `{model}`"),
                    "name each upstream once: the ledger and the metrics tell them apart by name",
                ));
            }
            if let Some(spec) = name.strip_prefix("local:") {
                if spec.trim().is_empty() {
                    return Err(CliError::config(
                        format!("`[gateway.routes]` gives model `{model}` an empty `local:`"),
                        "name the embedded model, e.g. \"local:smollm2-135m\" (`llmkit models` lists them)",
                    ));
                }
                upstreams.push((name.clone(), RouteUpstream::Local(spec.trim().to_string())));
                continue;
            }
            let Some(profile) = file.profiles.get(name) else {
                let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
                return Err(CliError::config(
                    format!("`[gateway.routes]` sends model `{model}` to unknown profile `{name}`"),
                    if known.is_empty() {
                        format!("add a [profiles.{name}] section with its base_url and api_key")
                    } else {
                        format!("profiles in the config file: {}", known.join(", "))
                    },
                ));
            };
            let layer = Layered {
                profile,
                top: &file.top,
            };
            let mut env = env.clone();
            let mut args = args.clone();
            if layer.get(|p| p.api_key.clone()).is_some() {
                env.openai_api_key = None;
            }
            if layer.get(|p| p.base_url.clone()).is_some() {
                env.openai_base_url = None;
                args.base_url = None;
            }
            let client = ClientSettings::resolve(&args, &env, &layer)?;
            upstreams.push((name.clone(), RouteUpstream::Profile(client.config())));
        }
        routes.push(RouteSettings {
            model: model.clone(),
            upstreams,
            balance,
        });
    }
    Ok(routes)
}
