//! Integration tests for llmkit-kb: a knowledge base filled from files on disk and searched.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
mod retrieval;
mod store;
mod support;
