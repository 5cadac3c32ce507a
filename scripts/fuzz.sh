#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer) on the stable toolchain.
#
#   scripts/fuzz.sh TARGET SECONDS      one target, for SECONDS (0: until a crash or Ctrl-C)
#   scripts/fuzz.sh --all SECONDS       every target in turn, SECONDS each
#   scripts/fuzz.sh --build             build every target (one cargo invocation), run none
#   scripts/fuzz.sh --list              the targets
#
# Each run starts from the committed seeds in fuzz/corpus/TARGET and adds what it finds to
# a scratch corpus under fuzz/target/ (not committed); a crash is written to
# fuzz/artifacts/TARGET/ and the script fails. Extra libFuzzer flags go in FUZZ_ARGS (for
# example FUZZ_ARGS="-runs=10000000"). The report line per target gives executions, exec/s
# and seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-fuzz passes nightly-only flags (-Zsanitizer); the stable toolchain accepts them with
# RUSTC_BOOTSTRAP, so no nightly toolchain has to be installed.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

# Debug assertions on, so that integer overflow in the libraries is a crash, as in tests.
build_flags=(--debug-assertions)

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

targets() { (cd fuzz && cargo fuzz list); }

run_one() {
  local target=$1 seconds=$2
  local seeds="fuzz/corpus/$target" work="fuzz/target/corpus/$target"
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 2; }
  mkdir -p "$work" "fuzz/artifacts/$target"
  local log
  log=$(mktemp)
  # The scratch corpus first (new finds go there), then the committed seeds (read only).
  # -rss_limit_mb: well under the 24 GiB box, above what any target needs.
  set +e
  (cd fuzz && cargo fuzz run "${build_flags[@]}" "$target" \
      "../$work" "../$seeds" -- \
      -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
      ${FUZZ_ARGS:-}) >"$log" 2>&1
  local rc=$?
  set -e
  local execs per_sec time
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    tail -60 "$log" >&2
    echo "fuzz $target: FAILED (exit $rc) after ${execs:-?} executions; see fuzz/artifacts/$target/" >&2
    rm -f "$log"
    return 1
  fi
  echo "fuzz $target: ${execs:-?} executions, ${per_sec:-?} exec/s, ${time:-$seconds} s, no crash"
  rm -f "$log"
}

[ $# -ge 1 ] || usage
case "$1" in
  --list) targets ;;
  --build) (cd fuzz && cargo fuzz build "${build_flags[@]}") ;;
  --all)
    [ $# -eq 2 ] || usage
    (cd fuzz && cargo fuzz build "${build_flags[@]}")
    failed=0
    for t in $(targets); do
      run_one "$t" "$2" || failed=1
    done
    exit "$failed"
    ;;
  -*) usage ;;
  *)
    [ $# -eq 2 ] || usage
    run_one "$1" "$2"
    ;;
esac
