//! Redaction throughput on one core: a generated mixed corpus (prose with about 1% of
//! sentences carrying personal data), redacted per 8 KiB document with a fresh placeholder
//! map each, beside a plain `regex` email scan of the same bytes as the peer.
//!
//! Usage: `cargo run --release -p llmkit-tasks --example redact_bench -- [MB]` (default 100).

// A benchmark or example: a failed unwrap ends the run, which is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/redact_corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::Instant;

use llmkit_tasks::{PlaceholderMap, Redactor};

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let t = Instant::now();
    let mixed = corpus::generate(42, mb << 20, 0.01, 0.02).text;
    let clean = corpus::generate(43, mb << 20, 0.0, 0.0).text;
    eprintln!("generated 2 x {mb} MB in {:.1}s", t.elapsed().as_secs_f64());
    let docs = split(&mixed);
    let clean_docs = split(&clean);
    let r = Redactor::all();

    let redact_mbs = best_of(3, mixed.len(), || {
        let mut n = 0;
        for d in &docs {
            let mut map = PlaceholderMap::new();
            n += r.redact_cow(d, &mut map).len();
        }
        n
    });
    let clean_mbs = best_of(3, clean.len(), || {
        let mut map = PlaceholderMap::new();
        clean_docs
            .iter()
            .map(|d| r.redact_cow(d, &mut map).len())
            .sum()
    });
    let email = regex::Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
        .unwrap_or_else(|e| panic!("{e}"));
    let peer_mbs = best_of(3, mixed.len(), || {
        docs.iter().map(|d| email.find_iter(d).count()).sum()
    });
    let found: usize = docs.iter().map(|d| r.detect(d).len()).sum();

    println!(
        "corpus: {mb} MB mixed ({found} detections), {mb} MB clean prose, {} documents",
        docs.len()
    );
    println!("redact (all kinds), mixed corpus : {redact_mbs:8.0} MB/s");
    println!("redact (all kinds), clean prose  : {clean_mbs:8.0} MB/s");
    println!("peer: regex email scan, mixed    : {peer_mbs:8.0} MB/s");
    println!(
        "ratio redact / peer              : {:8.2}",
        redact_mbs / peer_mbs
    );
}

/// About 8 KiB documents, cut at line ends.
fn split(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 8192).min(text.len());
        while end < text.len() && !text.is_char_boundary(end) {
            end += 1;
        }
        if let Some(nl) = text[end..].find('\n') {
            end += nl + 1;
        } else {
            end = text.len();
        }
        docs.push(&text[start..end]);
        start = end;
    }
    docs
}

/// The best throughput (MB/s) of `runs` timed runs of `f` over `bytes`.
fn best_of(runs: usize, bytes: usize, mut f: impl FnMut() -> usize) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}
