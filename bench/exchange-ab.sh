#!/usr/bin/env bash
# shellcheck disable=SC1091 # each data folder's env file, written below
# Code exchanges (or refreshes) per second of two clef binaries, alternated in one run, on the
# embedded defaults (SQLite + in-process store) or on PostgreSQL + Redis. On
# demand only, never in CI.
#
#   bench/exchange-ab.sh OLD_BIN NEW_BIN [ROUNDS]
#   ALG=ES256 bench/exchange-ab.sh OLD_BIN NEW_BIN 3    # the client's ID tokens in ES256
#   STORAGE=postgres bench/exchange-ab.sh OLD_BIN NEW_BIN 3   # PG_URL, REDIS_URL as compare.sh's
#   SCENARIO=refresh bench/exchange-ab.sh OLD_BIN NEW_BIN 3   # refresh-token grants instead
#   CONNECTIONS=64 bench/exchange-ab.sh OLD_BIN NEW_BIN 3    # the load's connections (32 by default)
#
# Each binary gets its own fresh data folder with a first-party client and 32
# accounts, as bench/compare.sh's start_clef makes them. Each round starts each
# server pinned to core 0 and runs bench/load's exchange scenario on core 1 (CONNECTIONS,
# 32 by default, kept-alive connections; codes minted beforehand, client_secret_basic,
# DURATION s measured after 2 s of warm-up), which reports the server's CPU
# time (user + system) and context switches (all threads) over the measured
# phases only, not the minting between them. The RS256 signing bound on core 0
# closes the run.
# Needs: cargo (unless LOAD_BIN), taskset, curl, python3, 2 cores; psql and
# redis-cli for STORAGE=postgres (a fresh database and key prefix per binary).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -ge 2 ]] || { echo "usage: $0 OLD_BIN NEW_BIN [ROUNDS]" >&2; exit 1; }
BINS=("$(realpath "$1")" "$(realpath "$2")")
ROUNDS=${3:-3}
DURATION=${DURATION:-10}
ALG=${ALG:-RS256}
STORAGE=${STORAGE:-sqlite}
SCENARIO=${SCENARIO:-exchange}
PG_URL=${PG_URL:-postgres://postgres:postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
RUN_ID=ab$$
if [[ -z ${LOAD_BIN:-} ]]; then
  (cd "$ROOT/bench/load" && CARGO_TARGET_DIR=${LOAD_TARGET_DIR:-$ROOT/../target-bench-load} cargo build -q --release)
  LOAD_BIN=${LOAD_TARGET_DIR:-$ROOT/../target-bench-load}/release/load
fi
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null
  if [[ $STORAGE == postgres ]]; then
    for i in 0 1; do
      psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS ${RUN_ID}_$i WITH (FORCE)" >/dev/null 2>&1 || true
      redis-cli -u "$REDIS_URL" --scan --pattern "$RUN_ID-$i:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null || true
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

setup() { # INDEX: a data folder, a client, 32 accounts
  local dir=$WORK/$1 port=$((18600 + $1))
  mkdir -p "$dir"
  printf '%s\n' CLEF_LISTEN=127.0.0.1:$port CLEF_ISSUER=http://127.0.0.1:$port \
    CLEF_DATA_DIR="$dir/data" CLEF_KEYS_DIR="$dir/keys" CLEF_CODE_TTL=600 CLEF_LOG=warn >"$dir/env"
  if [[ $STORAGE == postgres ]]; then
    psql "$PG_URL/postgres" -qc "CREATE DATABASE ${RUN_ID}_$1" >/dev/null
    printf '%s\n' CLEF_DATABASE_URL="$PG_URL/${RUN_ID}_$1" CLEF_REDIS_URL="$REDIS_URL" \
      CLEF_REDIS_PREFIX="$RUN_ID-$1:" >>"$dir/env"
  else
    printf '%s\n' CLEF_DATABASE_URL= CLEF_REDIS_URL= >>"$dir/env"
  fi
  (
    cd "$dir" && set -a && . ./env && set +a
    "${BINS[$1]}" client create --name Bench --redirect-uri http://127.0.0.1:9/callback \
      --first-party --json >client.json
    for n in $(seq 0 31); do
      id=$(printf 'tempete.%03d' "$n")
      printf 'Demo2026clef\n' | "${BINS[$1]}" account create --kind guardian --identifier "$id" \
        --given-name Camille --family-name Tempete --email "$id@example.org" --password-stdin >/dev/null
    done
  )
  if [[ $ALG != RS256 ]]; then
    local client sql
    client=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_id"])' "$dir/client.json")
    sql="UPDATE clients SET id_token_signed_response_alg = '$ALG' WHERE id = '$client'"
    if [[ $STORAGE == postgres ]]; then
      psql "$PG_URL/${RUN_ID}_$1" -qc "$sql" >/dev/null
    else
      python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute(sys.argv[2]); db.commit()' \
        "$dir/data/clef.db" "$sql"
    fi
  fi
}

round() { # INDEX: prints rate/s, CPU ms per exchange, context switches per exchange
  local dir=$WORK/$1
  (cd "$dir" && set -a && . ./env && set +a && exec taskset -c 0 "${BINS[$1]}" serve >server.log 2>&1) &
  SERVER=$!
  local base
  base=$(grep CLEF_ISSUER "$dir/env" | cut -d= -f2)
  for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done
  local pid=$SERVER # the subshell exec'd taskset, which exec'd clef
  local id secret
  id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_id"])' "$dir/client.json")
  secret=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$dir/client.json")
  taskset -c 1 "$LOAD_BIN" "$SCENARIO" --base "$base" --client-id "$id" --client-secret="$secret" \
    --redirect-uri http://127.0.0.1:9/callback --accounts 32 --password Demo2026clef \
    --connections "${CONNECTIONS:-32}" --duration "$DURATION" --warmup 2 --sources --pid "$pid" >"$dir/load.json"
  kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
  python3 - "$dir/load.json" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
count, cpu = run["count"], run["server_cpu_s"]
switches = run.get("server_context_switches")
print(f"{run['rps']:8.1f}/s  {1000 * cpu / count:.3f} ms CPU each" + (
      f"  {switches / count:.1f} context switches each" if switches is not None else ""))
EOF
}

setup 0
setup 1
echo "SCENARIO=$SCENARIO, STORAGE=$STORAGE, ALG=$ALG, $ROUNDS rounds of $DURATION s; old=${BINS[0]} new=${BINS[1]}"
for r in $(seq 1 "$ROUNDS"); do
  for i in 0 1; do
    printf 'round %s  %s  ' "$r" "$([[ $i == 0 ]] && echo old || echo new)"
    round "$i"
  done
done
taskset -c 0 "$LOAD_BIN" bound-rsa --seconds 3
