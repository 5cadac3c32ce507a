//! Integration tests for llmkit-types: the contract test against OpenAI's published OpenAPI spec.

mod contract;
