#!/usr/bin/env bash
# Starts the services the scale-out tests use, PostgreSQL and Redis, on loopback, installing
# them from Debian's packages where they are missing. Idempotent: a service that already
# answers is left alone. Data lives under target/services (removed by `stop`).
#
# Usage: scripts/services.sh [start|stop|env] [all|postgres|redis]
#   start (default)  install if needed, start, wait until each answers, print the env lines
#   stop             stop them and delete their data
#   env              print the env lines only: eval "$(bash scripts/services.sh env)"
# The env lines set LLMKIT_TEST_POSTGRES_URL and LLMKIT_TEST_REDIS_URL, which the tests read.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:-start}"
which="${2:-all}"
root="$PWD/target/services"
pg_port=55432
redis_port=56379
pg_url="postgres://llmkit@127.0.0.1:$pg_port/llmkit"
redis_url="redis://127.0.0.1:$redis_port/"

die() {
  echo "services: error: $*" >&2
  exit 1
}

case "$which" in all | postgres | redis) ;; *) die "unknown service $which (all, postgres or redis)" ;; esac
want() { [[ "$which" == all || "$which" == "$1" ]]; }

print_env() {
  want postgres && echo "export LLMKIT_TEST_POSTGRES_URL=$pg_url"
  want redis && echo "export LLMKIT_TEST_REDIS_URL=$redis_url"
  return 0
}

# Debian installs PostgreSQL's server programs under /usr/lib/postgresql/VERSION/bin.
pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$d" && -x "$d/pg_ctl" ]] && echo "$d"
}

install_missing() {
  local need=()
  want postgres && [[ -z "$(pg_bin)" ]] && need+=(postgresql)
  want redis && ! command -v redis-server >/dev/null 2>&1 && need+=(redis-server)
  [[ ${#need[@]} -eq 0 ]] && return 0
  echo "services: installing ${need[*]} (apt-get) ..." >&2
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; }

start_postgres() {
  local bin data="$root/postgres"
  bin=$(pg_bin) || die "PostgreSQL is not installed and could not be installed"
  pg_ready && return 0
  mkdir -p "$root"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    mkdir -p "$data"
    [[ $(id -u) -eq 0 ]] && chown postgres "$data" && chmod 700 "$data"
    # Trust on loopback: a throwaway cluster for tests, reachable only from this machine.
    as_pg "$bin/initdb" -D "$data" -U llmkit --auth=trust -E UTF8 >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $data -c fsync=off -c max_connections=200" \
    start >/dev/null || die "PostgreSQL did not start; see $data/server.log"
  local i
  for i in $(seq 1 50); do
    pg_ready && break
    sleep 0.2
  done
  pg_ready || die "PostgreSQL does not answer on 127.0.0.1:$pg_port; see $data/server.log"
  if ! psql -h 127.0.0.1 -p "$pg_port" -U llmkit -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'llmkit'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$pg_port" -U llmkit -d postgres -qc "CREATE DATABASE llmkit" >/dev/null
  fi
}

redis_ready() { redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; }

start_redis() {
  command -v redis-server >/dev/null 2>&1 || die "Redis is not installed and could not be installed"
  redis_ready && return 0
  mkdir -p "$root/redis"
  # No persistence: counters, the cache and pub/sub are rebuilt after a restart by design.
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$root/redis" --daemonize yes --pidfile "$root/redis/redis.pid" \
    --logfile "$root/redis/redis.log" >/dev/null
  local i
  for i in $(seq 1 50); do
    redis_ready && return 0
    sleep 0.1
  done
  die "Redis does not answer on 127.0.0.1:$redis_port; see $root/redis/redis.log"
}

stop_all() {
  if want postgres && [[ -f "$root/postgres/PG_VERSION" ]] && [[ -n "$(pg_bin)" ]]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$root/postgres" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$root/postgres"
  fi
  if want redis; then
    redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$root/redis"
  fi
}

case "$action" in
  start)
    install_missing
    want postgres && start_postgres
    want redis && start_redis
    print_env
    ;;
  stop) stop_all ;;
  env) print_env ;;
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown action $action (start, stop or env)" ;;
esac
