//! The PostgreSQL schema and its migrations, applied once under an advisory lock.
//!
//! - `llmkit_keys`: virtual keys (public id, SHA-256 of the secret, scope, budget, expiry,
//!   and from version 2 the RPM, TPM and concurrency limits).
//! - `llmkit_spend`: per scope and calendar period, the settled spend and the outstanding
//!   reservations. A reservation locks these rows (`FOR UPDATE`, in (scope, period) order),
//!   which is what makes budgets hold across replicas.
//! - `llmkit_reservations`: each outstanding reservation, so it can be settled or released
//!   (also when the replica that made it died).
//! - `llmkit_ledger`: one row per request, unique by request id (a replayed row is ignored);
//!   from version 2 it marks rows whose tokens were counted locally (a stream cut short),
//!   from version 3 it names the upstream that served the request.
//! - `llmkit_usage_daily`: the ledger rolled up per day, scope and model (from version 3
//!   also per upstream, `''` for none) in the same transaction as the insert, so `usage`
//!   reads a few rows whatever the ledger's size.

use deadpool_postgres::Object;

use crate::error::ClusterError;

/// The newest schema version this build knows.
pub const PG_SCHEMA_VERSION: i32 = 3;

/// Each migration's SQL, in order; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE llmkit_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    models TEXT[] NOT NULL DEFAULT '{}',
    budget_daily_usd DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION,
    revoked DOUBLE PRECISION
);
CREATE TABLE llmkit_spend (
    scope TEXT NOT NULL,
    period TEXT NOT NULL,
    spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    reserved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period)
);
CREATE TABLE llmkit_reservations (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    periods TEXT[] NOT NULL,
    amount_usd DOUBLE PRECISION NOT NULL,
    ts DOUBLE PRECISION NOT NULL
);
CREATE INDEX llmkit_reservations_scope_ts ON llmkit_reservations (scope, ts);
CREATE TABLE llmkit_ledger (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    ts DOUBLE PRECISION NOT NULL,
    scope TEXT,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    command TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    cost_unknown BOOLEAN NOT NULL,
    latency_ms BIGINT NOT NULL,
    status INTEGER NOT NULL,
    cache_hit BOOLEAN NOT NULL
);
CREATE INDEX llmkit_ledger_ts ON llmkit_ledger (ts);
CREATE TABLE llmkit_usage_daily (
    day TEXT NOT NULL,
    scope TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    unpriced BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    cache_hits BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, scope, model)
);
",
    r"
ALTER TABLE llmkit_keys ADD COLUMN rpm BIGINT, ADD COLUMN tpm BIGINT, ADD COLUMN max_concurrent BIGINT;
ALTER TABLE llmkit_ledger ADD COLUMN tokens_counted BOOLEAN NOT NULL DEFAULT FALSE;
",
    r"
ALTER TABLE llmkit_ledger ADD COLUMN upstream TEXT;
ALTER TABLE llmkit_usage_daily ADD COLUMN upstream TEXT NOT NULL DEFAULT '';
ALTER TABLE llmkit_usage_daily DROP CONSTRAINT llmkit_usage_daily_pkey;
ALTER TABLE llmkit_usage_daily ADD PRIMARY KEY (day, scope, model, upstream);
",
];

/// An arbitrary constant naming llmkit's migration lock among the database's advisory locks.
const MIGRATION_LOCK: i64 = 0x6c6c_6d6b_6974;

/// Brings the schema to [`PG_SCHEMA_VERSION`]; refuses a newer one.
pub(crate) async fn migrate(conn: &mut Object) -> Result<(), ClusterError> {
    conn.batch_execute("CREATE TABLE IF NOT EXISTS llmkit_schema (version INTEGER PRIMARY KEY)")
        .await
        .or_else(ignore_concurrent_create)?;
    let tx = conn.transaction().await?;
    // Held until the transaction ends: a second replica waits here, then sees the version.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let found: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM llmkit_schema", &[])
        .await?
        .get(0);
    if found > PG_SCHEMA_VERSION {
        return Err(ClusterError::SchemaTooNew {
            found,
            known: PG_SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.batch_execute(sql).await?;
        let version = i as i32 + 1;
        tx.execute(
            "INSERT INTO llmkit_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Two replicas creating the version table at once: one of them sees a unique violation
/// on PostgreSQL's catalogue, which means the table now exists.
fn ignore_concurrent_create(e: tokio_postgres::Error) -> Result<(), ClusterError> {
    match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => Ok(()),
        _ => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_matches_the_migrations() {
        assert_eq!(MIGRATIONS.len(), PG_SCHEMA_VERSION as usize);
    }
}
