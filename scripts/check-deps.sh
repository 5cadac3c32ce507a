#!/usr/bin/env bash
# Checks the layering of the workspace's dependency graph (ARCHITECTURE.md): no library crate
# links the ML runtime (candle) through its normal dependencies, `llmkit-store` links no
# HTTP stack (reqwest), and `llmkit-client` builds without its default features (so that
# `local`, which brings candle, stays optional).
#
# Usage: scripts/check-deps.sh   (exits non-zero, naming each violation, when one is found)
set -euo pipefail
cd "$(dirname "$0")/.."

libraries=(types client store tasks accounting batch eval kb gateway cluster testkit)
failed=0

# `cargo tree -e normal` follows only normal dependencies (no dev or build ones), with each
# crate's default features, as a dependent that names it in [dependencies] gets them.
for lib in "${libraries[@]}"; do
  tree=$(cargo tree --locked -e normal -p "llmkit-$lib" --prefix none --format '{p}')
  if grep -q '^candle-core ' <<<"$tree"; then
    echo "check-deps: llmkit-$lib links candle-core through its normal dependencies:" >&2
    cargo tree --locked -e normal -p "llmkit-$lib" -i candle-core --depth 8 >&2 || true
    failed=1
  fi
  if [ "$lib" = store ] && grep -q '^reqwest ' <<<"$tree"; then
    echo "check-deps: llmkit-store links reqwest through its normal dependencies:" >&2
    cargo tree --locked -e normal -p llmkit-store -i reqwest --depth 8 >&2 || true
    failed=1
  fi
done

if ! cargo check --locked --release -p llmkit-client --no-default-features; then
  echo "check-deps: llmkit-client does not build with --no-default-features" >&2
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "check-deps: ok (no candle in ${libraries[*]/#/llmkit-}; no reqwest in llmkit-store)"
