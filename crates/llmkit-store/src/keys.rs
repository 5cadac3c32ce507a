//! The gateway's virtual keys: a public id, a name, the model scope, a daily budget, rate
//! limits, an expiry and a revocation time, with the SHA-256 of the secret. The secret itself is never
//! given to the store; generating and checking secrets is the gateway's job.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::Store;
use crate::error::StoreError;

/// One virtual key as stored (without its hash).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VirtualKey {
    /// The public id: what the ledger's `profile` column and `/metrics` name.
    pub id: String,
    pub name: String,
    /// The models this key may use; empty means every model.
    pub models: Vec<String>,
    /// The most this key may spend per local calendar day, in USD.
    pub budget_daily_usd: Option<f64>,
    /// Requests per minute this key may send; `None` is no limit.
    pub rpm: Option<u32>,
    /// Tokens per minute (prompt plus the output budget, settled with the real usage).
    pub tpm: Option<u32>,
    /// Requests of this key in flight at once (streams count until they end).
    pub max_concurrent: Option<u32>,
    /// Unix seconds.
    pub created: f64,
    pub expires: Option<f64>,
    pub revoked: Option<f64>,
}

impl VirtualKey {
    /// Whether the key may be used at `now` (unix seconds).
    pub fn is_active(&self, now: f64) -> bool {
        self.revoked.is_none() && self.expires.is_none_or(|e| now < e)
    }

    /// `revoked`, `expired` or `active` at `now`, as listings show it.
    pub fn status(&self, now: f64) -> &'static str {
        if self.revoked.is_some() {
            "revoked"
        } else if !self.is_active(now) {
            "expired"
        } else {
            "active"
        }
    }

    /// Whether the key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

impl Store {
    /// Stores a new key with the SHA-256 of its secret.
    pub fn key_insert(&self, key: &VirtualKey, secret_sha256: &[u8; 32]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO keys (id, name, secret_sha256, models, budget_daily_usd, created, expires, revoked,
                                   rpm, tpm, max_concurrent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    key.id,
                    key.name,
                    &secret_sha256[..],
                    key.models.join(","),
                    key.budget_daily_usd,
                    key.created,
                    key.expires,
                    key.revoked,
                    key.rpm,
                    key.tpm,
                    key.max_concurrent,
                ],
            )?;
            Ok(())
        })
    }

    /// A key and the SHA-256 of its secret, by public id.
    pub fn key_get(&self, id: &str) -> Result<Option<(VirtualKey, Vec<u8>)>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT id, name, models, budget_daily_usd, created, expires, revoked,
                    rpm, tpm, max_concurrent, secret_sha256
             FROM keys WHERE id = ?1",
            [id],
            |r| Ok((row_to_key(r)?, r.get::<_, Vec<u8>>(10)?)),
        )
        .optional()
        .map_err(|e| self.map_err(e))
    }

    /// Every key, oldest first.
    pub fn key_list(&self) -> Result<Vec<VirtualKey>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, models, budget_daily_usd, created, expires, revoked,
                    rpm, tpm, max_concurrent
             FROM keys ORDER BY created, id",
        )?;
        let rows = stmt.query_map([], row_to_key)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// Marks a key revoked at `now`; false when no key has this id.
    pub fn key_revoke(&self, id: &str, now: f64) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE keys SET revoked = COALESCE(revoked, ?2) WHERE id = ?1",
                params![id, now],
            )?;
            Ok(n > 0)
        })
    }

    /// Replaces a live key's secret hash (the old secret stops working at once); false
    /// when no unrevoked key has this id.
    pub fn key_rotate(&self, id: &str, secret_sha256: &[u8; 32]) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE keys SET secret_sha256 = ?2 WHERE id = ?1 AND revoked IS NULL",
                params![id, &secret_sha256[..]],
            )?;
            Ok(n > 0)
        })
    }
}

fn row_to_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<VirtualKey> {
    let models: String = r.get(2)?;
    Ok(VirtualKey {
        id: r.get(0)?,
        name: r.get(1)?,
        models: models
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        budget_daily_usd: r.get(3)?,
        created: r.get(4)?,
        expires: r.get(5)?,
        revoked: r.get(6)?,
        rpm: r.get(7)?,
        tpm: r.get(8)?,
        max_concurrent: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_revoke_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let key = VirtualKey {
            id: "abc".into(),
            name: "app".into(),
            models: vec!["gpt-4o-mini".into()],
            budget_daily_usd: Some(1.5),
            rpm: Some(60),
            tpm: None,
            max_concurrent: Some(2),
            created: 10.0,
            expires: Some(20.0),
            revoked: None,
        };
        store.key_insert(&key, &[7; 32]).unwrap();
        let (got, hash) = store.key_get("abc").unwrap().unwrap();
        assert_eq!(got, key);
        assert_eq!(hash, vec![7; 32]);
        assert!(got.is_active(15.0) && !got.is_active(20.0));
        assert!(got.allows("gpt-4o-mini") && !got.allows("gpt-4o"));
        assert!(store.key_rotate("abc", &[8; 32]).unwrap());
        assert_eq!(store.key_get("abc").unwrap().unwrap().1, vec![8; 32]);
        assert!(store.key_revoke("abc", 12.0).unwrap());
        assert!(!store.key_rotate("abc", &[9; 32]).unwrap());
        assert!(!store.key_revoke("nope", 12.0).unwrap());
        assert_eq!(store.key_list().unwrap()[0].revoked, Some(12.0));
        assert!(store.key_get("nope").unwrap().is_none());
    }

    #[test]
    fn scoped_reservations_count_only_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let b = crate::Budgets {
            daily_usd: Some(1.0),
            monthly_usd: None,
        };
        let granted = |r| matches!(r, crate::Reservation::Granted(_));
        assert!(granted(store.reserve_scoped(Some("a"), &b, 0.8).unwrap()));
        assert!(!granted(store.reserve_scoped(Some("a"), &b, 0.3).unwrap()));
        assert!(granted(store.reserve_scoped(Some("b"), &b, 0.8).unwrap()));
        // The unscoped budget sees both keys' reservations.
        assert!(!granted(store.reserve(&b, 0.1).unwrap()));
    }
}
