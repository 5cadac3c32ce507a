//! The gateway group: where `llmkit serve` replicas keep their shared state (the config
//! file's `[gateway]` table). Without `store`, the gateway runs on the local SQLite store.

use std::path::PathBuf;
use std::time::Duration;

use llmkit_gateway::LimitsFallback;
use secrecy::SecretString;

use crate::config_file::GatewayFileConfig;
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
        })
    }
}
