#!/usr/bin/env sh
# Knowledge-base eval and benchmark: recall@1/@5 of BM25, vector (local MiniLM) and hybrid
# retrieval over the fixed corpus in crates/llmkit-kb/tests/it/corpus.rs (direct,
# paraphrased and identifier questions), then ingest rate, query latency p50/p99 at 10k and
# 100k chunks against a plain-scan peer, and size per chunk. MiniLM is read from
# LLMKIT_MODELS_DIR (default <workspace>/models); without it only BM25 and the storage
# figures are measured.
set -eu
cd "$(dirname "$0")/../.."
# The eval is a test (it asserts recall floors); the benchmark is a bench target, not a test.
cargo test --release -p llmkit-kb --test it -- --nocapture --test-threads 1 retrieval:: 2>&1 |
    grep -E 'corpus:|recall@|SKIP|test result|panicked'
cargo bench -p llmkit-kb --bench kb 2>&1 |
    grep -E 'ingest|store up|query at|peer:|quality|size:|SKIP|panicked'
