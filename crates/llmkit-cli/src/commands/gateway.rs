//! `llmkit serve` (the OpenAI-compatible gateway) and `llmkit keys` (its virtual keys):
//! the settings resolved into a `GatewayConfig`, and the key commands' output.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_gateway::{Gateway, GatewayConfig, NewKey};
use secrecy::ExposeSecret;

use crate::app::Ctx;
use crate::error::CliError;
use crate::output;

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
        #[arg(long, value_name = "DURATION", value_parser = parse_lifetime)]
        expires: Option<f64>,
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
        return Err(CliError::usage(
            "`llmkit serve` needs an upstream API key",
            "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server), or `llmkit config set api_key`",
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
    cfg.body_limit = args.body_limit_kib.saturating_mul(1024);
    cfg.header_timeout = Duration::from_secs(args.header_timeout.max(1));
    let gateway = Gateway::bind(cfg).await.map_err(CliError::from)?;
    let addr = gateway.local_addr().map_err(CliError::from)?;
    output::line(&format!("llmkit gateway listening on http://{addr}"))?;
    gateway
        .run(shutdown_signal())
        .await
        .map_err(CliError::from)?;
    Ok(())
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

pub(crate) fn keys(ctx: &Ctx, args: KeysArgs) -> Result<()> {
    let store = ctx.store()?;
    match args.action {
        KeysAction::Create {
            name,
            models,
            budget_daily,
            expires,
        } => {
            let spec = NewKey {
                name,
                models: models
                    .into_iter()
                    .filter(|m| !m.trim().is_empty())
                    .collect(),
                budget_daily_usd: budget_daily,
                expires_in_secs: expires,
            };
            let (key, secret) =
                llmkit_gateway::create_key(&store, &spec).map_err(CliError::from)?;
            output::line(&format!("id:     {}", key.id))?;
            output::line(&format!("secret: {}", secret.expose_secret()))?;
            crate::app::notice("the secret is shown once: store it now");
            Ok(())
        }
        KeysAction::List { json } => {
            let keys = store.key_list()?;
            if json {
                return output::json(&keys);
            }
            let now = llmkit_store::now_secs();
            output::line(
                "ID            NAME                 STATUS   MODELS          BUDGET/DAY  CREATED",
            )?;
            for k in keys {
                let status = if k.revoked.is_some() {
                    "revoked"
                } else if !k.is_active(now) {
                    "expired"
                } else {
                    "active"
                };
                let models = if k.models.is_empty() {
                    "*".to_string()
                } else {
                    k.models.join(",")
                };
                let budget = k
                    .budget_daily_usd
                    .map_or_else(|| "-".to_string(), |b| format!("${b:.2}"));
                output::line(&format!(
                    "{:<13} {:<20} {:<8} {:<15} {:<11} {}",
                    k.id,
                    k.name,
                    status,
                    models,
                    budget,
                    store.local_datetime(k.created)
                ))?;
            }
            Ok(())
        }
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

/// `30d`, `12h`, `90m`, `3600s` as seconds.
fn parse_lifetime(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (num, unit) = text.split_at(text.char_indices().last().map_or(split, |(i, _)| i));
    let scale = match unit {
        "d" => 86_400.0,
        "h" => 3_600.0,
        "m" => 60.0,
        "s" => 1.0,
        _ => return Err("use a number with d, h, m or s, e.g. 30d".to_string()),
    };
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n * scale),
        _ => Err("use a positive number with d, h, m or s, e.g. 30d".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("30d"), Ok(30.0 * 86_400.0));
        assert_eq!(parse_lifetime("90m"), Ok(5_400.0));
        assert!(parse_lifetime("30").is_err());
        assert!(parse_lifetime("-1h").is_err());
        assert!(parse_lifetime("").is_err());
        assert!(parse_lifetime("é").is_err());
    }
}
