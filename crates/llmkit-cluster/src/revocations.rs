//! Key changes fanned out to every replica over Redis pub/sub.
//!
//! A replica that revokes, rotates or changes a key publishes a [`KeyEvent`]; every replica
//! drops that key from its key cache at once. Pub/sub delivers at most once, so while the
//! subscription is down (or after a reconnect, when messages may have been missed) the
//! subscriber emits [`KeyEvent::Resync`]: the replica clears its whole key cache. Replicas
//! also re-read cached keys after a short TTL, so a message lost in transit costs at most
//! that TTL.

use std::time::Duration;

use futures::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::ClusterError;
use crate::redis_conn;

/// The pub/sub channel.
const CHANNEL: &str = "llmkit:keys";

/// What changed about the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum KeyEvent {
    /// The key was revoked: refuse it from now on.
    Revoked { id: String },
    /// The key's secret, scope, limits or budget changed: re-read it.
    Changed { id: String },
    /// Messages may have been missed: re-read every key.
    Resync,
}

/// Publishes and subscribes to key changes.
#[derive(Clone)]
pub struct Revocations {
    client: redis::Client,
    conn: ConnectionManager,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations").finish_non_exhaustive()
    }
}

impl Revocations {
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let client = redis_conn::client(url)?;
        let conn = redis_conn::manager(&client, timeout).await?;
        Ok(Self { client, conn })
    }

    /// Tells every subscribed replica about `event`; returns how many received it.
    pub async fn publish(&self, event: &KeyEvent) -> Result<u64, ClusterError> {
        let mut conn = self.conn.clone();
        let payload = serde_json::to_string(event)?;
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(payload)
            .query_async::<u64>(&mut conn)
            .await
            .map_err(ClusterError::from_redis)
    }

    /// Starts a subscriber task on the current runtime. Events arrive on the receiver;
    /// after every (re)connect, and once when the connection drops, it yields `Resync`.
    /// The task ends when the receiver is dropped.
    pub fn subscribe(&self, retry: Duration) -> mpsc::UnboundedReceiver<KeyEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(mut ps) = client.get_async_pubsub().await
                    && ps.subscribe(CHANNEL).await.is_ok()
                {
                    if tx.send(KeyEvent::Resync).is_err() {
                        return;
                    }
                    let mut stream = ps.on_message();
                    while let Some(msg) = stream.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        // An event this build does not know is treated as "re-read all".
                        let ev = serde_json::from_str(&payload).unwrap_or(KeyEvent::Resync);
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                    if tx.send(KeyEvent::Resync).is_err() {
                        return;
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(retry).await;
            }
        });
        rx
    }
}
