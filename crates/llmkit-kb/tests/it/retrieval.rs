//! The retrieval eval: recall@5 of BM25, vector (local MiniLM) and hybrid search over the
//! fixed corpus. Vector and hybrid need the MiniLM files in `LLMKIT_MODELS_DIR` (default
//! `<workspace>/models`); without them only BM25 is measured, and the test says so.

use std::path::{Path, PathBuf};

use llmkit_kb::{ChunkOptions, Kb, SearchOptions, chunk_document, collect_files, load_file};
use llmkit_local::Embedder;

use crate::corpus::{DOCS, QUESTIONS};

fn models_dir() -> PathBuf {
    std::env::var_os("LLMKIT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

pub fn minilm() -> Option<Embedder> {
    let dir = models_dir().join("all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").is_file() {
        return None;
    }
    Embedder::load(&dir).ok()
}

/// Writes the corpus and fills a knowledge base from it; vectors from `embedder` or, without
/// one, a constant placeholder (then only BM25 is meaningful).
pub fn build(dir: &Path, embedder: Option<&Embedder>) -> Kb {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in DOCS {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let mut kb = Kb::create(&dir.join("kb"), "eval", "local:all-MiniLM-L6-v2").unwrap();
    let files = collect_files(&[docs]).files;
    assert_eq!(files.len(), DOCS.len());
    for f in files {
        let loaded = load_file(&f, None).unwrap();
        let chunks: Vec<_> = loaded
            .docs
            .iter()
            .flat_map(|d| chunk_document(d, &ChunkOptions::default()))
            .collect();
        let vectors = match embedder {
            Some(e) => {
                let texts: Vec<String> = chunks.iter().map(|c| c.embed_text()).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                e.embed(&refs).unwrap()
            }
            None => chunks.iter().map(|_| vec![1.0, 0.0]).collect(),
        };
        kb.replace_document(&loaded.source, &loaded.hash, &chunks, &vectors)
            .unwrap();
    }
    kb
}

/// (recall@1, recall@5) at document level.
fn recall(kb: &Kb, embedder: Option<&Embedder>, bm25: bool, vector: bool) -> (f64, f64) {
    let opts = SearchOptions {
        k: 5,
        bm25,
        vector,
        ..SearchOptions::default()
    };
    let (mut first, mut found) = (0, 0);
    for (q, expected) in QUESTIONS {
        let qv = embedder.map(|e| e.embed(&[q]).unwrap().remove(0));
        let hits = kb.search(q, qv.as_deref(), &opts).unwrap();
        let is = |h: &llmkit_kb::Hit| h.source.ends_with(&format!("/{expected}"));
        if hits.iter().any(is) {
            found += 1;
        }
        if hits.first().is_some_and(is) {
            first += 1;
        }
    }
    let n = QUESTIONS.len() as f64;
    (f64::from(first) / n, f64::from(found) / n)
}

#[test]
fn recall_at_5_bm25_vector_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = minilm();
    let kb = build(dir.path(), embedder.as_ref());
    let chunks = kb.chunk_count().unwrap();
    let (bm25_1, bm25) = recall(&kb, embedder.as_ref(), true, false);
    println!(
        "corpus: {} docs, {chunks} chunks, {} questions",
        DOCS.len(),
        QUESTIONS.len()
    );
    println!("bm25   recall@1 = {bm25_1:.3}  recall@5 = {bm25:.3}");
    assert!(bm25 >= 0.7, "bm25 recall@5 {bm25}");
    let Some(e) = embedder.as_ref() else {
        println!(
            "vector and hybrid skipped: no all-MiniLM-L6-v2 in {}",
            models_dir().display()
        );
        return;
    };
    let (vector_1, vector) = recall(&kb, Some(e), false, true);
    let (hybrid_1, hybrid) = recall(&kb, Some(e), true, true);
    println!("vector recall@1 = {vector_1:.3}  recall@5 = {vector:.3}");
    println!("hybrid recall@1 = {hybrid_1:.3}  recall@5 = {hybrid:.3}");
    assert!(
        hybrid >= bm25 && hybrid >= vector,
        "hybrid {hybrid} below a single retriever"
    );
    assert!(hybrid >= 0.9, "hybrid recall@5 {hybrid}");
}
