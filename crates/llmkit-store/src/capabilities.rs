//! What servers lack: the features a base URL rejected (its status and message), so that a
//! later run sends the fallback at once. The store keeps names as text; what they mean is
//! the client's business.

use rusqlite::params;
use serde::Serialize;

use crate::db::Store;
use crate::error::StoreError;
use crate::ledger::now_secs;

/// The longest server message kept with a row.
const MAX_MESSAGE_CHARS: usize = 300;

/// One feature a server rejected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingFeature {
    /// The base URL the server was reached at (without credentials).
    pub base_url: String,
    /// The feature's name (`json_schema`, `stream_options`, `responses`).
    pub feature: String,
    /// The HTTP status of the rejection.
    pub status: u16,
    /// The server's error message (at most 300 characters).
    pub message: String,
    /// When it was learnt, in Unix seconds.
    pub learned: f64,
}

impl Store {
    /// Remembers that `base_url` rejected `feature` (replacing what was known of it).
    pub fn remember_missing_feature(
        &self,
        base_url: &str,
        feature: &str,
        status: u16,
        message: &str,
    ) -> Result<(), StoreError> {
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO missing_features (base_url, feature, status, message, learned)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![base_url, feature, status, message, now],
            )?;
            Ok(())
        })
    }

    /// The features known to be missing: of `base_url`, or of every server (`None`), by
    /// base URL then feature.
    pub fn missing_features(
        &self,
        base_url: Option<&str>,
    ) -> Result<Vec<MissingFeature>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT base_url, feature, status, message, learned FROM missing_features
                 WHERE ?1 IS NULL OR base_url = ?1 ORDER BY base_url, feature",
            )
            .map_err(|e| self.map_err(e))?;
        let rows = stmt
            .query_map([base_url], |r| {
                Ok(MissingFeature {
                    base_url: r.get(0)?,
                    feature: r.get(1)?,
                    status: r.get(2)?,
                    message: r.get(3)?,
                    learned: r.get(4)?,
                })
            })
            .map_err(|e| self.map_err(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// Forgets what is known of `base_url` (or of every server); returns how many rows went.
    pub fn forget_missing_features(&self, base_url: Option<&str>) -> Result<u64, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM missing_features WHERE ?1 IS NULL OR base_url = ?1",
                [base_url],
            )?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remember_list_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let a = "http://a/v1";
        store
            .remember_missing_feature(a, "json_schema", 400, &"x".repeat(1000))
            .unwrap();
        store
            .remember_missing_feature(a, "stream_options", 400, "no")
            .unwrap();
        store
            .remember_missing_feature("http://b/v1", "responses", 404, "gone")
            .unwrap();
        // Learning it again replaces the row.
        store
            .remember_missing_feature(a, "json_schema", 500, "again")
            .unwrap();
        let rows = store.missing_features(Some(a)).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.feature.as_str()).collect();
        assert_eq!(names, ["json_schema", "stream_options"]);
        assert_eq!((rows[0].status, rows[0].message.as_str()), (500, "again"));
        assert_eq!(store.missing_features(None).unwrap().len(), 3);
        assert_eq!(store.forget_missing_features(Some(a)).unwrap(), 2);
        assert!(store.missing_features(Some(a)).unwrap().is_empty());
        assert_eq!(store.forget_missing_features(None).unwrap(), 1);
        assert!(store.missing_features(None).unwrap().is_empty());
    }

    #[test]
    fn long_messages_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .remember_missing_feature("u", "json_schema", 400, &"é".repeat(1000))
            .unwrap();
        let rows = store.missing_features(None).unwrap();
        assert_eq!(rows[0].message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
