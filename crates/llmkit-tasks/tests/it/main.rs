//! Integration tests of llmkit-tasks against the in-process mock server.

mod redact;
mod tasks;
