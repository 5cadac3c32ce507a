//! Shared helpers: the service URLs, unique names and connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmkit_cluster::{PgOptions, PgStore};
use llmkit_testkit::fixtures::require_service;

pub(crate) fn pg_url() -> Option<String> {
    require_service("LLMKIT_TEST_POSTGRES_URL")
}

pub(crate) fn redis_url() -> Option<String> {
    require_service("LLMKIT_TEST_REDIS_URL")
}

/// A name no other test (or earlier run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub(crate) async fn pg(url: &str) -> PgStore {
    PgStore::connect(
        url,
        &PgOptions {
            max_connections: 8,
            timeout: Duration::from_secs(2),
        },
    )
    .await
    .unwrap()
}
