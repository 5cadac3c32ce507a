#!/usr/bin/env bash
# Batch-runner memory bound: peak RSS of `llmkit batch run --task ask` over N rows (default
# 1,000,000) against llmkit-mock with 1 ms latency, printed beside the same run over N/100
# rows (the peer: memory must not grow with the input). Also prints wall time and rows/s.
# Usage: benches/batch/rss.sh [N]   (needs `cargo build --release -p llmkit-cli -p llmkit-testkit`)
set -euo pipefail
N=${1:-1000000}
SMALL=$((N / 100))
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((30000 + RANDOM % 20000))

gen() { # file rows
  python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"text":"Row %d: please answer this short question about batch row %d.","n":%d}\n' % (i, i, i))
PY
}
gen "$WORK/big.jsonl" "$N"
gen "$WORK/small.jsonl" "$SMALL"

"$BIN/llmkit-mock" --port "$PORT" --latency-ms 1 >/dev/null 2>&1 &
sleep 0.5
export HOME=$WORK/home XDG_DATA_HOME=$WORK/home/data XDG_CONFIG_HOME=$WORK/home/cfg
export OPENAI_API_KEY=sk-bench OPENAI_BASE_URL=http://127.0.0.1:$PORT/v1

run() { # name input
  local name=$1 input=$2
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v "$BIN/llmkit" batch run "$input" -o "$WORK/$name.out.jsonl" --task ask \
      -m gpt-4o-mini --max-tokens 16 --concurrency 64 --max-attempts 20 --json \
      > "$WORK/$name.summary.json" 2> "$WORK/$name.time"
  end=$(date +%s.%N)
  local rss rows
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/$name.time")
  rows=$(wc -l < "$WORK/$name.out.jsonl")
  python3 - "$name" "$rows" "$start" "$end" "$rss" <<'PY'
import sys
name, rows, start, end, rss = sys.argv[1:]
wall = float(end) - float(start)
print(f"[{name}] {int(rows):,} rows in {wall:.1f}s ({int(rows)/wall:,.0f} rows/s), peak RSS {int(rss)/1024:.1f} MiB")
PY
}
run small "$WORK/small.jsonl"
run big "$WORK/big.jsonl"
echo "target: big-run peak RSS < 100 MiB"
