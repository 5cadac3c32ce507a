//! `llmkit cache stats|clear`: the response cache in the store.

use anyhow::Result;

use crate::app::Ctx;
use crate::cli::{CacheAction, CacheArgs};
use crate::output;

pub(crate) fn run(ctx: &Ctx, args: CacheArgs) -> Result<()> {
    let store = ctx.store()?;
    let ttl = ctx.settings.cache.ttl_secs;
    match args.action {
        CacheAction::Stats { json } => {
            let stats = store.cache_stats(ttl)?;
            if json {
                return output::json(&stats);
            }
            output::line(&format!(
                "{} entries ({} expired), {} hits, {} bytes of responses, TTL {}",
                stats.entries,
                stats.expired,
                stats.hits,
                stats.bytes,
                human_secs(ttl)
            ))
        }
        CacheAction::Clear { expired } => {
            let n = store.cache_clear(expired.then_some(ttl))?;
            output::line(&format!("removed {n} cached responses"))
        }
    }
}

fn human_secs(s: f64) -> String {
    if s >= 86_400.0 && s % 86_400.0 == 0.0 {
        format!("{}d", s / 86_400.0)
    } else if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else {
        format!("{s}s")
    }
}
