#!/usr/bin/env bash
# Batch-runner benchmark: N rows against llmkit-mock (--latency-ms 200 --fault-rate 0.05),
# once request-bound and once token-bound. Prints llmkit's wall time against the theoretical
# minimum max(N/RPM, tokens/TPM), the 429s it provoked and its peak RSS, then the same
# workload through a plain asyncio loop with the official `openai` package.
# Usage: benches/batch/run.sh [N]   (needs `cargo build --release -p llmkit-cli -p llmkit-testkit`)
set -euo pipefail
N=${1:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
CONC=64
MAXTOK=50
PORT=$((30000 + RANDOM % 20000))

python3 -c "import openai" 2>/dev/null || pip install -q openai >/dev/null 2>&1 || echo "(openai package unavailable: baseline skipped)"
python3 - "$WORK/in.jsonl" "$N" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"text": f"Row {i}: please summarise this short sentence about batch number {i}."}) + "\n")
PY

bench() { # name rpm tpm
  local name=$1 rpm=$2 tpm=$3
  "$BIN/llmkit-mock" --port "$PORT" --rpm "$rpm" --tpm "$tpm" --latency-ms 200 --fault-rate 0.05 --seed 1 >/dev/null 2>&1 &
  local mock=$!
  sleep 0.5
  export HOME=$WORK/home XDG_DATA_HOME=$WORK/home/data XDG_CONFIG_HOME=$WORK/home/cfg
  export OPENAI_API_KEY=sk-bench OPENAI_BASE_URL=http://127.0.0.1:$PORT/v1
  local out=$WORK/$name.out.jsonl
  /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN/llmkit" batch run "$WORK/in.jsonl" -o "$out" --task ask \
      -m gpt-4o-mini --max-tokens $MAXTOK --concurrency $CONC --rpm "$rpm" --tpm "$tpm" \
      --max-attempts 50 --stall-timeout 2 --json > "$WORK/summary.json"
  local tokens
  tokens=$("$BIN/llmkit" batch run "$WORK/in.jsonl" -o "$WORK/dry.jsonl" --task ask -m gpt-4o-mini \
      --max-tokens $MAXTOK --dry-run --json | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['input_tokens']+d['expected_output_tokens'])")
  python3 - "$name" "$N" "$rpm" "$tpm" "$tokens" "$WORK/summary.json" "$(cat "$WORK/rss")" "$out" <<'PY'
import json, sys
name, n, rpm, tpm, tokens, summ, rss, out = sys.argv[1:]
s = json.load(open(summ)); n = int(n)
floor = max(n / int(rpm), int(tokens) / int(tpm)) * 60
errors = sum('"error":{' in l for l in open(out))
print(f"[{name}] llmkit: {s['elapsed_secs']:.1f}s wall vs {floor:.1f}s theoretical minimum "
      f"({s['elapsed_secs']/floor:.2f}x); {s['requests']} requests, {s['rate_limited']} 429s, "
      f"{s['retries']} retries, {errors} error rows, peak RSS {int(rss)/1024:.1f} MiB")
PY
  if python3 -c "import openai" 2>/dev/null; then
    local b
    b=$(python3 "$ROOT/benches/batch/baseline.py" "$WORK/in.jsonl" "http://127.0.0.1:$PORT/v1" gpt-4o-mini $MAXTOK $CONC)
    echo "[$name] openai+asyncio (concurrency $CONC): $b"
  fi
  kill $mock; wait $mock 2>/dev/null || true

}

# Request-bound: N/RPM dominates. Token-bound: tokens/TPM dominates.
bench request-bound $((N * 60 / 75)) 100000000
bench token-bound 1000000 $(( (N * 80) * 60 / 75 ))
