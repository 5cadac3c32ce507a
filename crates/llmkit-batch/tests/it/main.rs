//! Integration tests for llmkit-batch against the in-process mock.
