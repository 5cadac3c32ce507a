//! Virtual keys in PostgreSQL: the same records as the SQLite store's (`VirtualKey` plus
//! the SHA-256 of the secret), shared by every replica.

use llmkit_store::VirtualKey;
use tokio_postgres::Row;

use crate::error::ClusterError;
use crate::pg::PgStore;

impl PgStore {
    /// Stores a new key with the SHA-256 of its secret.
    pub async fn key_insert(
        &self,
        key: &VirtualKey,
        secret_sha256: &[u8; 32],
    ) -> Result<(), ClusterError> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO llmkit_keys (id, name, secret_sha256, models, budget_daily_usd, created,
                 expires, revoked, rpm, tpm, max_concurrent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &key.id,
                &key.name,
                &&secret_sha256[..],
                &key.models,
                &key.budget_daily_usd,
                &key.created,
                &key.expires,
                &key.revoked,
                &key.rpm.map(i64::from),
                &key.tpm.map(i64::from),
                &key.max_concurrent.map(i64::from),
            ],
        )
        .await?;
        Ok(())
    }

    /// A key and the SHA-256 of its secret, by public id.
    pub async fn key_get(&self, id: &str) -> Result<Option<(VirtualKey, Vec<u8>)>, ClusterError> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                "SELECT id, name, models, budget_daily_usd, created, expires, revoked,
                     rpm, tpm, max_concurrent, secret_sha256
                 FROM llmkit_keys WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| (row_to_key(&r), r.get::<_, Vec<u8>>(10))))
    }

    /// Every key, oldest first.
    pub async fn key_list(&self) -> Result<Vec<VirtualKey>, ClusterError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT id, name, models, budget_daily_usd, created, expires, revoked,
                     rpm, tpm, max_concurrent
                 FROM llmkit_keys ORDER BY created, id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(row_to_key).collect())
    }

    /// Marks a key revoked at `now`; false when no key has this id.
    pub async fn key_revoke(&self, id: &str, now: f64) -> Result<bool, ClusterError> {
        let conn = self.conn().await?;
        let n = conn
            .execute(
                "UPDATE llmkit_keys SET revoked = COALESCE(revoked, $2) WHERE id = $1",
                &[&id, &now],
            )
            .await?;
        Ok(n > 0)
    }

    /// Replaces a live key's secret hash; false when no unrevoked key has this id.
    pub async fn key_rotate(
        &self,
        id: &str,
        secret_sha256: &[u8; 32],
    ) -> Result<bool, ClusterError> {
        let conn = self.conn().await?;
        let n = conn
            .execute(
                "UPDATE llmkit_keys SET secret_sha256 = $2 WHERE id = $1 AND revoked IS NULL",
                &[&id, &&secret_sha256[..]],
            )
            .await?;
        Ok(n > 0)
    }
}

fn row_to_key(r: &Row) -> VirtualKey {
    let limit = |i: usize| {
        r.get::<_, Option<i64>>(i)
            .and_then(|v| u32::try_from(v).ok())
    };
    VirtualKey {
        id: r.get(0),
        name: r.get(1),
        models: r.get(2),
        budget_daily_usd: r.get(3),
        created: r.get(4),
        expires: r.get(5),
        revoked: r.get(6),
        rpm: limit(7),
        tpm: limit(8),
        max_concurrent: limit(9),
    }
}
