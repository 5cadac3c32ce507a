//! llmkit-tools' integration tests: the tool loop against `llmkit-mock`.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tool_loop;
