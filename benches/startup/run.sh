#!/usr/bin/env bash
# Prints the start-up time of `llmkit --help` (target: under 20 ms), next to peers measured
# in the same run on the same machine: `git --help` (a native CLI) and `python3 -c pass`.
# Usage: benches/startup/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-50}"
cargo build --release -p llmkit-cli --quiet
bin="$PWD/target/release/llmkit"

# Mean wall time in ms of RUNS executions of a command (after 3 warm-ups).
measure() {
  for _ in 1 2 3; do "$@" >/dev/null 2>&1 || true; done
  local start end
  start=$(date +%s%N)
  for ((i = 0; i < runs; i++)); do "$@" >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  echo "scale=2; ($end - $start) / 1000000 / $runs" | bc
}

llmkit_ms=$(measure "$bin" --help)
git_ms=$(measure git --help)
py_ms=$(measure python3 -c pass)
printf '%-22s %8s ms\n' "llmkit --help" "$llmkit_ms" "git --help" "$git_ms" "python3 -c pass" "$py_ms"
printf 'ratio llmkit/git:    %s\n' "$(echo "scale=2; $llmkit_ms / $git_ms" | bc)"
printf 'ratio llmkit/python: %s\n' "$(echo "scale=2; $llmkit_ms / $py_ms" | bc)"
verdict=$(echo "$llmkit_ms < 20" | bc)
[ "$verdict" = 1 ] && echo "target (< 20 ms): met" || echo "target (< 20 ms): NOT met"
