//! Integration tests for llmkit-types: the contract test against the vendored subset of OpenAI's
//! published OpenAPI spec (`tests/fixtures/`).

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
