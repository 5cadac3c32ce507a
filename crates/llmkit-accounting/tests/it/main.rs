//! Integration tests of llmkit-accounting.

mod max_cost;
