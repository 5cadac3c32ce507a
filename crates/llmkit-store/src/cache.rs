//! The response cache: responses keyed by a hash of the normalised request, with a TTL.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use llmkit_types::{ChatCompletionRequest, ChatCompletionResponse};

use crate::db::Store;
use crate::error::StoreError;
use crate::ledger::now_secs;

/// What `llmkit cache stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CacheStats {
    pub entries: u64,
    pub expired: u64,
    pub hits: u64,
    pub bytes: u64,
}

/// The cache key of a request: SHA-256 of its JSON with object keys sorted and the fields
/// that do not change the answer (`stream`, `stream_options`, `user`) removed.
pub fn cache_key(req: &ChatCompletionRequest) -> String {
    let mut v = serde_json::to_value(req).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for k in ["stream", "stream_options", "user"] {
            m.remove(k);
        }
    }
    let mut text = String::new();
    canonical(&v, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes JSON with sorted object keys, so that field order never changes the key.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

impl Store {
    /// A fresh (younger than `ttl_secs`) cached response for `key`.
    pub fn cache_lookup(
        &self,
        key: &str,
        ttl_secs: f64,
    ) -> Result<Option<ChatCompletionResponse>, StoreError> {
        let min_created = now_secs() - ttl_secs;
        let text: Option<String> = {
            let conn = self.conn();
            conn.query_row(
                "SELECT response FROM cache WHERE key = ?1 AND created >= ?2",
                params![key, min_created],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.map_err(e))?
        };
        let Some(text) = text else { return Ok(None) };
        // Counting hits is best effort: a busy store must not fail a cache hit.
        let _ = self.write(|tx| {
            tx.execute("UPDATE cache SET hits = hits + 1 WHERE key = ?1", [key])?;
            Ok(())
        });
        Ok(Some(serde_json::from_str(&text)?))
    }

    /// Stores (or replaces) the response for `key`.
    pub fn cache_store(
        &self,
        key: &str,
        model: &str,
        resp: &ChatCompletionResponse,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(resp)?;
        let now = now_secs();
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO cache (key, model, response, created, hits) VALUES (?1, ?2, ?3, ?4, 0)",
                params![key, model, text, now],
            )?;
            Ok(())
        })
    }

    /// Entry counts and size.
    pub fn cache_stats(&self, ttl_secs: f64) -> Result<CacheStats, StoreError> {
        let min_created = now_secs() - ttl_secs;
        let conn = self.conn();
        let (entries, expired, hits, bytes): (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(created < ?1), 0), COALESCE(SUM(hits), 0),
                        COALESCE(SUM(LENGTH(response)), 0) FROM cache",
                [min_created],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(|e| self.map_err(e))?;
        Ok(CacheStats {
            entries: entries as u64,
            expired: expired as u64,
            hits: hits as u64,
            bytes: bytes as u64,
        })
    }

    /// Removes every entry (or only expired ones); returns how many were removed.
    pub fn cache_clear(&self, only_expired_ttl: Option<f64>) -> Result<u64, StoreError> {
        self.write(|tx| {
            let n = match only_expired_ttl {
                Some(ttl) => {
                    tx.execute("DELETE FROM cache WHERE created < ?1", [now_secs() - ttl])?
                }
                None => tx.execute("DELETE FROM cache", [])?,
            };
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use llmkit_types::ChatMessage;

    use super::*;

    #[test]
    fn key_ignores_streaming_and_user() {
        let a = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]).temperature(0.0);
        let mut b = a.clone().streaming();
        b.user = Some("me".into());
        assert_eq!(cache_key(&a), cache_key(&b));
        let c = a.clone().temperature(0.5);
        assert_ne!(cache_key(&a), cache_key(&c));
        let d = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi!")]).temperature(0.0);
        assert_ne!(cache_key(&a), cache_key(&d));
    }
}
