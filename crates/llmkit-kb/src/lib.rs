//! llmkit-kb: knowledge bases for grounded answers with citations.
//!
//! A knowledge base is one SQLite file (`<data dir>/kb/NAME.db`) holding documents, their
//! chunks, an FTS5 index over the chunks (BM25) and one L2-normalised f32 vector per chunk.
//! Retrieval fuses BM25 and exact dot-product search with reciprocal-rank fusion. The crate
//! does no network IO: the caller computes embeddings and passes them in, so the same code
//! serves the local model and any API.

mod error;
mod fts;
mod grounded;
mod ingest;
mod rules;
mod search;
mod storage;
mod store;

pub use error::KbError;
pub use grounded::{Citations, NO_ANSWER, check_citations, grounded_messages, grounded_system};
pub use ingest::{
    ChunkOptions, Collected, Loaded, SourceDoc, chunk_document, collect_files, load_file,
};
pub use rules::{ForbiddenTopic, RuleBase, RuleViolation};
pub use search::{Hit, SearchOptions, dot, normalize, rrf, search};
pub use storage::KbStore;
pub use store::{BM25_ROW_BUDGET, ChunkRow, DocumentState, Kb, KbInfo, NewChunk, Stats};
