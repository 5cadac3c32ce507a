//! The knowledge-base file: schema, documents, chunks with their vectors, the FTS5 index,
//! and the listing, stats and removal of knowledge bases in a directory.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::KbError;
use crate::search::top_k;

/// A knowledge base: one open SQLite file.
pub struct Kb {
    conn: Connection,
    name: String,
    path: PathBuf,
    info: KbInfo,
    /// Every vector in one contiguous matrix, read on the first vector search and dropped
    /// on every write, so repeated queries (chat, benchmarks) scan memory, not SQLite.
    matrix: RefCell<Option<Arc<Matrix>>>,
    /// The chunk count, cached like the matrix (`count(*)` walks a whole index).
    count: Cell<Option<u64>>,
    /// SQLite's `data_version` when the caches were filled: another connection's commit
    /// (a `kb add` in another terminal) changes it, and the caches are dropped.
    seen_version: Cell<i64>,
}

/// The vectors of all chunks, row-major, with their chunk ids.
#[derive(Debug, Default)]
struct Matrix {
    pub ids: Vec<i64>,
    pub data: Vec<f32>,
    pub dims: usize,
}

/// What a knowledge base is fixed to when it is created.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KbInfo {
    pub name: String,
    /// The embedding model every vector in it comes from.
    pub model: String,
    /// The vector length, known once the first chunk is stored.
    pub dims: Option<usize>,
}

/// Counts and sizes for `kb stats`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub name: String,
    pub model: String,
    pub dims: Option<usize>,
    pub documents: u64,
    pub chunks: u64,
    pub size_bytes: u64,
    pub path: PathBuf,
}

/// How a source's current content relates to what the knowledge base holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentState {
    /// Not indexed yet.
    New,
    /// Indexed with the same content hash: nothing to do.
    Unchanged,
    /// Indexed with different content: re-index it.
    Changed,
    /// The same content is already indexed under another source.
    Duplicate(String),
}

/// One chunk to store: its text and where in the source it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    pub text: String,
    /// The heading path (`Install > Linux`) or row (`row 12`); empty for plain text.
    pub location: String,
}

/// A stored chunk as search results show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub source: String,
    pub location: String,
    pub text: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    duplicate_of TEXT,
    added_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(hash);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    location TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, location, tokenize = 'porter unicode61');
CREATE TABLE IF NOT EXISTS embed_cache (key TEXT PRIMARY KEY, vector BLOB NOT NULL);
";

impl Kb {
    /// The file of knowledge base `name` in `dir`, after checking the name.
    pub fn path_for(dir: &Path, name: &str) -> Result<PathBuf, KbError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(KbError::BadName(name.to_string()));
        }
        Ok(dir.join(format!("{name}.db")))
    }

    /// Creates knowledge base `name` in `dir`, fixed to embedding `model`.
    pub fn create(dir: &Path, name: &str, model: &str) -> Result<Self, KbError> {
        let path = Self::path_for(dir, name)?;
        if path.exists() {
            return Err(KbError::Exists(name.to_string()));
        }
        std::fs::create_dir_all(dir)?;
        let conn = connect(&path)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('model', ?1)",
            params![model],
        )?;
        Self::from_conn(conn, name, path)
    }

    /// Opens an existing knowledge base.
    pub fn open(dir: &Path, name: &str) -> Result<Self, KbError> {
        let path = Self::path_for(dir, name)?;
        if !path.is_file() {
            return Err(KbError::NotFound(name.to_string()));
        }
        let conn = connect(&path)?;
        Self::from_conn(conn, name, path)
    }

    /// The names of the knowledge bases in `dir`, sorted.
    pub fn list(dir: &Path) -> Result<Vec<String>, KbError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".db").map(str::to_string)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes knowledge base `name` (its file and SQLite side files).
    pub fn remove(dir: &Path, name: &str) -> Result<(), KbError> {
        let path = Self::path_for(dir, name)?;
        if !path.is_file() {
            return Err(KbError::NotFound(name.to_string()));
        }
        std::fs::remove_file(&path)?;
        for side in ["-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(side);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        Ok(())
    }

    pub fn info(&self) -> &KbInfo {
        &self.info
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Documents, chunks and size on disk.
    pub fn stats(&self) -> Result<Stats, KbError> {
        let documents: i64 = self
            .conn
            .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))?;
        let chunks = self.chunk_count()?;
        let page_count: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Stats {
            name: self.name.clone(),
            model: self.info.model.clone(),
            dims: self.info.dims,
            documents: documents.max(0) as u64,
            chunks,
            size_bytes: (page_count * page_size).max(0) as u64,
            path: self.path.clone(),
        })
    }

    pub fn chunk_count(&self) -> Result<u64, KbError> {
        self.check_version()?;
        if let Some(n) = self.count.get() {
            return Ok(n);
        }
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))?;
        let n = n.max(0) as u64;
        self.count.set(Some(n));
        Ok(n)
    }

    /// Drops the cached matrix and count when another connection has committed since they
    /// were read (this connection's own writes drop them directly).
    fn check_version(&self) -> Result<(), KbError> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if v != self.seen_version.get() {
            self.seen_version.set(v);
            self.invalidate();
        }
        Ok(())
    }

    fn invalidate(&self) {
        self.matrix.replace(None);
        self.count.set(None);
    }

    /// Compares a source's content hash with what is stored.
    pub fn document_state(&self, source: &str, hash: &str) -> Result<DocumentState, KbError> {
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT hash FROM documents WHERE source = ?1",
                params![source],
                |r| r.get(0),
            )
            .optional()?;
        match stored {
            Some(h) if h == hash => Ok(DocumentState::Unchanged),
            Some(_) => Ok(DocumentState::Changed),
            None => {
                let other: Option<String> = self
                    .conn
                    .query_row(
                        "SELECT source FROM documents WHERE hash = ?1 AND duplicate_of IS NULL \
                         LIMIT 1",
                        params![hash],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(other.map_or(DocumentState::New, DocumentState::Duplicate))
            }
        }
    }

    /// Stores (or replaces) a source with its chunks and their vectors, in one transaction.
    /// Vectors are L2-normalised here; their length must match the knowledge base's.
    pub fn replace_document(
        &mut self,
        source: &str,
        hash: &str,
        chunks: &[NewChunk],
        vectors: &[Vec<f32>],
    ) -> Result<(), KbError> {
        if chunks.len() != vectors.len() {
            return Err(KbError::BadInput {
                path: PathBuf::from(source),
                message: format!("{} chunks but {} vectors", chunks.len(), vectors.len()),
            });
        }
        let mut dims = self.info.dims;
        for v in vectors {
            match dims {
                Some(d) if d != v.len() => {
                    return Err(KbError::DimensionMismatch {
                        expected: d,
                        got: v.len(),
                    });
                }
                _ => dims = Some(v.len()),
            }
        }
        let tx = self.conn.transaction()?;
        delete_source(&tx, source)?;
        tx.execute(
            "INSERT INTO documents (source, hash) VALUES (?1, ?2)",
            params![source, hash],
        )?;
        let doc_id = tx.last_insert_rowid();
        {
            let mut ins = tx.prepare(
                "INSERT INTO chunks (doc_id, ord, location, text, vector) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut fts =
                tx.prepare("INSERT INTO chunks_fts (rowid, text, location) VALUES (?1, ?2, ?3)")?;
            for (i, (c, v)) in chunks.iter().zip(vectors).enumerate() {
                let mut v = v.clone();
                crate::search::normalize(&mut v);
                ins.execute(params![doc_id, i as i64, c.location, c.text, to_blob(&v)])?;
                fts.execute(params![tx.last_insert_rowid(), c.text, c.location])?;
            }
        }
        if self.info.dims.is_none()
            && let Some(d) = dims
        {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('dims', ?1)",
                params![d.to_string()],
            )?;
        }
        tx.commit()?;
        self.invalidate();
        if self.info.dims.is_none() {
            self.info.dims = dims;
        }
        Ok(())
    }

    /// Records a source whose content is already indexed under `original` (no chunks).
    pub fn record_duplicate(
        &mut self,
        source: &str,
        hash: &str,
        original: &str,
    ) -> Result<(), KbError> {
        let tx = self.conn.transaction()?;
        delete_source(&tx, source)?;
        tx.execute(
            "INSERT INTO documents (source, hash, duplicate_of) VALUES (?1, ?2, ?3)",
            params![source, hash, original],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every stored source.
    pub fn sources(&self) -> Result<Vec<String>, KbError> {
        let mut st = self
            .conn
            .prepare("SELECT source FROM documents ORDER BY source")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Drops a source and its chunks; false when it was not there.
    pub fn remove_document(&mut self, source: &str) -> Result<bool, KbError> {
        let tx = self.conn.transaction()?;
        let n = delete_source(&tx, source)?;
        tx.commit()?;
        self.invalidate();
        Ok(n > 0)
    }

    /// BM25 over the chunks: (chunk id, score) best first, higher is better. On a large
    /// knowledge base only the query's rarest terms are searched (see [`BM25_ROW_BUDGET`]).
    pub fn bm25(&self, query: &str, k: usize) -> Result<Vec<(i64, f32)>, KbError> {
        self.bm25_within(query, k, Some(BM25_ROW_BUDGET))
    }

    /// BM25 with an explicit row budget. FTS5 ranks every matching row before it can
    /// return the top `k` (about 2 µs a row here), so an OR of common words over 100k
    /// chunks cost 150 ms. Within a budget the query's terms are ordered by document
    /// frequency and the rarest are kept while their matching rows add up to at most
    /// `budget`: the dropped terms are those whose IDF adds least to the score. When even
    /// the rarest term matches more rows than that, the chunks holding *all* the terms come
    /// first, then the rarest term's; a set still over budget has only its first `budget`
    /// rows ranked (an approximation, for queries of common words only, where the vector
    /// half of hybrid search carries the meaning). `None` runs the plain FTS5 OR-query.
    pub fn bm25_within(
        &self,
        query: &str,
        k: usize,
        budget: Option<usize>,
    ) -> Result<Vec<(i64, f32)>, KbError> {
        let terms = crate::fts::terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let budget = match budget {
            Some(b) if self.chunk_count()? as usize > b => b.max(1),
            _ => return self.ranked(&terms.join(" OR "), k, None),
        };
        let counted = self.frequencies(terms, budget)?;
        let Some((rarest_df, rarest)) = counted.first().cloned() else {
            return Ok(Vec::new());
        };
        if rarest_df <= budget {
            let mut total = 0;
            let kept: Vec<&str> = counted
                .iter()
                .take_while(|(df, _)| {
                    total += df;
                    total <= budget
                })
                .map(|(_, t)| t.as_str())
                .collect();
            return self.ranked(&kept.join(" OR "), k, None);
        }
        // Every term is common.
        let mut hits = Vec::new();
        if counted.len() > 1 {
            let all = counted
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" AND ");
            let df = self.frequency(&all, budget)?;
            if df > 0 {
                hits = self.ranked(&all, k, (df > budget).then_some(budget))?;
            }
        }
        if hits.len() < k {
            for h in self.ranked(&rarest, k, Some(budget))? {
                if hits.len() < k && !hits.iter().any(|x: &(i64, f32)| x.0 == h.0) {
                    hits.push(h);
                }
            }
        }
        Ok(hits)
    }

    /// The top `k` of an FTS5 expression by BM25; with `cap`, only its first `cap`
    /// matching rows are ranked.
    fn ranked(&self, expr: &str, k: usize, cap: Option<usize>) -> Result<Vec<(i64, f32)>, KbError> {
        let sql = match cap {
            None => {
                "SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ?1 \
                 ORDER BY rank LIMIT ?2"
            }
            Some(_) => {
                "SELECT rowid, r FROM (SELECT rowid, rank AS r FROM chunks_fts \
                 WHERE chunks_fts MATCH ?1 LIMIT ?3) ORDER BY r LIMIT ?2"
            }
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let to_hit =
            |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)?, -(r.get::<_, f64>(1)? as f32)));
        let rows = match cap {
            None => st.query_map(params![expr, k as i64], to_hit)?,
            Some(c) => st.query_map(params![expr, k as i64, c as i64], to_hit)?,
        };
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The matching rows of an FTS5 expression, counted up to `budget + 1` (a bounded scan
    /// of its doclists, about 0.1 µs a row).
    fn frequency(&self, expr: &str, budget: usize) -> Result<usize, KbError> {
        let mut st = self.conn.prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT ?2)",
        )?;
        let n: i64 = st.query_row(params![expr, budget as i64 + 1], |r| r.get(0))?;
        Ok(n.max(0) as usize)
    }

    /// The terms that match anything, with their (bounded) frequencies, rarest first.
    fn frequencies(
        &self,
        terms: Vec<String>,
        budget: usize,
    ) -> Result<Vec<(usize, String)>, KbError> {
        let mut counted = Vec::with_capacity(terms.len());
        for t in terms {
            let df = self.frequency(&t, budget)?;
            if df > 0 {
                counted.push((df, t));
            }
        }
        counted.sort_by_key(|(df, _)| *df);
        Ok(counted)
    }

    /// The `n` chunks most similar to unit vector `q`, best first: an exact scan of the
    /// in-memory matrix with a partial sort.
    pub(crate) fn nearest_vectors(&self, q: &[f32], n: usize) -> Result<Vec<(i64, f32)>, KbError> {
        let m = self.matrix()?;
        if m.dims != q.len() && !m.ids.is_empty() {
            return Err(KbError::DimensionMismatch {
                expected: m.dims,
                got: q.len(),
            });
        }
        let dims = m.dims.max(1);
        let rows = m.data.len() / dims;
        // Past a few hundred thousand multiply-adds the scan is split over the cores (each
        // part keeps its own top n, then the parts are merged); below, a thread costs more
        // than it saves.
        let parts = if rows * dims < 1 << 20 {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |p| p.get().min(8))
        };
        let per = rows.div_ceil(parts).max(1);
        let scan = |first: usize, block: &[f32]| -> Vec<(usize, f32)> {
            let scores: Vec<f32> = block
                .chunks_exact(dims)
                .map(|row| crate::search::dot(q, row))
                .collect();
            top_k(&scores, n)
                .into_iter()
                .map(|(i, s)| (first + i, s))
                .collect()
        };
        let mut best: Vec<(usize, f32)> = if parts == 1 {
            scan(0, &m.data)
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = m
                    .data
                    .chunks(per * dims)
                    .enumerate()
                    .map(|(i, block)| s.spawn(move || scan(i * per, block)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        best.truncate(n);
        Ok(best.into_iter().map(|(i, s)| (m.ids[i], s)).collect())
    }

    /// The vector matrix, read from SQLite once.
    fn matrix(&self) -> Result<Arc<Matrix>, KbError> {
        self.check_version()?;
        if let Some(m) = self.matrix.borrow().as_ref() {
            return Ok(m.clone());
        }
        let mut m = Matrix {
            dims: self.info.dims.unwrap_or(0),
            ..Matrix::default()
        };
        let rows = self.chunk_count()? as usize;
        m.ids.reserve(rows);
        m.data.reserve(rows * m.dims);
        let mut st = self
            .conn
            .prepare("SELECT id, vector FROM chunks ORDER BY id")?;
        let mut cursor = st.query([])?;
        while let Some(r) = cursor.next()? {
            let blob = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Blob(b) => b,
                _ => &[],
            };
            if blob.len() != m.dims * 4 {
                // A row of another length cannot be scored against the query; it would only
                // exist in a file written by something other than llmkit.
                continue;
            }
            m.ids.push(r.get(0)?);
            m.data.extend(
                blob.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        let m = Arc::new(m);
        self.matrix.replace(Some(m.clone()));
        Ok(m)
    }

    /// Vectors computed earlier for these cache keys (an interrupted `kb add`'s work).
    pub fn cached_vectors(&self, keys: &[String]) -> Result<HashMap<String, Vec<f32>>, KbError> {
        let mut out = HashMap::new();
        let mut st = self
            .conn
            .prepare_cached("SELECT vector FROM embed_cache WHERE key = ?1")?;
        for k in keys {
            let blob: Option<Vec<u8>> = st.query_row(params![k], |r| r.get(0)).optional()?;
            if let Some(b) = blob {
                let mut v = Vec::new();
                from_blob(&b, &mut v);
                out.insert(k.clone(), v);
            }
        }
        Ok(out)
    }

    /// Keeps freshly computed vectors, committed at once, so an interrupted `kb add` does not
    /// compute them again. Their length must match the knowledge base's.
    pub fn cache_vectors(&mut self, items: &[(String, Vec<f32>)]) -> Result<(), KbError> {
        let expected = self
            .info
            .dims
            .or_else(|| items.first().map(|(_, v)| v.len()));
        if let Some(d) = expected
            && let Some((_, v)) = items.iter().find(|(_, v)| v.len() != d)
        {
            return Err(KbError::DimensionMismatch {
                expected: d,
                got: v.len(),
            });
        }
        let tx = self.conn.transaction()?;
        {
            let mut st =
                tx.prepare("INSERT OR REPLACE INTO embed_cache (key, vector) VALUES (?1, ?2)")?;
            for (k, v) in items {
                st.execute(params![k, to_blob(v)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Empties the embedding cache (after an add that stored everything).
    pub fn clear_vector_cache(&mut self) -> Result<(), KbError> {
        self.conn.execute("DELETE FROM embed_cache", [])?;
        Ok(())
    }

    /// One chunk's vector.
    pub fn vector(&self, id: i64) -> Result<Vec<f32>, KbError> {
        let blob: Vec<u8> = self.conn.query_row(
            "SELECT vector FROM chunks WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        let mut v = Vec::new();
        from_blob(&blob, &mut v);
        Ok(v)
    }

    pub fn chunk(&self, id: i64) -> Result<ChunkRow, KbError> {
        Ok(self.conn.query_row(
            "SELECT d.source, c.location, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id \
             WHERE c.id = ?1",
            params![id],
            |r| {
                Ok(ChunkRow {
                    source: r.get(0)?,
                    location: r.get(1)?,
                    text: r.get(2)?,
                })
            },
        )?)
    }

    fn from_conn(conn: Connection, name: &str, path: PathBuf) -> Result<Self, KbError> {
        let model: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'model'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or_default();
        let dims: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'dims'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let info = KbInfo {
            name: name.to_string(),
            model,
            dims: dims.and_then(|d| d.parse().ok()),
        };
        Ok(Self {
            conn,
            name: name.to_string(),
            path,
            info,
            matrix: RefCell::new(None),
            count: Cell::new(None),
            seen_version: Cell::new(0),
        })
    }
}

fn connect(path: &Path) -> Result<Connection, KbError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Deletes a source's document row, chunks and FTS rows; returns the documents deleted.
fn delete_source(conn: &Connection, source: &str) -> Result<usize, KbError> {
    conn.execute(
        "DELETE FROM chunks_fts WHERE rowid IN (SELECT c.id FROM chunks c JOIN documents d \
         ON d.id = c.doc_id WHERE d.source = ?1)",
        params![source],
    )?;
    conn.execute(
        "DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE source = ?1)",
        params![source],
    )?;
    Ok(conn.execute("DELETE FROM documents WHERE source = ?1", params![source])?)
}

/// The most rows a BM25 query ranks on a large knowledge base (see [`Kb::bm25_within`]).
/// Measured by `benches/kb/run.sh` at 100k chunks: 5,000 rows keep BM25's p99 near 7 ms
/// and find a question's own chunk in the top 10 for 44 of 50 questions (the full query:
/// 48, at a p99 of 96 ms). A knowledge base this small or smaller always searches every
/// term.
pub const BM25_ROW_BUDGET: usize = 5_000;

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(blob: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let d = Path::new("/tmp");
        assert!(Kb::path_for(d, "docs-1.v2").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(matches!(Kb::path_for(d, bad), Err(KbError::BadName(_))));
        }
    }

    #[test]
    fn blobs_round_trip() {
        let mut out = Vec::new();
        from_blob(&to_blob(&[1.5, -2.0]), &mut out);
        assert_eq!(out, vec![1.5, -2.0]);
    }
}
