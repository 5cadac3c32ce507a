//! One way to open Redis: a reconnecting connection manager with connect and response
//! timeouts, so that a Redis that is down or hung costs a request a bounded wait.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::ClusterError;

/// Parses `url` into a client (no connection yet).
pub(crate) fn client(url: &str) -> Result<redis::Client, ClusterError> {
    redis::Client::open(url).map_err(|e| ClusterError::BadUrl {
        what: "Redis",
        message: e.to_string(),
    })
}

/// Connects a manager that reconnects by itself after Redis comes back.
pub(crate) async fn manager(
    client: &redis::Client,
    timeout: Duration,
) -> Result<ConnectionManager, ClusterError> {
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    client
        .get_connection_manager_with_config(cfg)
        .await
        .map_err(ClusterError::from_redis)
}
