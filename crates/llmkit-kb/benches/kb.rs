//! The knowledge-base benchmark (`cargo bench -p llmkit-kb --bench kb`, as `benches/kb/run.sh`
//! runs it): ingest rate with local MiniLM embeddings, query latency (hybrid, BM25 alone, vectors
//! alone, and the plain peers: the full FTS5 OR-query and a plain vector scan) at 10k and
//! 100k chunks, and bytes on disk per chunk.
//!
//! The large knowledge base is the eval corpus plus distinct synthetic chunks whose words
//! follow Zipf's law over the corpus vocabulary (most frequent corpus words first, then
//! made-up words up to 30k), so a question's terms match as many chunks as they would in a
//! big real collection: "the" nearly all, a content word hundreds to thousands.

// A benchmark or example: a failed unwrap ends the run, which is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The eval's question sets that the benchmark does not ask are unused here.
#[allow(dead_code)]
#[path = "../tests/it/corpus.rs"]
mod corpus;
#[path = "../tests/it/support.rs"]
mod support;

use std::time::Instant;

use llmkit_kb::{Kb, NewChunk, SearchOptions};
use llmkit_testkit::rng::SplitMix64;

use crate::corpus::{DOCS, QUESTIONS};

const VOCABULARY: usize = 30_000;
const WORDS_PER_CHUNK: usize = 120;

const SIZES: [usize; 2] = [10_000, 100_000];
const DIMS: usize = 384;

/// A deterministic pseudo-random unit vector, so the bench needs no model.
fn vector(seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut v: Vec<f32> = (0..DIMS).map(|_| rng.signed_f32(1.0)).collect();
    llmkit_kb::normalize(&mut v);
    v
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // Ingest with MiniLM: the eval corpus, embedded and stored.
    let t = Instant::now();
    let with_model = support::minilm();
    let load = t.elapsed();
    if let Some(e) = with_model.as_ref() {
        let t = Instant::now();
        let mut total = 0;
        for round in 0..4 {
            let sub = dir.path().join(format!("ingest{round}"));
            let kb = support::build(&sub, Some(e));
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
    // Corpus text with random vectors, in documents of 100 chunks: measured at 10k, then
    // filled up to 100k and measured again.
    let mut kb = Kb::create(dir.path(), "bench", "bench").unwrap();
    let zipf = Zipf::from_corpus();
    let mut stored = 0;
    for size in SIZES {
        let t = Instant::now();
        while stored < size {
            fill(&mut kb, stored / 100, &zipf);
            stored += 100;
        }
        println!(
            "store up to {size} chunks (no embedding): {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        kb.search("warm up", Some(&vector(7)), &SearchOptions::default())
            .unwrap();
        println!(
            "first query at {size} chunks (reads the vector matrix): {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        for (label, bm25, vec) in [
            ("hybrid", true, true),
            ("bm25", true, false),
            ("vector", false, true),
        ] {
            let opts = SearchOptions {
                bm25,
                vector: vec,
                ..SearchOptions::default()
            };
            let (p50, p99) = latency(|i, q| {
                let hits = kb.search(q, Some(&vector(1_000_000 + i)), &opts).unwrap();
                assert_eq!(hits.len(), 5);
            });
            println!("{label} query at {size} chunks ({DIMS}-d): p50 {p50:.2} ms, p99 {p99:.2} ms");
        }
        // The BM25 peer: the plain FTS5 OR-query over every term, and how much of its top
        // 10 the row-budgeted query (what llmkit runs) finds.
        let (p50, p99) = latency(|_, q| {
            kb.bm25_within(q, 10, None).unwrap();
        });
        println!(
            "peer: FTS5 OR-query of every term at {size} chunks: p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
        // Quality against the peer: how often each finds the question's own corpus chunk
        // in its top 10, and how much of the peer's top 10 the budgeted query shares.
        let source_of: std::collections::HashMap<&str, &str> =
            DOCS.iter().map(|(name, text)| (*text, *name)).collect();
        // The budget's trade-off: llmkit's default, and smaller and larger ones.
        for budget in [2_000, llmkit_kb::BM25_ROW_BUDGET, 10_000, 20_000] {
            let (mut same, mut total, mut found, mut found_full) = (0, 0, 0, 0);
            for (q, expected) in QUESTIONS {
                let full = kb.bm25_within(q, 10, None).unwrap();
                let kept = kb.bm25_within(q, 10, Some(budget)).unwrap();
                let hit = |list: &[(i64, f32)]| {
                    list.iter().any(|(id, _)| {
                        let text = kb.chunk(*id).unwrap().text;
                        source_of.get(text.as_str()) == Some(expected)
                    })
                };
                found += usize::from(hit(&kept));
                found_full += usize::from(hit(&full));
                same += kept
                    .iter()
                    .filter(|h| full.iter().any(|f| f.0 == h.0))
                    .count();
                total += full.len();
            }
            let (p50, p99) = latency(|_, q| {
                kb.bm25_within(q, 10, Some(budget)).unwrap();
            });
            println!(
                "bm25 quality at {size} chunks, budget {budget} rows: expected source in the \
                 top 10 for {found}/{n} questions (full OR-query {found_full}/{n}); top-10 \
                 overlap with the full query {:.2}; p50 {p50:.2} ms, p99 {p99:.2} ms",
                same as f64 / total.max(1) as f64,
                n = QUESTIONS.len()
            );
        }
        // The vector peer: the same exact search written plainly (vectors as a Vec per chunk, an
        // iterator dot product, a full sort), over the same vectors in memory.
        let rows: Vec<Vec<f32>> = (0..size as u64).map(vector).collect();
        let (p50, p99) = latency(|i, _| {
            let q = vector(1_000_000 + i);
            let mut scored: Vec<(usize, f32)> = rows
                .iter()
                .enumerate()
                .map(|(j, r)| (j, r.iter().zip(&q).map(|(a, b)| a * b).sum()))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            assert!(scored.len() >= 50);
        });
        println!("peer: plain scan + full sort at {size} chunks: p50 {p50:.2} ms, p99 {p99:.2} ms");
    }
    let s = kb.stats().unwrap();
    println!(
        "size: {} bytes for {} chunks = {} bytes/chunk (vector alone {} bytes)",
        s.size_bytes,
        s.chunks,
        s.size_bytes / s.chunks.max(1),
        DIMS * 4
    );
}

/// Words drawn with probability ∝ 1/rank.
struct Zipf {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Zipf {
    /// As in English text, the head of the distribution (ranks 1 to 150) is function words,
    /// which queries drop as stopwords; then the corpus's own words by their frequency in
    /// the corpus, each followed by a made-up word (so they sit at ranks 150 to about 2,500
    /// and match 0.5 to 8% of the chunks, as a domain's words do in a large knowledge base
    /// on that domain); then made-up words up to [`VOCABULARY`].
    fn from_corpus() -> Self {
        const FUNCTION: &[&str] = &[
            "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "for", "on", "with",
            "as", "are", "this", "be", "at", "or", "by", "from", "can", "your", "not", "an", "if",
            "do", "when", "which", "what", "how", "who", "i", "we", "they",
        ];
        let mut words: Vec<String> = FUNCTION.iter().map(|w| w.to_string()).collect();
        while words.len() < 150 {
            words.push(format!("f{}x", words.len()));
        }
        let mut freq: std::collections::HashMap<String, usize> = Default::default();
        for (_, text) in DOCS {
            for w in text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                *freq.entry(w.to_lowercase()).or_default() += 1;
            }
        }
        let mut content: Vec<(String, usize)> = freq
            .into_iter()
            .filter(|(w, _)| !FUNCTION.contains(&w.as_str()))
            .collect();
        content.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (i, (w, _)) in content.into_iter().enumerate() {
            words.push(w);
            words.push(format!("w{i}x"));
        }
        let mut i = 0;
        while words.len() < VOCABULARY {
            words.push(format!("m{i}x"));
            i += 1;
        }
        let mut cdf = Vec::with_capacity(words.len());
        let mut acc = 0.0;
        for r in 0..words.len() {
            acc += 1.0 / (r + 1) as f64;
            cdf.push(acc);
        }
        cdf.iter_mut().for_each(|c| *c /= acc);
        Self { words, cdf }
    }

    fn chunk(&self, rng: &mut SplitMix64) -> String {
        let mut out = String::new();
        for _ in 0..WORDS_PER_CHUNK {
            let u = rng.unit_f64();
            let i = self
                .cdf
                .partition_point(|c| *c < u)
                .min(self.words.len() - 1);
            out.push_str(&self.words[i]);
            out.push(' ');
        }
        out
    }
}

/// Stores document `d`: 100 chunks (document 0 is the eval corpus itself, the rest are
/// synthetic), each with its own random vector.
fn fill(kb: &mut Kb, d: usize, zipf: &Zipf) {
    let mut rng = SplitMix64::new(d as u64 * 7919 + 1);
    let chunks: Vec<NewChunk> = (0..100)
        .map(|i| NewChunk {
            text: match DOCS.get(i).filter(|_| d == 0) {
                Some((_, text)) => text.to_string(),
                None => zipf.chunk(&mut rng),
            },
            location: format!("doc {d}"),
        })
        .collect();
    let vectors: Vec<Vec<f32>> = (0..100).map(|i| vector((d * 100 + i) as u64)).collect();
    kb.replace_document(&format!("doc{d}"), &format!("h{d}"), &chunks, &vectors)
        .unwrap();
}

/// (p50, p99) in milliseconds of 200 calls of `f(i, question)`.
fn latency(mut f: impl FnMut(u64, &str)) -> (f64, f64) {
    let mut times = Vec::new();
    for (i, (q, _)) in QUESTIONS.iter().cycle().take(200).enumerate() {
        let t = Instant::now();
        f(i as u64, q);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.99))
}
