#!/usr/bin/env bash
# Batch-runner benchmark: N rows against llmkit-mock (--latency-ms 200 --fault-rate 0.05),
# once request-bound and once token-bound. Prints llmkit's wall time against the theoretical
# minimum max(N/RPM, tokens/TPM), the 429s it provoked and its peak RSS, then the same
# workload through a plain asyncio loop with the official `openai` package.
# Then the case of issue 22 (`faults-429`): 1,000 rows of about 108 rate-limit tokens each
# against `--tpm 35000 --rpm 6000 --latency-ms 200 --fault-rate 0.05 --faults 500,503,429`,
# timed against the bound (tokens - the full bucket at the start) / TPM, with the rows lost.
# Usage: benches/batch/run.sh [N]        all three cases
#        benches/batch/run.sh faults-429 only the issue-22 case (about 2-3 minutes)
# (needs `cargo build --release -p llmkit-cli -p llmkit-testkit`)
set -euo pipefail
CASE=all
if [[ ${1:-} == faults-429 ]]; then CASE=faults-429; shift; fi
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

# Issue 22: token-bound with 500, 503 and 429 faults. The bound counts every row once: a
# retried attempt that the mock charged is overhead, and shows in the ratio.
faults_429() {
  local rows=1000 rpm=6000 tpm=35000 maxtok=85
  python3 - "$WORK/in429.jsonl" "$rows" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"text": f"Row {i}: please summarise this short sentence about batch number {i}."}) + "\n")
PY
  "$BIN/llmkit-mock" --port "$PORT" --rpm $rpm --tpm $tpm --latency-ms 200 --fault-rate 0.05 \
      --faults 500,503,429 --seed 1 --log "$WORK/mock429.jsonl" >/dev/null 2>&1 &
  local mock=$!
  sleep 0.5
  export HOME=$WORK/home429 XDG_DATA_HOME=$WORK/home429/data XDG_CONFIG_HOME=$WORK/home429/cfg
  export OPENAI_API_KEY=sk-bench OPENAI_BASE_URL=http://127.0.0.1:$PORT/v1
  local out=$WORK/faults429.out.jsonl rc=0
  "$BIN/llmkit" batch run "$WORK/in429.jsonl" -o "$out" --task ask -m gpt-4o-mini \
      --max-tokens $maxtok --rpm $rpm --tpm $tpm --json > "$WORK/summary429.json" || rc=$?
  kill $mock; wait $mock 2>/dev/null || true
  # BENCH_KEEP=DIR keeps the mock's request log and the output, to study the timeline.
  if [[ -n ${BENCH_KEEP:-} ]]; then mkdir -p "$BENCH_KEEP"; cp "$WORK/mock429.jsonl" "$out" "$WORK/summary429.json" "$BENCH_KEEP/"; fi
  python3 - "$rows" "$tpm" "$maxtok" "$WORK/summary429.json" "$out" "$WORK/mock429.jsonl" "$rc" <<'PY'
import json, sys
rows, tpm, maxtok, summ, out, log, rc = sys.argv[1:]
rows, tpm, maxtok = int(rows), int(tpm), int(maxtok)
s = json.load(open(summ))
lines = [json.loads(l) for l in open(out)]
ok = [l for l in lines if "result" in l]
lost = rows - len(ok)
# The rows' rate-limit tokens as the mock counts them: its prompt count plus max_tokens.
tokens = sum((l.get("usage") or l["result"]["usage"])["prompt_tokens"] + maxtok for l in ok)
bound = (tokens - tpm) / tpm * 60
attempts = [json.loads(l) for l in open(log)]
chats = [a for a in attempts if a.get("path", "").endswith("/chat/completions")]
faults = {}
for a in chats:
    if a.get("fault"):
        faults[a["fault"]] = faults.get(a["fault"], 0) + 1
real429 = sum(1 for a in chats if a.get("status") == 429 and not a.get("fault"))
print(f"[faults-429] llmkit: {s['elapsed_secs']:.1f}s wall vs {bound:.1f}s bound "
      f"(({tokens} tokens - {tpm} bucket) / {tpm} TPM) = {s['elapsed_secs']/bound:.3f}x; "
      f"{rows} rows ({tokens/max(len(ok),1):.1f} tokens each), {lost} lost, exit {rc}; "
      f"{len(chats)} requests, injected faults {faults}, {real429} 429s from the bucket, "
      f"{s['retries']} retries")
PY
}

if [[ $CASE == all ]]; then
  # Request-bound: N/RPM dominates. Token-bound: tokens/TPM dominates.
  bench request-bound $((N * 60 / 75)) 100000000
  bench token-bound 1000000 $(( (N * 80) * 60 / 75 ))
fi
faults_429
