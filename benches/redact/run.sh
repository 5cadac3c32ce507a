#!/usr/bin/env bash
# Redaction throughput on one core: generates a mixed corpus (default 100 MB, prose with
# about 1% of sentences carrying personal data) and a clean one, and prints MB/s for
# `Redactor::redact` beside a plain `regex` email scan (the peer) in the same run.
# Usage: benches/redact/run.sh [MB]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p llmkit-tasks --example redact_bench
exec taskset -c 0 target/release/examples/redact_bench "${1:-100}"
