#!/usr/bin/env bash
# Speed benchmark: llmkit-local (its native llama engine) against llama.cpp (node-llama-cpp)
# on the same GGUF, prompt, thread count and 128 greedy tokens. Prints decode
# tokens/s, time to first token and peak RSS, once for the shipped Q4_1 file and
# once for its Q8_0 conversion, with the ratios to the targets.
#
# Usage: benches/local/run.sh [--threads N] [--runs N] [--tokens N] [--second-turn] [MODEL.gguf]
# Defaults: 2 threads, best of 3 runs, 128 tokens,
# ${LLMKIT_MODELS_DIR:-<repo>/models}/SmolLM2-135M-Instruct.Q4_1.gguf.
# --second-turn: only llmkit, time to first token of a second chat turn over a
# 1,000-token history with the KV prefix cache against the cold prefill (no node).
# Needs: cargo, node (npm install in benches/local first), python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
threads=2
runs=3
tokens=128
second_turn=0
model="${LLMKIT_MODELS_DIR:-$repo/models}/SmolLM2-135M-Instruct.Q4_1.gguf"

die() {
  echo "bench: error: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads | --runs | --tokens)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"
      declare "${1#--}=$2"
      shift 2
      ;;
    --second-turn)
      second_turn=1
      shift
      ;;
    -h | --help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $1" ;;
    *)
      model="$1"
      shift
      ;;
  esac
done

[[ -f "$model" ]] || die "model $model not found; run scripts/fetch-models.sh"
[[ $second_turn == 1 || -d "$here/node_modules/node-llama-cpp" ]] ||
  die "node-llama-cpp is not installed; run: (cd benches/local && npm install)"
command -v python3 >/dev/null || die "python3 is needed to print the table"

results="$here/results"
mkdir -p "$results"
stamp="$(date +%Y%m%d-%H%M%S)"
out="$results/$stamp.jsonl"

# The bench-release profile (the root Cargo.toml) is release without incremental
# compilation and with one codegen unit, so that the figures do not depend on what
# was rebuilt last.
echo "bench: building bench_decode (profile bench-release) ..." >&2
(cd "$repo" && cargo build --quiet --profile bench-release -p llmkit-local --example bench_decode)
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bench_decode="$target_dir/bench-release/examples/bench_decode"
[[ -x "$bench_decode" ]] || die "$bench_decode was not built"

if [[ $second_turn == 1 ]]; then
  # Each run is one process: it loads the model twice (with and without the KV prefix
  # cache), answers the first turn on the cached one, then times the second turn's first
  # token on both. The ratio is taken within the run, so load on the machine affects both.
  echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for ((i = 1; i <= runs; i++)); do
    echo "bench: second turn, run $i/$runs" >&2
    "$bench_decode" "$model" --threads "$threads" --second-turn | tail -n 1 >>"$out" ||
      die "bench_decode --second-turn failed on $model"
  done
  echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  python3 - "$out" "$threads" <<'EOF'
import json, statistics, sys
path, threads = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path)]
print(f"\nsecond chat turn, threads={threads}, {len(rows)} runs, results in {path}\n")
print(f"{'run':>3} {'prompt':>6} {'reused':>6} {'cold ms':>8} {'warm ms':>8} {'ratio':>6} {'same':>5} {'KV MB':>6} {'RSS MB':>7}")
for i, r in enumerate(rows, 1):
    print(f"{i:>3} {r['prompt_tokens']:>6} {r['reused_tokens']:>6} {r['cold_ttft_ms']:>8.1f} {r['warm_ttft_ms']:>8.1f} "
          f"{r['ratio']:>6.3f} {str(r['same_answer']):>5} {r['kv_cache_mb']:>6.1f} {r['peak_rss_mb']:>7.1f}")
ratios = [r["ratio"] for r in rows]
best, median = min(ratios), statistics.median(ratios)
same = all(r["same_answer"] for r in rows)
ok = median <= 0.15 and same
print(f"\nwarm/cold time to first token: best {best:.3f}, median {median:.3f} "
      f"(target <= 0.15: {'ok' if ok else 'MISSED'}); same answers: {same}")
EOF
  exit 0
fi

# Runs "$@" once; appends its JSON line, tagged with engine and file, to $out.
measure() {
  local engine="$1" file="$2" line
  shift 2
  line="$("$@" | tail -n 1)" || die "$engine failed on $file"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(engine=sys.argv[2], file=sys.argv[3], file_bytes=int(sys.argv[4])); print(json.dumps(d))' \
    "$line" "$engine" "$file" "$(stat -c %s "$file")" >>"$out"
}

llmkit() {
  "$bench_decode" "$1" --threads "$threads" --tokens "$tokens"
}
llamacpp() {
  node "$here/llamacpp_bench.mjs" "$1" --threads "$threads" --tokens "$tokens"
}

# The second file is the shipped model's Q8_0 conversion (llmkit-local makes it
# the way it converts slow quant types, and caches it next to the model). Make it
# once before measuring, so conversion is not timed.
q8="$("$bench_decode" "$model" --convert-q8)" || die "cannot convert $model to Q8_0"
[[ -f "$q8" ]] || die "no Q8_0 conversion of $model"

echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)" >&2
# The engines alternate run by run, so a burst of other work on the machine
# disturbs both rather than one.
for file in "$model" "$q8"; do
  for ((i = 1; i <= runs; i++)); do
    echo "bench: $(basename "$file"), run $i/$runs" >&2
    measure llmkit "$file" llmkit "$file"
    measure llama.cpp "$file" llamacpp "$file"
  done
done

echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$out" "$threads" "$runs" <<'EOF'
import json, statistics, sys
from collections import defaultdict

path, threads, runs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = defaultdict(list)
for line in open(path):
    d = json.loads(line)
    rows[(d["file"], d["engine"])].append(d)

def summary(runs):
    # Best decode speed and TTFT: on a shared machine the fastest run is the least disturbed.
    return {
        "decode": max(r["decode_tok_s"] for r in runs),
        "decode_median": statistics.median(r["decode_tok_s"] for r in runs),
        "ttft": min(r["ttft_ms"] for r in runs),
        "load": min(r["load_ms"] for r in runs),
        "rss": max(r["peak_rss_mb"] for r in runs),
        "base": max(r.get("baseline_rss_mb", 0) for r in runs),
        "tokens": runs[0]["completion_tokens"],
        "prompt": runs[0]["prompt_tokens"],
        "mb": runs[0]["file_bytes"] / 1e6,
    }

files = list(dict.fromkeys(f for f, _ in rows))
w = max(len(f.rsplit("/", 1)[-1]) for f in files)
print(f"\nthreads={threads}, best of {runs} runs, results in {path}\n")
hdr = f"{'file':<{w}} {'engine':<10} {'prompt':>6} {'gen':>4} {'load ms':>8} {'ttft ms':>8} {'tok/s':>7} {'median':>7} {'RSS MB':>7} {'RSS/GGUF':>8}"
print(hdr)
print("-" * len(hdr))
verdicts = []
for f in files:
    s = {e: summary(rows[(f, e)]) for e in ("llmkit", "llama.cpp") if (f, e) in rows}
    for e, x in s.items():
        name = f.rsplit("/", 1)[-1]
        print(f"{name:<{w}} {e:<10} {x['prompt']:>6} {x['tokens']:>4} {x['load']:>8.0f} {x['ttft']:>8.1f} "
              f"{x['decode']:>7.1f} {x['decode_median']:>7.1f} {x['rss']:>7.1f} {x['rss'] / x['mb']:>8.2f}")
    if len(s) == 2:
        c, l = s["llmkit"], s["llama.cpp"]
        speed = c["decode"] / l["decode"] if l["decode"] else float("nan")
        rss = c["rss"] / c["mb"]
        l_native = (l["rss"] - l["base"]) / l["mb"]
        verdicts.append(
            f"{f.rsplit('/', 1)[-1]}: llmkit/llama.cpp decode {speed:.2f}x (target >= 1.0: "
            f"{'ok' if speed >= 1.0 else 'MISSED'}); llmkit RSS/GGUF {rss:.2f} (target <= 1.5: "
            f"{'ok' if rss <= 1.5 else 'MISSED'}); llama.cpp RSS/GGUF {l['rss'] / l['mb']:.2f}, "
            f"{l_native:.2f} without node's {l['base']:.0f} MB baseline")
print()
for v in verdicts:
    print(v)
EOF
