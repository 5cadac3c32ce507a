//! Integration tests for llmkit-kb: a knowledge base filled from files on disk and searched.

mod bench;
mod corpus;
mod retrieval;
mod store;
