//! Integration tests for llmkit-kb: a knowledge base filled from files on disk and searched.

mod corpus;
mod retrieval;
mod store;
mod support;
