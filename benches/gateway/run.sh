#!/usr/bin/env bash
# Gateway benchmark: the same llmkit-mock measured directly, through `llmkit serve` with every
# feature on (a virtual key with RPM/TPM/concurrency limits, a daily budget so each request
# reserves before the call, the ledger), and through the LiteLLM proxy (2 workers), one
# target after the other in the same run, all on loopback. Prints two markdown tables: the
# latency each gateway adds over the mock at fixed rates (p50/p99), the maximum throughput,
# the streaming time to first token added, and peak RSS, with LiteLLM's figures as ratios.
#
# Usage: benches/gateway/run.sh [--quick] [--no-litellm] [--rates 500,2000,5000]
#                               [--duration SECS] [--streams N]
# Defaults: 20 s per point, fixed rates 500, 2,000 and 5,000 RPS, 200 streamed requests.
# --quick: 3 s per point and 30 streams (a smoke run, about a minute without LiteLLM).
# --no-litellm: only the mock and llmkit (no venv needed).
# Needs: `cargo build --release -p llmkit-cli -p llmkit-testkit`, python3 (with venv), cargo.
# Installs when missing: wrk (Debian's package), oha (`cargo install`, into
# target/bench-tools), LiteLLM (pinned, into its own venv under target/bench-tools).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="$repo/target/release"
tools="$repo/target/bench-tools"
OHA_VERSION=1.16.0
LITELLM_VERSION=1.108.5
duration=20
rates="500,2000,5000"
streams=200
litellm=1
conns=64

die() {
  echo "bench: error: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick)
      duration=3
      streams=30
      shift
      ;;
    --no-litellm)
      litellm=0
      shift
      ;;
    --duration | --streams)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"
      declare "${1#--}=$2"
      shift 2
      ;;
    --rates)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--rates needs a list like 500,2000"
      rates="$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ -x "$bin/llmkit" && -x "$bin/llmkit-mock" ]] ||
  die "build first: cargo build --release -p llmkit-cli -p llmkit-testkit"
command -v python3 >/dev/null || die "python3 is needed for the streaming client and the table"

# --- Tools -------------------------------------------------------------------------------
# wrk drives the maximum throughput (closed loop, lowest overhead per request). Debian's wrk
# 4.1 has no fixed-rate mode (`-R` is wrk2's), so the fixed-rate points use oha, whose `-q`
# sends at a fixed rate and whose `--latency-correction` measures each request from the time
# it was due, not from when a free connection sent it (no coordinated omission, as wrk2).
if ! command -v wrk >/dev/null; then
  [[ $(id -u) == 0 ]] || die "wrk is missing: apt-get install -y wrk"
  apt-get install -y -qq wrk >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  }
fi
oha="$tools/bin/oha"
if [[ "$("$oha" --version 2>/dev/null)" != "oha $OHA_VERSION" ]]; then
  echo "bench: installing oha $OHA_VERSION into $tools (once; a few minutes)" >&2
  # Its TLS through the system's OpenSSL: rustls's default aws-lc backend is a long C build.
  if ! pkg-config --exists openssl 2>/dev/null; then
    [[ $(id -u) == 0 ]] || die "oha needs OpenSSL's headers: apt-get install -y libssl-dev pkg-config"
    apt-get install -y -qq libssl-dev pkg-config >/dev/null 2>&1 || {
      apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config >/dev/null
    }
  fi
  nice -n 10 cargo install --quiet --locked --no-default-features --features native-tls \
    --version "$OHA_VERSION" --root "$tools" oha || die "cargo install oha failed"
fi
venv="$tools/litellm-$LITELLM_VERSION"
if [[ $litellm == 1 && ! -x "$venv/bin/litellm" ]]; then
  echo "bench: installing litellm[proxy]==$LITELLM_VERSION into $venv (once)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$venv/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION" ||
    die "pip install litellm[proxy]==$LITELLM_VERSION failed"
fi

# --- Processes -----------------------------------------------------------------------------
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until FILE has a line matching REGEX and prints the port in it.
wait_port() { # file regex
  local i
  for ((i = 0; i < 200; i++)); do
    if grep -qE "$2" "$1" 2>/dev/null; then
      grep -oE "$2" "$1" | head -1 | grep -oE '[0-9]+$'
      return 0
    fi
    sleep 0.05
  done
  die "no '$2' in $1: $(tail -n 5 "$1")"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Peak RSS in kB of PID and its descendants: the sum of each process's VmHWM.
peak_rss() { # pid
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
children = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(d))
todo, total, n = [root], 0, 0
while todo:
    p = todo.pop()
    todo += children.get(p, [])
    try:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
                    n += 1
    except OSError:
        pass
print(f'{{"peak_rss_kb": {total}, "processes": {n}}}')
PY
}

body='{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello to the gateway benchmark."}]}'
stream_body='{"model":"gpt-4o-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Say hello to the gateway benchmark, streamed."}]}'

# Runs every measurement against one target; results go to $work/NAME.*.json.
measure() { # name port key pid
  local name=$1 port=$2 key=$3 pid=$4 url="http://127.0.0.1:$2/v1/chat/completions"
  echo "bench: measuring $name" >&2
  # Warm-up: connections, caches, the first ledger rows.
  BENCH_BODY=$body BENCH_KEY=$key wrk -t1 -c8 -d1s -s "$here/post.lua" "$url" >/dev/null
  local r over=""
  for r in ${rates//,/ }; do
    if [[ -n $over ]]; then
      echo '{"skipped": true}' >"$work/$name.rate$r.json"
      continue
    fi
    "$oha" --no-tui --output-format json -z "${duration}s" -q "$r" -c "$conns" \
      --latency-correction -m POST -T application/json -H "Authorization: Bearer $key" \
      -d "$body" "$url" >"$work/$name.rate$r.json"
    # A target that cannot keep the rate is overloaded: higher rates are not measured.
    over=$(python3 - "$work/$name.rate$r.json" "$r" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print("over" if s["requestsPerSec"] < 0.9 * float(sys.argv[2]) else "")
PY
)
  done
  BENCH_BODY=$body BENCH_KEY=$key wrk -t2 -c"$conns" -d"${duration}s" --timeout 10s \
    -s "$here/post.lua" "$url" | tail -n 1 >"$work/$name.max.json"
  python3 "$here/ttft.py" 127.0.0.1 "$port" "$key" "$stream_body" "$streams" >"$work/$name.ttft.json"
  peak_rss "$pid" >"$work/$name.rss.json"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

"$bin/llmkit-mock" --port 0 >"$work/mock.out" 2>&1 &
mock_pid=$!
pids+=("$mock_pid")
mock_port=$(wait_port "$work/mock.out" 'listening on http://127.0.0.1:[0-9]+')
measure mock "$mock_port" sk-bench "$mock_pid"

# llmkit serve on a fresh store: one key with limits that never refuse and a budget that is
# never reached, so every request takes the admission, the reservation and the ledger path.
# The cache stays in its default mode (`auto`: only temperature-0 or seeded requests), which
# these requests are not, so each one reaches the mock.
export HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CONFIG_HOME="$work/home/cfg"
export OPENAI_API_KEY=sk-bench OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1"
export LLMKIT_STORE="$work/llmkit.db"
key=$("$bin/llmkit" keys create --name bench --rpm 1000000000 --tpm 4000000000 \
  --max-concurrent 100000 --budget-daily 1000000 2>/dev/null | awk '/^secret:/ {print $2}')
[[ $key == lk-* ]] || die "llmkit keys create printed no secret"
"$bin/llmkit" serve --port 0 >"$work/llmkit.out" 2>&1 &
llmkit_pid=$!
pids+=("$llmkit_pid")
llmkit_port=$(wait_port "$work/llmkit.out" 'listening on http://127.0.0.1:[0-9]+')
measure llmkit "$llmkit_port" "$key" "$llmkit_pid"
kill "$llmkit_pid"
wait "$llmkit_pid" 2>/dev/null || true
ledger_rows=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from ledger where command = ?", ("serve",)).fetchone()[0])' "$LLMKIT_STORE")

if [[ $litellm == 1 ]]; then
  lport=$(free_port)
  cat >"$work/litellm.yaml" <<YAML
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:$mock_port/v1
      api_key: sk-bench
general_settings:
  master_key: sk-litellm-bench
litellm_settings:
  telemetry: false
YAML
  # No database: LiteLLM's virtual keys, budgets and spend logs need PostgreSQL, so it runs
  # with its master key only (fewer features than llmkit's side). The price map is read from
  # the package, not fetched. Two workers under gunicorn: with uvicorn's own workers
  # (without --run_gunicorn) this release's worker processes exit at start.
  LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
    "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$lport" \
    --num_workers 2 --run_gunicorn >"$work/litellm.out" 2>&1 &
  litellm_pid=$!
  pids+=("$litellm_pid")
  for ((i = 0; i < 600; i++)); do
    curl -sf -o /dev/null -H "Authorization: Bearer sk-litellm-bench" \
      "http://127.0.0.1:$lport/health/readiness" && break
    kill -0 "$litellm_pid" 2>/dev/null || die "LiteLLM exited: $(tail -n 20 "$work/litellm.out")"
    sleep 0.2
  done
  curl -sf -o /dev/null -H "Authorization: Bearer sk-litellm-bench" -H "Content-Type: application/json" \
    -d "$body" "http://127.0.0.1:$lport/v1/chat/completions" ||
    die "LiteLLM does not answer: $(tail -n 20 "$work/litellm.out")"
  measure litellm "$lport" sk-litellm-bench "$litellm_pid"
  kill "$litellm_pid"
  wait "$litellm_pid" 2>/dev/null || true
fi
kill "$mock_pid"
wait "$mock_pid" 2>/dev/null || true
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work" "$rates" "$duration" "$streams" "$litellm" "$ledger_rows" "$conns" \
  "$load_before" "$load_after" "$LITELLM_VERSION" <<'PY'
import json, os, platform, sys

work, rates, duration, streams, with_litellm, ledger_rows, conns, lb, la, lver = sys.argv[1:]
rates = [int(r) for r in rates.split(",")]
names = ["mock", "llmkit"] + (["litellm"] if with_litellm == "1" else [])

def load(name, what):
    with open(os.path.join(work, f"{name}.{what}.json")) as f:
        return json.load(f)

def fixed(name, rate):
    d = load(name, f"rate{rate}")
    if d.get("skipped"):
        return None
    s = d["summary"]
    codes = d.get("statusCodeDistribution", {})
    # Requests still in flight when the run's time is up are cut ("aborted due to
    # deadline"): an artefact of the run's end, not a failure of the target.
    errors = sum(v for k, v in codes.items() if k != "200") + sum(
        v for k, v in d.get("errorDistribution", {}).items() if "deadline" not in k.lower())
    p = d["latencyPercentiles"]
    return {"p50": p["p50"] * 1000, "p99": p["p99"] * 1000, "rps": s["requestsPerSec"],
            "errors": errors, "over": s["requestsPerSec"] < 0.9 * rate}

def ms(v):
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"

def ratio(slow, fast):
    if fast <= 0.01:
        return f"≥ {slow / 0.01:,.0f}×"
    return f"{slow / fast:,.0f}×" if slow / fast >= 10 else f"{slow / fast:.1f}×"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"\nMachine: {os.cpu_count()} cores, {cpu}; load average {lb} before, {la} after "
      f"(1/5/15 min). {duration} s per point, {conns} connections, loopback; "
      f"LiteLLM {lver} with 2 gunicorn workers." if with_litellm == "1" else
      f"\nMachine: {os.cpu_count()} cores, {cpu}; load average {lb} before, {la} after. "
      f"{duration} s per point, {conns} connections, loopback.")

# Table 1: latency added over the mock at fixed rates.
head = "| fixed rate | mock p50 / p99 (ms) | llmkit serve: added p50 / p99 (ms)"
sep = "|---|---|---"
if with_litellm == "1":
    head += " | LiteLLM: added p50 / p99 (ms) | LiteLLM ÷ llmkit (p50 / p99)"
    sep += "|---|---"
print("\n" + head + " |\n" + sep + "|")
for r in rates:
    base = fixed("mock", r)
    cells = []
    for n in names:
        x = fixed(n, r)
        if x is None:
            cells.append("not run (overloaded at a lower rate)")
        elif x["over"]:
            cells.append(f"overloaded: {x['rps']:,.0f} RPS achieved")
        elif n == "mock" or base is None:
            cells.append(f"{ms(x['p50'])} / {ms(x['p99'])}")
        else:
            cells.append(f"{ms(x['p50'] - base['p50'])} / {ms(x['p99'] - base['p99'])}")
        if x is not None and x["errors"]:
            cells[-1] += f" ({x['errors']} errors)"
    if with_litellm == "1":
        l, k = fixed("litellm", r), fixed("llmkit", r)
        if base and l and k and not l["over"] and not k["over"]:
            cells.append(f"{ratio(l['p50'] - base['p50'], k['p50'] - base['p50'])} / "
                         f"{ratio(l['p99'] - base['p99'], k['p99'] - base['p99'])}")
        else:
            cells.append("—")
    print(f"| {r:,} RPS | " + " | ".join(cells) + " |")

# Table 2: throughput, streaming, memory.
mx = {n: load(n, "max") for n in names}
tt = {n: load(n, "ttft") for n in names}
rss = {n: load(n, "rss") for n in names}
def rps(n):
    return mx[n]["requests"] / (mx[n]["duration_us"] / 1e6)
head = "| measure | mock | llmkit serve"
sep = "|---|---|---"
if with_litellm == "1":
    head += " | LiteLLM proxy | llmkit's advantage"
    sep += "|---|---"
print("\n" + head + " |\n" + sep + "|")
def row(label, cells, adv=None):
    print(f"| {label} | " + " | ".join(cells) + (f" | {adv}" if with_litellm == "1" else "") + " |")
def errs(n):
    e = mx[n]["socket_errors"] + mx[n]["http_errors"]
    return f" ({e} errors)" if e else ""
row(f"max throughput (wrk, 2 threads, {conns} conns), RPS",
    [f"{rps(n):,.0f}{errs(n)}" for n in names],
    ratio(rps("llmkit"), rps("litellm")) if with_litellm == "1" else None)
row("p50 / p99 at max throughput (ms)",
    [f"{ms(mx[n]['p50_us'] / 1000)} / {ms(mx[n]['p99_us'] / 1000)}" for n in names], "")
def ttft(n):
    t = tt[n]
    if not t.get("n"):
        return f"failed ({t['failures']} failures)"
    fail = f" ({t['failures']} failures)" if t["failures"] else ""
    if n == "mock":
        return f"{ms(t['ttft_p50_ms'])} / {ms(t['ttft_p99_ms'])}{fail}"
    return f"+{ms(t['ttft_p50_ms'] - tt['mock']['ttft_p50_ms'])} / +{ms(t['ttft_p99_ms'] - tt['mock']['ttft_p99_ms'])}{fail}"
adv = None
if with_litellm == "1" and tt["litellm"].get("n") and tt["llmkit"].get("n"):
    adv = ratio(tt["litellm"]["ttft_p50_ms"] - tt["mock"]["ttft_p50_ms"],
                tt["llmkit"]["ttft_p50_ms"] - tt["mock"]["ttft_p50_ms"]) + " (p50)"
row(f"streaming time to first token, {streams} streams one at a time: mock p50 / p99, gateways added (ms)",
    [ttft(n) for n in names], adv or "—")
def mb(n):
    r = rss[n]
    procs = f" ({r['processes']} processes)" if r["processes"] > 1 else ""
    return f"{r['peak_rss_kb'] / 1024:,.0f}{procs}"
row("peak RSS (MiB, VmHWM summed over the processes)", [mb(n) for n in names],
    ratio(rss["litellm"]["peak_rss_kb"], rss["llmkit"]["peak_rss_kb"]) + " less" if with_litellm == "1" else None)
print(f"\nllmkit's ledger: {int(ledger_rows):,} rows written by `serve` in this run.")
PY
