//! `PgStore`: the connection pool to PostgreSQL, with the schema migrated on connect.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::ClusterError;
use crate::pg_schema;

/// How a [`PgStore`] connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The most connections one replica holds.
    pub max_connections: usize,
    /// How long a request waits for a connection (also to connect) before PostgreSQL
    /// counts as unavailable.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            timeout: Duration::from_secs(2),
        }
    }
}

/// A pool of connections to the shared PostgreSQL database. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    timeout: Duration,
}

impl std::fmt::Debug for PgStore {
    // The URL may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and applies the migrations this build knows,
    /// under an advisory lock so that replicas starting together migrate once.
    pub async fn connect(url: &str, opts: &PgOptions) -> Result<Self, ClusterError> {
        let cfg: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| ClusterError::BadUrl {
                    what: "PostgreSQL",
                    message: e.to_string(),
                })?;
        let mut cfg = cfg;
        cfg.connect_timeout(opts.timeout);
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(opts.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.timeout))
            .create_timeout(Some(opts.timeout))
            .recycle_timeout(Some(opts.timeout))
            .build()
            .map_err(|e| ClusterError::PgUnavailable(e.to_string()))?;
        let store = Self {
            pool,
            timeout: opts.timeout,
        };
        let mut conn = store.conn().await?;
        pg_schema::migrate(&mut conn).await?;
        Ok(store)
    }

    /// A pooled connection, or `PgUnavailable` after the pool's timeout.
    pub(crate) async fn conn(&self) -> Result<Object, ClusterError> {
        self.pool
            .get()
            .await
            .map_err(|e| ClusterError::PgUnavailable(e.to_string()))
    }

    /// The schema version, which also tells that the database answers (`/readyz`).
    pub async fn schema_version(&self) -> Result<i32, ClusterError> {
        let conn = self.conn().await?;
        let query = conn.query_one("SELECT MAX(version) FROM llmkit_schema", &[]);
        let row = tokio::time::timeout(self.timeout, query)
            .await
            .map_err(|_| ClusterError::PgUnavailable("no answer in time".into()))??;
        Ok(row.get::<_, Option<i32>>(0).unwrap_or(0))
    }
}
