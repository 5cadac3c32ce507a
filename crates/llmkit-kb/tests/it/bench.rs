//! The knowledge-base benchmark, run only when `LLMKIT_KB_BENCH=1` (see `benches/kb/run.sh`):
//! ingest rate with local MiniLM embeddings, hybrid query latency at 10k chunks, and bytes
//! on disk per chunk.

use std::time::Instant;

use llmkit_kb::{Kb, NewChunk, SearchOptions};

use crate::corpus::{DOCS, QUESTIONS};

const CHUNKS: usize = 10_000;
const DIMS: usize = 384;

/// A deterministic pseudo-random unit vector (xorshift), so the bench needs no model.
fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIMS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    llmkit_kb::normalize(&mut v);
    v
}

#[test]
fn bench_kb() {
    if std::env::var_os("LLMKIT_KB_BENCH").is_none() {
        println!("skipped: set LLMKIT_KB_BENCH=1 (or run benches/kb/run.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Ingest with MiniLM: the eval corpus, embedded and stored.
    let t = Instant::now();
    let with_model = crate::retrieval::minilm();
    let load = t.elapsed();
    if let Some(e) = with_model.as_ref() {
        let t = Instant::now();
        let mut total = 0;
        for round in 0..4 {
            let sub = dir.path().join(format!("ingest{round}"));
            let kb = crate::retrieval::build(&sub, Some(e));
            total += kb.chunk_count().unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "ingest (MiniLM, 2 cores): {total} chunks in {secs:.2} s = {:.0} chunks/s (model load {:.2} s)",
            total as f64 / secs,
            load.as_secs_f64()
        );
    } else {
        println!("ingest skipped: no all-MiniLM-L6-v2 model files");
    }
    // 10k chunks of corpus text with random vectors, in documents of 100 chunks.
    let mut kb = Kb::create(dir.path(), "bench", "bench").unwrap();
    let t = Instant::now();
    for d in 0..CHUNKS / 100 {
        let chunks: Vec<NewChunk> = (0..100)
            .map(|i| {
                let (_, text) = DOCS[(d * 100 + i) % DOCS.len()];
                NewChunk {
                    text: format!("{text} chunk {d}-{i}"),
                    location: format!("doc {d}"),
                }
            })
            .collect();
        let vectors: Vec<Vec<f32>> = (0..100).map(|i| vector((d * 100 + i) as u64)).collect();
        kb.replace_document(&format!("doc{d}"), &format!("h{d}"), &chunks, &vectors)
            .unwrap();
    }
    println!(
        "store 10k chunks (no embedding): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for (i, (q, _)) in QUESTIONS.iter().cycle().take(200).enumerate() {
        let qv = vector(1_000_000 + i as u64);
        let t = Instant::now();
        let hits = kb.search(q, Some(&qv), &SearchOptions::default()).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(hits.len(), 5);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    println!(
        "hybrid query at {CHUNKS} chunks ({DIMS}-d): p50 {:.2} ms, p99 {:.2} ms",
        pct(0.5),
        pct(0.99)
    );
    let s = kb.stats().unwrap();
    println!(
        "size: {} bytes for {} chunks = {} bytes/chunk (vector alone {} bytes)",
        s.size_bytes,
        s.chunks,
        s.size_bytes / s.chunks.max(1),
        DIMS * 4
    );
}
