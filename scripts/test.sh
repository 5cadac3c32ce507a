#!/usr/bin/env bash
# Runs llmkit's whole test suite the way CI does: fetches the local models (into ./models
# unless LLMKIT_MODELS_DIR is set) and requires them (LLMKIT_REQUIRE_MODELS=1: a test that
# would skip for want of a model fails instead), then runs every crate's tests in release
# mode (candle is ~100x slower in debug builds, and one profile means one build). Starts
# PostgreSQL and Redis (scripts/services.sh) for the llmkit-cluster tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export LLMKIT_MODELS_DIR="${LLMKIT_MODELS_DIR:-$PWD/models}"
bash scripts/fetch-models.sh --dir "$LLMKIT_MODELS_DIR"
export LLMKIT_REQUIRE_MODELS=1

# PostgreSQL and Redis on loopback for the scale-out tests (idempotent: a running one is
# reused; installs them from Debian's packages where missing).
if [ -z "${LLMKIT_TEST_POSTGRES_URL:-}" ] || [ -z "${LLMKIT_TEST_REDIS_URL:-}" ]; then
  eval "$(bash scripts/services.sh start)"
fi

# Tests must never reach a real API, whatever the caller's environment holds.
unset OPENAI_API_KEY OPENAI_BASE_URL OPENAI_ORG_ID OPENAI_PROJECT_ID LLMKIT_MODEL LLMKIT_PROFILE

cargo test --workspace --release --no-fail-fast "$@"
