//! Integration tests of llmkit-client: SSE splitting, retries, faults from the mock server,
//! error mapping, headers, cancellation, token counts and the local backend.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancel;
mod capabilities;
mod download;
mod errors;
mod faults;
mod headers;
#[cfg(feature = "local")]
mod local;
mod organization;
mod responses;
mod responses_contract;
mod retry_after;
mod sse_split;
mod streams;
mod support;
mod tokens;
