//! Integration tests for llmkit-local. Tests that need the real model skip with a message when
//! the file is absent (run scripts/fetch-models.sh, or point LLMKIT_MODELS_DIR at a directory
//! that holds it), and fail instead when `LLMKIT_REQUIRE_MODELS=1` (as `scripts/test.sh`
//! sets). Run them in release mode: debug candle is about 100 times slower.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architectures;
mod bad_files;
mod chat;
mod kv_reuse;
mod reference;
mod requant_cache;
mod support;
