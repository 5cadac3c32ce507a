//! The retrieval fixture shared by the eval (`tests/it/retrieval.rs`) and the benchmark
//! (`benches/kb.rs`, which includes this file by `#[path]`): the local MiniLM embedder and a
//! knowledge base filled from the fixed corpus.

use std::path::Path;

use llmkit_kb::{ChunkOptions, Kb, chunk_document, collect_files, load_file};
use llmkit_local::Embedder;
use llmkit_testkit::fixtures::require_model;

use crate::corpus::{CODE_DOCS, DOCS};

/// The local MiniLM embedder, or `None` (after a `SKIP` line) when its files are absent; with
/// `LLMKIT_REQUIRE_MODELS=1` their absence fails the caller instead.
#[track_caller]
pub(crate) fn minilm() -> Option<Embedder> {
    let weights = require_model("all-MiniLM-L6-v2/model.safetensors")?;
    let dir = weights
        .parent()
        .expect("the weights are inside the model directory");
    Some(Embedder::load(dir).unwrap_or_else(|e| panic!("MiniLM in {} loads: {e}", dir.display())))
}

/// Writes the corpus and fills a knowledge base from it; vectors from `embedder` or, without
/// one, a constant placeholder (then only BM25 is meaningful).
pub(crate) fn build(dir: &Path, embedder: Option<&Embedder>) -> Kb {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in DOCS.iter().chain(CODE_DOCS) {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let mut kb = Kb::create(&dir.join("kb"), "eval", "local:all-MiniLM-L6-v2").unwrap();
    let files = collect_files(&[docs]).files;
    assert_eq!(files.len(), DOCS.len() + CODE_DOCS.len());
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
