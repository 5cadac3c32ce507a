//! The replicas' shared state plugged into the gateway (`[gateway] store = "postgres://..."`):
//! keys read from PostgreSQL through a short-lived cache that revocations over Redis clear,
//! budgets and the ledger in PostgreSQL as the accounting step's [`Backing`], the response
//! cache in Redis, and what `/readyz` says about each.
//!
//! Degraded modes: with PostgreSQL down, keys already cached keep authenticating, requests
//! that need a reservation (keys with a budget) are refused with 503, and ledger rows go to
//! the local spool until it is back. With Redis down the response cache is bypassed and
//! key changes reach this replica within the key-cache TTL instead of at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmkit_accounting::{Backing, BackingError};
use llmkit_cluster::{
    KeyEvent, LedgerEntry, LedgerWriter, PeriodLimits, Periods, PgOptions, PgReservation, PgStore,
    RedisCache, Revocations, Spool,
};
use llmkit_store::{Budgets, LedgerRow, Reservation, VirtualKey, now_secs};
use llmkit_types::ChatCompletionResponse;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::GatewayError;
use crate::keys::{NewKey, hash, new_key, secret_for};
use crate::limits::Limiter;
use crate::shared_limits::{LimitsFallback, RedisLimiter};

/// Where the shared state lives, resolved by the caller.
#[derive(Clone)]
pub struct ClusterSettings {
    /// `postgres://...`: keys, reservations and the ledger.
    pub store_url: SecretString,
    /// `redis://...`: the response cache and key-change fan-out (optional).
    pub redis_url: Option<SecretString>,
    /// The local file ledger rows wait in while PostgreSQL is down.
    pub spool_path: PathBuf,
    /// How long a replica trusts a key it read, when no change message arrives.
    pub key_cache_ttl: Duration,
    /// The wait for a connection or an answer before a service counts as down.
    pub timeout: Duration,
    pub max_connections: usize,
    /// What per-key limits do while Redis is down.
    pub limits_fallback: LimitsFallback,
}

impl std::fmt::Debug for ClusterSettings {
    // The URLs may hold passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("spool_path", &self.spool_path)
            .field("key_cache_ttl", &self.key_cache_ttl)
            .finish_non_exhaustive()
    }
}

impl ClusterSettings {
    pub fn new(store_url: SecretString, spool_path: PathBuf) -> Self {
        Self {
            store_url,
            redis_url: None,
            spool_path,
            key_cache_ttl: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            max_connections: 16,
            limits_fallback: LimitsFallback::default(),
        }
    }
}

type KeyRecord = Option<(VirtualKey, Vec<u8>)>;

/// The connected shared state of one replica.
pub(crate) struct Cluster {
    pub(crate) pg: PgStore,
    pub(crate) writer: LedgerWriter,
    cache: Option<RedisCache>,
    redis: Option<Revocations>,
    /// The per-key limits in Redis, when it is configured.
    pub(crate) limiter: Option<Arc<dyn Limiter>>,
    /// Keys read from PostgreSQL, with when they were read (`None`: stale after a resync,
    /// re-read before use but still a fallback while PostgreSQL is down).
    keys: Mutex<HashMap<String, (KeyRecord, Option<Instant>)>>,
    key_ttl: Duration,
    handle: Handle,
}

impl Cluster {
    /// Connects PostgreSQL (migrating it) and Redis, starts the ledger writer and the
    /// key-change subscriber. Needs the multi-threaded Tokio runtime: the accounting step
    /// is synchronous and waits for PostgreSQL with `block_in_place`.
    pub(crate) async fn connect(s: &ClusterSettings) -> Result<Arc<Self>, GatewayError> {
        let handle = Handle::current();
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err(GatewayError::Runtime);
        }
        let pg = PgStore::connect(
            s.store_url.expose_secret(),
            &PgOptions {
                max_connections: s.max_connections,
                timeout: s.timeout,
            },
        )
        .await?;
        let writer = LedgerWriter::spawn(
            pg.clone(),
            Spool::new(&s.spool_path),
            Duration::from_millis(500),
        );
        let (cache, redis, limiter) = match &s.redis_url {
            Some(url) => {
                let limits = llmkit_cluster::RedisLimits::connect(
                    url.expose_secret(),
                    s.timeout,
                    // A lease outlives its request only when this replica dies.
                    Duration::from_secs(600),
                )
                .await?;
                let limiter: Arc<dyn Limiter> =
                    Arc::new(RedisLimiter::new(limits, s.limits_fallback));
                (
                    Some(RedisCache::connect(url.expose_secret(), s.timeout).await?),
                    Some(Revocations::connect(url.expose_secret(), s.timeout).await?),
                    Some(limiter),
                )
            }
            None => (None, None, None),
        };
        let cluster = Arc::new(Self {
            pg,
            writer,
            cache,
            redis,
            limiter,
            keys: Mutex::new(HashMap::new()),
            key_ttl: s.key_cache_ttl,
            handle,
        });
        if let Some(r) = &cluster.redis {
            let mut events = r.subscribe(Duration::from_millis(500));
            let weak = Arc::downgrade(&cluster);
            tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    let Some(c) = weak.upgrade() else { return };
                    c.forget(&ev);
                }
            });
        }
        Ok(cluster)
    }

    fn key_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (KeyRecord, Option<Instant>)>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, ev: &KeyEvent) {
        match ev {
            KeyEvent::Revoked { id } | KeyEvent::Changed { id } => {
                self.key_cache().remove(id);
            }
            // Messages may have been missed: re-read every key before its next use. Keep the
            // records as a fallback for a PostgreSQL outage (no key can be revoked during
            // one: revoking writes PostgreSQL first).
            KeyEvent::Resync => {
                for entry in self.key_cache().values_mut() {
                    entry.1 = None;
                }
            }
        }
    }

    /// A key and its hash by id: from the cache while it is younger than the TTL, else
    /// from PostgreSQL. While PostgreSQL is down, a cached key is still used.
    pub(crate) async fn key(&self, id: &str) -> Result<KeyRecord, llmkit_cluster::ClusterError> {
        let cached = self.key_cache().get(id).cloned();
        if let Some((rec, Some(at))) = &cached
            && at.elapsed() < self.key_ttl
        {
            return Ok(rec.clone());
        }
        match self.pg.key_get(id).await {
            Ok(rec) => {
                self.key_cache()
                    .insert(id.to_string(), (rec.clone(), Some(Instant::now())));
                Ok(rec)
            }
            Err(e) if e.is_unavailable() => match cached {
                Some((rec, _)) => Ok(rec),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// What `/readyz` reports, and whether the replica can take requests (PostgreSQL up).
    pub(crate) async fn readiness(&self) -> (bool, serde_json::Value) {
        let pg = self.pg.schema_version().await;
        let redis = match &self.cache {
            Some(c) => Some(c.ping().await),
            None => None,
        };
        let health = self.writer.health();
        let state = |r: Result<(), &llmkit_cluster::ClusterError>| match r {
            Ok(()) => json!("ok"),
            Err(e) => json!(format!("down: {e}")),
        };
        let ready = pg.is_ok();
        let degraded = !ready || redis.as_ref().is_some_and(Result::is_err) || health.spooled > 0;
        let status = match (ready, degraded) {
            (false, _) => "unavailable",
            (true, true) => "degraded",
            (true, false) => "ready",
        };
        (
            ready,
            json!({
                "status": status,
                "store": "postgres",
                "postgres": state(pg.as_ref().map(|_| ())),
                "redis": redis.as_ref().map_or(json!("not configured"), |r| state(r.as_ref().copied())),
                "ledger_spooled": health.spooled,
                "ledger_written": health.written,
                "reservations": if ready { "accepted" } else { "refused (503)" },
                "cache": match &redis { Some(Ok(())) => "redis", Some(Err(_)) => "bypassed", None => "off" },
            }),
        )
    }

    /// Waits for queued ledger rows (on shutdown).
    pub(crate) async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Runs `fut` to completion from the synchronous accounting step.
    fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        tokio::task::block_in_place(|| self.handle.block_on(fut))
    }
}

/// The accounting step's persistence over the shared state.
pub(crate) struct ClusterBacking(pub(crate) Arc<Cluster>);

fn request_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Backing for ClusterBacking {
    fn reserve(
        &self,
        scope: Option<&str>,
        budgets: &Budgets,
        estimate_usd: f64,
    ) -> Result<Reservation, BackingError> {
        let now = now_secs();
        let limits = PeriodLimits {
            daily_usd: budgets.daily_usd,
            monthly_usd: budgets.monthly_usd,
        };
        let scope = scope.unwrap_or("*");
        let r = self
            .0
            .block_on(
                self.0
                    .pg
                    .reserve(scope, &Periods::utc(now), &limits, estimate_usd, now),
            )
            .map_err(|e| Box::new(e) as BackingError)?;
        Ok(match r {
            PgReservation::Granted(id) => Reservation::Granted(id),
            PgReservation::Refused {
                period,
                spent,
                limit,
            } => Reservation::Refused {
                period,
                spent,
                limit,
            },
        })
    }

    fn record(&self, row: LedgerRow) {
        self.0.writer.record(LedgerEntry {
            request_id: request_id(),
            scope: row.profile.clone(),
            periods: Periods::utc(row.ts),
            reservation: row.reservation,
            row,
        });
    }

    fn cache_lookup(&self, key: &str, ttl_secs: f64) -> Option<ChatCompletionResponse> {
        // The entry carries when it was stored, so the configured TTL applies as it does
        // in the SQLite cache (Redis's own expiry only bounds how long it is kept).
        let cache = self.0.cache.as_ref()?;
        let bytes = self.0.block_on(cache.get(key)).ok()??;
        let entry: CachedAnswer = serde_json::from_slice(&bytes).ok()?;
        (now_secs() - entry.stored < ttl_secs).then_some(entry.response)
    }

    fn cache_store(&self, key: &str, _model: &str, resp: &ChatCompletionResponse) {
        let Some(cache) = self.0.cache.clone() else {
            return;
        };
        let entry = CachedAnswer {
            stored: now_secs(),
            response: resp.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&entry) else {
            return;
        };
        let key = key.to_string();
        // Off the request path; a failed write only costs a later miss.
        self.0.handle.spawn(async move {
            let _ = cache.put(&key, &bytes, REDIS_CACHE_KEEP).await;
        });
    }
}

/// How long Redis keeps a cached answer at most; the configured TTL is checked on lookup.
const REDIS_CACHE_KEEP: Duration = Duration::from_secs(30 * 86_400);

/// A cached answer in Redis, with the unix time it was stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedAnswer {
    stored: f64,
    response: ChatCompletionResponse,
}

/// `llmkit keys` over the shared store: the same records and secrets as on one node, and
/// every change announced to the replicas.
pub struct ClusterAdmin {
    pg: PgStore,
    redis: Option<Revocations>,
}

impl ClusterAdmin {
    pub async fn connect(s: &ClusterSettings) -> Result<Self, GatewayError> {
        let pg = PgStore::connect(
            s.store_url.expose_secret(),
            &PgOptions {
                max_connections: 2,
                timeout: s.timeout,
            },
        )
        .await?;
        let redis = match &s.redis_url {
            Some(url) => Some(Revocations::connect(url.expose_secret(), s.timeout).await?),
            None => None,
        };
        Ok(Self { pg, redis })
    }

    pub async fn create(&self, spec: &NewKey) -> Result<(VirtualKey, SecretString), GatewayError> {
        create_shared(&self.pg, spec).await
    }

    pub async fn list(&self) -> Result<Vec<VirtualKey>, GatewayError> {
        Ok(self.pg.key_list().await?)
    }

    pub async fn revoke(&self, id: &str) -> Result<(), GatewayError> {
        revoke_shared(&self.pg, self.redis.as_ref(), id).await
    }

    pub async fn rotate(&self, id: &str) -> Result<SecretString, GatewayError> {
        rotate_shared(&self.pg, self.redis.as_ref(), id).await
    }
}

/// The key changes of `llmkit keys` and of the admin API, over PostgreSQL.
impl Cluster {
    pub(crate) async fn create_key(
        &self,
        spec: &NewKey,
    ) -> Result<(VirtualKey, SecretString), GatewayError> {
        create_shared(&self.pg, spec).await
    }

    /// Revokes a key for every replica: this one forgets it at once, the others on the
    /// Redis message (or within the key-cache TTL).
    pub(crate) async fn revoke_key(&self, id: &str) -> Result<(), GatewayError> {
        revoke_shared(&self.pg, self.redis.as_ref(), id).await?;
        self.forget(&KeyEvent::Revoked { id: id.to_string() });
        Ok(())
    }

    pub(crate) async fn rotate_key(&self, id: &str) -> Result<SecretString, GatewayError> {
        let secret = rotate_shared(&self.pg, self.redis.as_ref(), id).await?;
        self.forget(&KeyEvent::Changed { id: id.to_string() });
        Ok(secret)
    }
}

async fn create_shared(
    pg: &PgStore,
    spec: &NewKey,
) -> Result<(VirtualKey, SecretString), GatewayError> {
    let (key, secret) = new_key(spec)?;
    pg.key_insert(&key, &hash(secret.expose_secret())).await?;
    Ok((key, secret))
}

async fn revoke_shared(
    pg: &PgStore,
    redis: Option<&Revocations>,
    id: &str,
) -> Result<(), GatewayError> {
    if !pg.key_revoke(id, now_secs()).await? {
        return Err(GatewayError::UnknownKey(id.to_string()));
    }
    announce(redis, KeyEvent::Revoked { id: id.to_string() }).await;
    Ok(())
}

async fn rotate_shared(
    pg: &PgStore,
    redis: Option<&Revocations>,
    id: &str,
) -> Result<SecretString, GatewayError> {
    let secret = secret_for(id);
    if !pg.key_rotate(id, &hash(secret.expose_secret())).await? {
        return Err(GatewayError::UnknownKey(id.to_string()));
    }
    announce(redis, KeyEvent::Changed { id: id.to_string() }).await;
    Ok(secret)
}

/// Tells the other replicas; a lost message is covered by their key-cache TTL.
async fn announce(redis: Option<&Revocations>, ev: KeyEvent) {
    if let Some(r) = redis {
        let _ = r.publish(&ev).await;
    }
}
