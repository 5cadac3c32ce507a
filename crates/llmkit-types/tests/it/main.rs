//! Integration tests for llmkit-types: the contract test against the vendored subset of OpenAI's
//! published OpenAPI spec (`tests/fixtures/`).

mod contract;
