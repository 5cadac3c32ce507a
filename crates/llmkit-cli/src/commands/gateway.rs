//! `llmkit serve` (the OpenAI-compatible gateway) and `llmkit keys` (its virtual keys):
//! the settings resolved into a `GatewayConfig`, and the key commands' output.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_client::{Backend, LocalBackend};
use llmkit_gateway::{
    ClusterAdmin, ClusterSettings, Gateway, GatewayConfig, NewKey, Route, Upstream,
};
use llmkit_store::VirtualKey;
use secrecy::ExposeSecret;

use crate::app::Ctx;
use crate::error::CliError;
use crate::output;
use crate::settings::RouteUpstream;

/// `llmkit serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (use 0.0.0.0 to accept other machines).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (the address is printed).
    #[arg(long, default_value_t = 4000, value_name = "PORT")]
    pub port: u16,
    /// Largest request body accepted, in KiB (larger ones get 413).
    #[arg(long, default_value_t = 4096, value_name = "KIB")]
    pub body_limit_kib: usize,
    /// Seconds a connection may take to send a request head (also when idle between requests).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub header_timeout: u64,
    /// The environment variable holding the master key of the admin API (`/admin/*`) and
    /// the dashboard (`/ui`); default `[gateway] master_key_env`, else LLMKIT_MASTER_KEY.
    /// Without a master key both are off (404).
    #[arg(long, value_name = "VAR")]
    pub master_key_env: Option<String>,
}

/// `llmkit keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysAction {
    /// Create a key; its secret is printed once and never stored.
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Models the key may use (comma-separated); all when absent.
        #[arg(long, value_delimiter = ',', value_name = "MODELS")]
        models: Vec<String>,
        /// Most the key may spend per local day, in USD.
        #[arg(long, value_name = "USD", value_parser = crate::cli::parse_positive_f64)]
        budget_daily: Option<f64>,
        /// Lifetime: `30d`, `12h`, `90m` or `3600s`.
        #[arg(long, value_name = "DURATION", value_parser = llmkit_gateway::parse_lifetime)]
        expires: Option<f64>,
        /// Requests per minute the key may send (a 429 with Retry-After beyond it).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        rpm: Option<u32>,
        /// Tokens per minute: prompt plus max_tokens when sent, the real usage once known.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        tpm: Option<u32>,
        /// Requests the key may have in flight at once (a stream counts until it ends).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_concurrent: Option<u32>,
    },
    /// List the keys (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once.
    Revoke { id: String },
    /// Give a key a new secret (printed once); the old one stops working.
    Rotate { id: String },
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub(crate) async fn serve(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    if ctx.settings.client.needs_local_fallback() {
        // Exit 1, as for any other command that finds no API key (README: exit codes).
        return Err(CliError::failure(
            "`llmkit serve` needs an upstream API key",
            Some(
                "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server), or `llmkit \
                 config set api_key`"
                    .into(),
            ),
        )
        .into());
    }
    let accounting = crate::accounting::config(&ctx.settings, None, ctx.settings.cache.policy);
    let mut cfg = GatewayConfig::new(
        SocketAddr::new(args.host, args.port),
        // The gateway passes chat requests through as they came: never converted.
        ctx.settings
            .client
            .config()
            .api(llmkit_client::WireApi::Chat),
        ctx.store()?,
        accounting,
    );
    cfg.routes = routes(ctx).await?;
    cfg.body_limit = args.body_limit_kib.saturating_mul(1024);
    cfg.header_timeout = Duration::from_secs(args.header_timeout.max(1));
    cfg.cluster = cluster_settings(ctx, Some(args.port));
    cfg.master_key = ctx.settings.gateway.master_key.clone();
    let gateway = Gateway::bind(cfg).await.map_err(CliError::from)?;
    let addr = gateway.local_addr().map_err(CliError::from)?;
    output::line(&format!("llmkit gateway listening on http://{addr}"))?;
    if ctx.settings.gateway.master_key.is_some() {
        output::line(&format!(
            "dashboard at http://{addr}/ui; admin API at http://{addr}/admin (master key)"
        ))?;
    }
    gateway
        .run(shutdown_signal())
        .await
        .map_err(CliError::from)?;
    Ok(())
}

/// The `[gateway.routes]` for the gateway: each profile's client (passing chat requests
/// through unconverted) and each `local:` model loaded once, however many routes name it.
async fn routes(ctx: &Ctx) -> Result<Vec<Route>> {
    let mut local: HashMap<String, Backend> = HashMap::new();
    let mut out = Vec::new();
    for r in &ctx.settings.gateway.routes {
        let mut upstreams = Vec::with_capacity(r.upstreams.len());
        for (name, up) in &r.upstreams {
            let upstream = match up {
                RouteUpstream::Profile(c) => {
                    Upstream::Http(c.clone().api(llmkit_client::WireApi::Chat))
                }
                RouteUpstream::Local(spec) => match local.entry(spec.clone()) {
                    Entry::Occupied(e) => Upstream::Backend(e.get().clone()),
                    Entry::Vacant(e) => {
                        let model = ctx.load_local(spec).await?;
                        let backend = Backend::Local(LocalBackend::new(Some(model), None));
                        Upstream::Backend(e.insert(backend).clone())
                    }
                },
            };
            upstreams.push((name.clone(), upstream));
        }
        let mut route = Route::new(r.model.clone(), upstreams);
        route.balance = r.balance;
        out.push(route);
    }
    Ok(out)
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The shared-state settings when `[gateway] store` names PostgreSQL. Each replica spools
/// to its own file (by port), beside the SQLite store unless `[gateway] spool` says where.
fn cluster_settings(ctx: &Ctx, port: Option<u16>) -> Option<ClusterSettings> {
    let g = &ctx.settings.gateway;
    let url = g.store_url.clone()?;
    let spool = g.spool.clone().unwrap_or_else(|| {
        let name = match port {
            Some(p) if p != 0 => format!("gateway-ledger-spool-{p}.jsonl"),
            _ => format!("gateway-ledger-spool-pid{}.jsonl", std::process::id()),
        };
        ctx.settings
            .paths
            .store
            .parent()
            .map_or_else(|| name.clone().into(), |d| d.join(&name))
    });
    let mut s = ClusterSettings::new(url, spool);
    s.redis_url = g.redis_url.clone();
    s.key_cache_ttl = g.key_cache_ttl;
    s.limits_fallback = g.limits_fallback;
    Some(s)
}

pub(crate) async fn keys(ctx: &Ctx, args: KeysArgs) -> Result<()> {
    if let Some(shared) = cluster_settings(ctx, None) {
        let admin = ClusterAdmin::connect(&shared)
            .await
            .map_err(CliError::from)?;
        return keys_shared(ctx, &admin, args).await;
    }
    let store = ctx.store()?;
    match args.action {
        KeysAction::Create {
            name,
            models,
            budget_daily,
            expires,
            rpm,
            tpm,
            max_concurrent,
        } => {
            let spec = NewKey {
                name,
                models: models
                    .into_iter()
                    .filter(|m| !m.trim().is_empty())
                    .collect(),
                budget_daily_usd: budget_daily,
                rpm,
                tpm,
                max_concurrent,
                expires_in_secs: expires,
            };
            let (key, secret) =
                llmkit_gateway::create_key(&store, &spec).map_err(CliError::from)?;
            output::line(&format!("id:     {}", key.id))?;
            output::line(&format!("secret: {}", secret.expose_secret()))?;
            crate::app::notice("the secret is shown once: store it now");
            Ok(())
        }
        KeysAction::List { json } => print_keys(&store, store.key_list()?, json),
        KeysAction::Revoke { id } => {
            llmkit_gateway::revoke_key(&store, &id).map_err(CliError::from)?;
            output::line(&format!("revoked {id}"))
        }
        KeysAction::Rotate { id } => {
            let secret = llmkit_gateway::rotate_key(&store, &id).map_err(CliError::from)?;
            output::line(&format!("id:     {id}"))?;
            output::line(&format!("secret: {}", secret.expose_secret()))?;
            crate::app::notice("the old secret no longer works; the new one is shown once");
            Ok(())
        }
    }
}

/// `llmkit keys` against the replicas' PostgreSQL store; revocations and rotations are
/// announced over Redis when it is configured.
async fn keys_shared(ctx: &Ctx, admin: &ClusterAdmin, args: KeysArgs) -> Result<()> {
    match args.action {
        KeysAction::Create {
            name,
            models,
            budget_daily,
            expires,
            rpm,
            tpm,
            max_concurrent,
        } => {
            let spec = NewKey {
                name,
                models: models
                    .into_iter()
                    .filter(|m| !m.trim().is_empty())
                    .collect(),
                budget_daily_usd: budget_daily,
                rpm,
                tpm,
                max_concurrent,
                expires_in_secs: expires,
            };
            let (key, secret) = admin.create(&spec).await.map_err(CliError::from)?;
            output::line(&format!("id:     {}", key.id))?;
            output::line(&format!("secret: {}", secret.expose_secret()))?;
            crate::app::notice("the secret is shown once: store it now");
            Ok(())
        }
        KeysAction::List { json } => {
            let keys = admin.list().await.map_err(CliError::from)?;
            print_keys(&*ctx.store()?, keys, json)
        }
        KeysAction::Revoke { id } => {
            admin.revoke(&id).await.map_err(CliError::from)?;
            output::line(&format!("revoked {id}"))
        }
        KeysAction::Rotate { id } => {
            let secret = admin.rotate(&id).await.map_err(CliError::from)?;
            output::line(&format!("id:     {id}"))?;
            output::line(&format!("secret: {}", secret.expose_secret()))?;
            crate::app::notice("the old secret no longer works; the new one is shown once");
            Ok(())
        }
    }
}

/// `llmkit keys list`: a table, or JSON (never a secret or hash).
fn print_keys(store: &llmkit_store::Store, keys: Vec<VirtualKey>, json: bool) -> Result<()> {
    if json {
        return output::json(&keys);
    }
    let now = llmkit_store::now_secs();
    output::line(
        "ID            NAME                 STATUS   MODELS          BUDGET/DAY  LIMITS                CREATED",
    )?;
    for k in keys {
        let status = k.status(now);
        let models = if k.models.is_empty() {
            "*".to_string()
        } else {
            k.models.join(",")
        };
        let budget = k
            .budget_daily_usd
            .map_or_else(|| "-".to_string(), |b| format!("${b:.2}"));
        output::line(&format!(
            "{:<13} {:<20} {:<8} {:<15} {:<11} {:<21} {}",
            k.id,
            k.name,
            status,
            models,
            budget,
            limits_text(&k),
            store.local_datetime(k.created)
        ))?;
    }
    Ok(())
}

/// A key's limits for `keys list`: `60rpm 40000tpm 4conc`, or `-` when it has none.
fn limits_text(k: &llmkit_store::VirtualKey) -> String {
    let parts: Vec<String> = [(k.rpm, "rpm"), (k.tpm, "tpm"), (k.max_concurrent, "conc")]
        .into_iter()
        .filter_map(|(v, unit)| v.map(|v| format!("{v}{unit}")))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" ")
    }
}
