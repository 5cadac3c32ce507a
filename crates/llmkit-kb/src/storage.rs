//! The storage boundary of a knowledge base: what retrieval and ingest need from a store.
//! SQLite ([`Kb`]) implements it today; a Postgres store with pgvector would implement the
//! same trait (see ARCHITECTURE.md), so `search`, the grounded prompt and the CLI do not
//! change.

use std::collections::HashMap;

use crate::error::KbError;
use crate::store::{ChunkRow, DocumentState, Kb, KbInfo, NewChunk, Stats};

/// A knowledge-base store. Vectors are L2-normalised, so the dot product is the cosine.
pub trait KbStore {
    /// The name, embedding model and vector length the store is fixed to.
    fn info(&self) -> &KbInfo;
    fn stats(&self) -> Result<Stats, KbError>;
    fn chunk_count(&self) -> Result<u64, KbError>;

    /// Lexical search: (chunk id, score) best first, at most `k` (SQLite: FTS5 BM25;
    /// Postgres: `tsvector` with `ts_rank_cd`).
    fn lexical(&self, query: &str, k: usize) -> Result<Vec<(i64, f32)>, KbError>;
    /// Exact nearest neighbours of unit vector `q` by dot product, best first (SQLite: an
    /// in-memory scan; Postgres: `ORDER BY embedding <#> $1 LIMIT k` on a `vector(d)`
    /// column, exact without an index, HNSW when one exists).
    fn nearest(&self, q: &[f32], k: usize) -> Result<Vec<(i64, f32)>, KbError>;
    fn chunk(&self, id: i64) -> Result<ChunkRow, KbError>;
    fn vector(&self, id: i64) -> Result<Vec<f32>, KbError>;

    fn document_state(&self, source: &str, hash: &str) -> Result<DocumentState, KbError>;
    /// Stores (or replaces) a source with its chunks and vectors atomically.
    fn replace_document(
        &mut self,
        source: &str,
        hash: &str,
        chunks: &[NewChunk],
        vectors: &[Vec<f32>],
    ) -> Result<(), KbError>;
    fn record_duplicate(&mut self, source: &str, hash: &str, original: &str)
    -> Result<(), KbError>;
    fn remove_document(&mut self, source: &str) -> Result<bool, KbError>;
    fn sources(&self) -> Result<Vec<String>, KbError>;

    /// Vectors already computed for these keys by an interrupted add.
    fn cached_vectors(&self, keys: &[String]) -> Result<HashMap<String, Vec<f32>>, KbError>;
    /// Keeps computed vectors durably before their documents are stored.
    fn cache_vectors(&mut self, items: &[(String, Vec<f32>)]) -> Result<(), KbError>;
    fn clear_vector_cache(&mut self) -> Result<(), KbError>;
}

impl KbStore for Kb {
    fn info(&self) -> &KbInfo {
        Kb::info(self)
    }
    fn stats(&self) -> Result<Stats, KbError> {
        Kb::stats(self)
    }
    fn chunk_count(&self) -> Result<u64, KbError> {
        Kb::chunk_count(self)
    }
    fn lexical(&self, query: &str, k: usize) -> Result<Vec<(i64, f32)>, KbError> {
        self.bm25(query, k)
    }
    fn nearest(&self, q: &[f32], k: usize) -> Result<Vec<(i64, f32)>, KbError> {
        self.nearest_vectors(q, k)
    }
    fn chunk(&self, id: i64) -> Result<ChunkRow, KbError> {
        Kb::chunk(self, id)
    }
    fn vector(&self, id: i64) -> Result<Vec<f32>, KbError> {
        Kb::vector(self, id)
    }
    fn document_state(&self, source: &str, hash: &str) -> Result<DocumentState, KbError> {
        Kb::document_state(self, source, hash)
    }
    fn replace_document(
        &mut self,
        source: &str,
        hash: &str,
        chunks: &[NewChunk],
        vectors: &[Vec<f32>],
    ) -> Result<(), KbError> {
        Kb::replace_document(self, source, hash, chunks, vectors)
    }
    fn record_duplicate(
        &mut self,
        source: &str,
        hash: &str,
        original: &str,
    ) -> Result<(), KbError> {
        Kb::record_duplicate(self, source, hash, original)
    }
    fn remove_document(&mut self, source: &str) -> Result<bool, KbError> {
        Kb::remove_document(self, source)
    }
    fn sources(&self) -> Result<Vec<String>, KbError> {
        Kb::sources(self)
    }
    fn cached_vectors(&self, keys: &[String]) -> Result<HashMap<String, Vec<f32>>, KbError> {
        Kb::cached_vectors(self, keys)
    }
    fn cache_vectors(&mut self, items: &[(String, Vec<f32>)]) -> Result<(), KbError> {
        Kb::cache_vectors(self, items)
    }
    fn clear_vector_cache(&mut self) -> Result<(), KbError> {
        Kb::clear_vector_cache(self)
    }
}
