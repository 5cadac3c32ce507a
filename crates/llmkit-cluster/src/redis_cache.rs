//! The response cache shared by replicas: whole answers in Redis under the request's
//! cache key, with a time to live. Losing it costs only cache misses.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::error::ClusterError;
use crate::redis_conn;

/// A Redis-backed byte cache. Cheap to clone.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").finish_non_exhaustive()
    }
}

fn key(k: &str) -> String {
    format!("llmkit:cache:{k}")
}

impl RedisCache {
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let client = redis_conn::client(url)?;
        Ok(Self {
            conn: redis_conn::manager(&client, timeout).await?,
        })
    }

    pub async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        let mut conn = self.conn.clone();
        conn.get(key(k)).await.map_err(ClusterError::from_redis)
    }

    pub async fn put(&self, k: &str, value: &[u8], ttl: Duration) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(key(k), value, ttl.as_secs().max(1))
            .await
            .map_err(ClusterError::from_redis)
    }

    /// Whether Redis answers (`/readyz`).
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(())
    }
}
