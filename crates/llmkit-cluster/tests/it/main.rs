//! llmkit-cluster's integration tests, against the real PostgreSQL and Redis that
//! `scripts/services.sh` starts (`LLMKIT_TEST_POSTGRES_URL`, `LLMKIT_TEST_REDIS_URL`).
//! Without them a test skips, or fails under `LLMKIT_REQUIRE_SERVICES=1` (CI).

// Test helpers may unwrap, as the tests themselves may (clippy.toml exempts only `#[test]`s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod budget;
mod keys;
mod ledger;
mod limits;
mod revocations;
mod support;
