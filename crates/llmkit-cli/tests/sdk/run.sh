#!/usr/bin/env bash
# The official OpenAI SDKs against `llmkit serve`: installs the pinned `openai` packages for
# Python (requirements.txt, into a venv) and Node (package.json + package-lock.json, with
# `npm ci`), both cached under target/sdk and reinstalled only when their pins change;
# starts llmkit-mock (or uses LLMKIT_MOCK_URL) and `llmkit serve --port 0` in a private
# home with freshly created virtual keys; then runs check.py and check.cjs, which use each
# SDK unchanged (only base URL and key are set).
#
# The Rust test `gateway_sdk::official_sdks_work_unchanged` runs this; by hand, after
# `cargo build --release -p llmkit-cli -p llmkit-testkit`:
#   bash crates/llmkit-cli/tests/sdk/run.sh
#
# Environment: LLMKIT_BIN (default target/release/llmkit), LLMKIT_MOCK_URL (a running mock;
# else LLMKIT_MOCK_BIN, default target/release/llmkit-mock, is started), LLMKIT_SDK_CACHE
# (default target/sdk). Exit status: 0 when every check passed, 3 when an SDK could not be
# installed (no python3 venv, npm or registry), 1 on any other failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
bin="${LLMKIT_BIN:-$root/target/release/llmkit}"
cache="${LLMKIT_SDK_CACHE:-$root/target/sdk}"
mkdir -p "$cache"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The SDKs, each reinstalled only when its pins change (the stamp is their hash).
install_python() {
  local venv="$cache/venv" stamp
  stamp="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  rm -rf "$venv"
  python3 -m venv "$venv" || return 3
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-virtualenv -r "$here/requirements.txt" || return 3
  echo "$stamp" >"$venv/.stamp"
}
install_node() {
  local dir="$cache/node" stamp
  stamp="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) || return 3
  echo "$stamp" >"$dir/.stamp"
}
install_python || { echo "run.sh: cannot install the Python SDK (python3 -m venv, pip)" >&2; exit 3; }
install_node || { echo "run.sh: cannot install the Node SDK (npm ci)" >&2; exit 3; }

# Waits for a line starting with $2 in file $1 and prints the rest of it.
first_line() {
  local file="$1" prefix="$2" line
  for _ in $(seq 1 200); do
    line="$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)"
    if [ -n "$line" ]; then echo "${line#"$prefix"}"; return 0; fi
    sleep 0.05
  done
  echo "run.sh: no '$prefix' line in $file:" >&2
  cat "$file" >&2
  return 1
}

mock="${LLMKIT_MOCK_URL:-}"
if [ -z "$mock" ]; then
  "${LLMKIT_MOCK_BIN:-$root/target/release/llmkit-mock}" --port 0 >"$work/mock.out" 2>&1 &
  pids+=("$!")
  mock="$(first_line "$work/mock.out" "listening on ")"
fi

# A private home: the store with the keys, no config, the mock as the upstream.
llmkit() {
  env -u OPENAI_ORG_ID -u OPENAI_PROJECT_ID -u LLMKIT_MODEL -u LLMKIT_PROFILE -u LLMKIT_CONFIG \
    HOME="$work/home" XDG_CONFIG_HOME="$work/home/config" XDG_DATA_HOME="$work/home/data" \
    OPENAI_BASE_URL="$mock/v1" OPENAI_API_KEY="sk-sdk-test-upstream" "$bin" "$@"
}
field() { sed -n "s/^$1: *//p"; }

created="$(llmkit keys create --name sdk)"
KEY="$(field secret <<<"$created")"
# A budget too small for any request: its 429s, and 400 for a model it cannot price.
created="$(llmkit keys create --name sdk-budget --budget-daily 0.000001)"
BUDGET_KEY="$(field secret <<<"$created")"
BUDGET_ID="$(field id <<<"$created")"
# 60 requests a minute, one back each second: each SDK uses its own key's limit up, then
# the SDK's retry waits out the 429's retry-after-ms and succeeds.
RPM=60
created="$(llmkit keys create --name sdk-rpm-python --rpm "$RPM")"
RPM_KEY_PY="$(field secret <<<"$created")"
RPM_ID_PY="$(field id <<<"$created")"
created="$(llmkit keys create --name sdk-rpm-node --rpm "$RPM")"
RPM_KEY_NODE="$(field secret <<<"$created")"
RPM_ID_NODE="$(field id <<<"$created")"
export KEY BUDGET_KEY BUDGET_ID RPM

llmkit serve --port 0 >"$work/serve.out" 2>"$work/serve.err" &
pids+=("$!")
GATEWAY_URL="$(first_line "$work/serve.out" "llmkit gateway listening on ")"
export GATEWAY_URL

# Each check is bounded, so a hung SDK call fails the run instead of stalling it.
status=0
RPM_KEY="$RPM_KEY_PY" RPM_ID="$RPM_ID_PY" \
  timeout 180 "$cache/venv/bin/python" "$here/check.py" || status=1
RPM_KEY="$RPM_KEY_NODE" RPM_ID="$RPM_ID_NODE" NODE_PATH="$cache/node/node_modules" \
  timeout 180 node "$here/check.cjs" || status=1
if [ "$status" -ne 0 ]; then
  echo "run.sh: the gateway's stderr:" >&2
  cat "$work/serve.err" >&2
fi
exit "$status"
