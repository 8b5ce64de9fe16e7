#!/usr/bin/env bash
# Clef against panva's oidc-provider on the same machine, in the same run (issue 12, item 5).
# On demand only, never in CI.
#
#   bench/compare.sh                                    # builds what it needs, 10 s per scenario
#   CLEF_BIN=/path/to/clef DURATION=20 CONNECTIONS=64 bench/compare.sh
#   SETUPS="clef-sqlite peer-memory" bench/compare.sh   # a subset
#
# Each server runs alone, pinned to core SERVER_CPU (0), the load generator (bench/load, Rust,
# one thread) to core LOAD_CPU (1). Four setups, one after the other:
#   clef-sqlite    Clef, SQLite in a fresh data dir + in-process store (the embedded defaults)
#   peer-memory    oidc-provider (bench/peer/server.mjs), in-memory adapter
#   clef-postgres  Clef, a fresh PostgreSQL database (created and dropped here) + Redis
#                  with a random prefix (its keys deleted at the end)
#   peer-redis     oidc-provider, Redis adapter (ioredis), random prefix
# For each: idle RSS IDLE_WAIT s after start; a login storm of STORM (256) connections with
# VmHWM reset just before it (peak RSS), and RSS again SETTLE (10) s after it; then, with
# CONNECTIONS (32) kept-alive connections, WARMUP (2) s of warm-up and DURATION (10) s
# measured: discovery, JWKS, code exchange, refresh, full logins. Bounds on core SERVER_CPU at the start: RS256 signatures/s with
# josekit (what Clef signs with) and `openssl speed rsa2048`, argon2id hashes/s with the
# argon2 crate (Rust, Clef's parameters) and with the peer's npm package; and again, for
# BESIDE_SECONDS (2) each, just before and just after each setup's exchange and refresh (RS256)
# and its logins (argon2id, the peer's package for the peer): the ratios to the bounds read
# against these, the host's speed drifting within minutes.
# Prints the tables (Markdown) at the end; the raw JSON lines stay in OUT if set.
#
# Needs: cargo (unless CLEF_BIN and LOAD_BIN), node + npm, taskset, curl, python3, psql and
# redis-cli for the PostgreSQL + Redis setups, 2 cores. Accounts are created with
# `clef account create` (one per connection of the storm: per-account limits refuse
# concurrent attempts on one account) and every worker has its own loopback source address
# (127.1.x.y), so Clef's failed-attempt counters never answer: a 429 or 503 is counted as an
# error, not hidden.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
STORM=${STORM:-256}
STORM_DURATION=${STORM_DURATION:-$DURATION}
IDLE_WAIT=${IDLE_WAIT:-5}
SETTLE=${SETTLE:-10}
BOUND_SECONDS=${BOUND_SECONDS:-5}
BESIDE_SECONDS=${BESIDE_SECONDS:-2}
CODE_TTL=${CODE_TTL:-600}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SETUPS=${SETUPS:-clef-sqlite peer-memory clef-postgres peer-redis}
PG_URL=${PG_URL:-postgres://postgres:postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PASSWORD=Demo2026clef
PREFIX=tempete
# Nothing listens there: the load generator reads the code from the Location header.
REDIRECT_URI=http://127.0.0.1:9/callback
ACCOUNTS=$((STORM > CONNECTIONS ? STORM : CONNECTIONS))

if [[ $(nproc --all) -lt 2 ]]; then
    echo "needs 2 cores: the server on one, the load on the other" >&2
    exit 1
fi

if [[ -z ${CLEF_BIN:-} ]]; then
    CLEF_TARGET=${CLEF_TARGET_DIR:-$ROOT/../target-bench}
    (cd "$ROOT" && CARGO_TARGET_DIR=$CLEF_TARGET cargo build --release --bin clef)
    CLEF_BIN=$CLEF_TARGET/release/clef
fi
CLEF_BIN=$(realpath "$CLEF_BIN")
if [[ -z ${LOAD_BIN:-} ]]; then
    LOAD_TARGET=${LOAD_TARGET_DIR:-$ROOT/../target-bench-load}
    (cd "$ROOT/bench/load" && CARGO_TARGET_DIR=$LOAD_TARGET cargo build --release)
    LOAD_BIN=$LOAD_TARGET/release/load
fi
LOAD_BIN=$(realpath "$LOAD_BIN")
if [[ ! -d $ROOT/bench/peer/node_modules ]]; then
    (cd "$ROOT/bench/peer" && npm ci --no-audit --no-fund)
fi

WORK=$(mktemp -d)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
RUN_ID=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
PG_DB=bench_$RUN_ID
PG_CREATED=""
REDIS_PREFIXES=()
SERVER=""

stop_server() {
    if [[ -n $SERVER ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=""
    fi
}
cleanup() {
    stop_server
    if [[ -n $PG_CREATED ]]; then
        psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    for prefix in "${REDIS_PREFIXES[@]}"; do
        redis-cli -u "$REDIS_URL" --scan --pattern "$prefix*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null || true
    done
    if [[ -n ${OUT:-} ]]; then cp "$RESULTS" "$OUT"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
status() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
note() { printf '%s\n' "$1" >>"$RESULTS"; }
say() { echo "[$(date +%T)] $*" >&2; }

wait_ready() { # URL PID LOG
    for _ in $(seq 1 600); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
        sleep 0.1
    done
    echo "server not ready: $1" >&2
    cat "$3" >&2
    exit 1
}

# ---------------------------------------------------------------- bounds
say "bounds on core $SERVER_CPU…"
note "$(taskset -c "$SERVER_CPU" "$LOAD_BIN" bound-rsa --seconds "$BOUND_SECONDS")"
note "$(taskset -c "$SERVER_CPU" "$LOAD_BIN" bound-argon2 --seconds "$BOUND_SECONDS")"
note "$(cd "$ROOT/bench/peer" && taskset -c "$SERVER_CPU" node argon2_rate.mjs "$BOUND_SECONDS")"
OPENSSL_SIGNS=$(taskset -c "$SERVER_CPU" openssl speed -seconds "$BOUND_SECONDS" -multi 1 rsa2048 2>/dev/null |
    awk '/^rsa 2048 bits/ { print $6 }' || true)
note "{\"bound\":\"openssl-speed\",\"per_s\":${OPENSSL_SIGNS:-null},\"version\":\"$(openssl version | cut -d' ' -f1-2)\"}"

say "argon2id hashes for the peer's $ACCOUNTS accounts…"
taskset -c "$LOAD_CPU" "$LOAD_BIN" hashes --count "$ACCOUNTS" --prefix "$PREFIX" --password "$PASSWORD" >"$WORK/peer-accounts.json"

# ---------------------------------------------------------------- servers
# Sets SERVER, BASE, CLIENT_ID, CLIENT_SECRET.
start_clef() { # sqlite|postgres
    local dir=$WORK/clef-$1 port
    mkdir -p "$dir"
    port=$(free_port)
    BASE=http://127.0.0.1:$port
    # (without the settings of this script: Clef warns of a CLEF_* variable it does not know)
    local env=(env -u MALLOC_ARENA_MAX -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ -u CLEF_CONFIG
        -u CLEF_BIN -u CLEF_COMMIT -u CLEF_TARGET_DIR
        CLEF_LISTEN="127.0.0.1:$port" CLEF_ISSUER="$BASE" CLEF_DATA_DIR="$dir/data" CLEF_KEYS_DIR="$dir/keys"
        CLEF_CODE_TTL="$CODE_TTL" CLEF_LOG=warn)
    if [[ $1 == postgres ]]; then
        psql "$PG_URL/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null
        PG_CREATED=yes
        REDIS_PREFIXES+=("bench-$RUN_ID:")
        env+=(CLEF_DATABASE_URL="$PG_URL/$PG_DB" CLEF_REDIS_URL="$REDIS_URL" CLEF_REDIS_PREFIX="bench-$RUN_ID:")
    else
        env+=(CLEF_DATABASE_URL= CLEF_REDIS_URL=)
    fi
    cd "$dir"  # no clef.toml picked up
    say "clef-$1: client and $ACCOUNTS accounts…"
    "${env[@]}" "$CLEF_BIN" client create --name Bench --redirect-uri "$REDIRECT_URI" --first-party --json >client.json
    CLIENT_ID=$(python3 -c 'import json; print(json.load(open("client.json"))["client_id"])')
    CLIENT_SECRET=$(python3 -c 'import json; print(json.load(open("client.json"))["client_secret"])')
    for n in $(seq 0 $((ACCOUNTS - 1))); do
        local id
        id=$(printf '%s.%03d' "$PREFIX" "$n")
        # Retried: on a loaded machine PostgreSQL may not hand a connection within Clef's 2 s.
        for try in 1 2 3 4 5; do
            printf '%s\n' "$PASSWORD" | "${env[@]}" "$CLEF_BIN" account create --kind guardian --identifier "$id" \
                --given-name Camille --family-name Tempete --email "$id@example.org" --password-stdin \
                >/dev/null 2>>"$dir/accounts.log" && break
            [[ $try -lt 5 ]] || { cat "$dir/accounts.log" >&2; exit 1; }
            sleep 1
        done
    done
    # env and taskset exec, so $! is the server's own PID.
    "${env[@]}" taskset -c "$SERVER_CPU" "$CLEF_BIN" serve >"$dir/server.log" 2>&1 &
    SERVER=$!
    cd "$ROOT"
    wait_ready "$BASE/healthz" "$SERVER" "$dir/server.log"
}

start_peer() { # memory|redis
    local dir=$WORK/peer-$1 port
    mkdir -p "$dir"
    port=$(free_port)
    BASE=http://127.0.0.1:$port
    CLIENT_ID=bench
    CLIENT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')
    local env=(env NODE_ENV=production PORT="$port" ISSUER="$BASE" ACCOUNTS_FILE="$WORK/peer-accounts.json"
        CLIENT_ID="$CLIENT_ID" CLIENT_SECRET="$CLIENT_SECRET" REDIRECT_URI="$REDIRECT_URI" CODE_TTL="$CODE_TTL")
    if [[ $1 == redis ]]; then
        REDIS_PREFIXES+=("bench-peer-$RUN_ID:")
        env+=(REDIS_URL="$REDIS_URL" REDIS_PREFIX="bench-peer-$RUN_ID:")
    else
        env+=(REDIS_URL=)
    fi
    cd "$ROOT/bench/peer"
    "${env[@]}" taskset -c "$SERVER_CPU" node server.mjs >"$dir/server.log" 2>&1 &
    SERVER=$!
    cd "$ROOT"
    wait_ready "$BASE/.well-known/openid-configuration" "$SERVER" "$dir/server.log"
}

# The bound again beside the scenarios it bounds, on the server's core while the server
# waits (BESIDE_SECONDS): the host's speed drifts within minutes, and the ratios read
# against the mean of the measures taken just before and just after the scenario.
bound_beside() { # rs256|argon2
    local line
    case $1 in
        rs256) line=$(taskset -c "$SERVER_CPU" "$LOAD_BIN" bound-rsa --seconds "$BESIDE_SECONDS") ;;
        argon2)
            if [[ $SETUP == peer-* ]]; then
                line=$(cd "$ROOT/bench/peer" && taskset -c "$SERVER_CPU" node argon2_rate.mjs "$BESIDE_SECONDS")
            else
                line=$(taskset -c "$SERVER_CPU" "$LOAD_BIN" bound-argon2 --seconds "$BESIDE_SECONDS")
            fi
            ;;
    esac
    note "{\"label\":\"$SETUP\",${line#\{}"
}

load() { # SCENARIO [ARGS…]: one JSON line into the results
    local scenario=$1
    shift
    local line
    line=$(taskset -c "$LOAD_CPU" "$LOAD_BIN" "$scenario" --base "$BASE" --label "$SETUP" --pid "$SERVER" "$@") || {
        say "$SETUP $scenario failed"
        line="{\"scenario\":\"$scenario\",\"label\":\"$SETUP\",\"failed\":true}"
    }
    say "$SETUP: $line"
    note "$line"
}

for SETUP in $SETUPS; do
    case $SETUP in
        clef-sqlite) start_clef sqlite ;;
        clef-postgres) start_clef postgres ;;
        peer-memory) start_peer memory ;;
        peer-redis) start_peer redis ;;
        *) echo "unknown setup $SETUP" >&2; exit 1 ;;
    esac
    BEFORE=$(loadavg)
    say "$SETUP up (pid $SERVER), load average $BEFORE"
    sleep "$IDLE_WAIT"
    IDLE=$(status "$SERVER" VmRSS)
    START_PEAK=$(status "$SERVER" VmHWM)
    HWM=since-start
    if echo 5 >"/proc/$SERVER/clear_refs" 2>/dev/null; then HWM=storm-only; fi
    OIDC=(--client-id "$CLIENT_ID" --client-secret="$CLIENT_SECRET" --redirect-uri "$REDIRECT_URI"
        --prefix "$PREFIX" --accounts "$ACCOUNTS" --password "$PASSWORD")
    load login "${OIDC[@]}" --connections "$STORM" --duration "$STORM_DURATION" --warmup 0 --sources
    sed -i '$ s/"scenario":"login"/"scenario":"storm"/' "$RESULTS"
    PEAK=$(status "$SERVER" VmHWM)
    AFTER_STORM=$(status "$SERVER" VmRSS)
    sleep "$SETTLE"
    SETTLED=$(status "$SERVER" VmRSS)
    note "{\"scenario\":\"memory\",\"label\":\"$SETUP\",\"idle_kib\":$IDLE,\"start_peak_kib\":$START_PEAK,\"storm_peak_kib\":$PEAK,\"after_storm_kib\":$AFTER_STORM,\"settled_kib\":$SETTLED,\"settle_s\":$SETTLE,\"hwm\":\"$HWM\"}"
    RUN=(--connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP")
    JWKS_PATH=$(curl -fs "$BASE/.well-known/openid-configuration" |
        python3 -c 'import json, sys, urllib.parse; print(urllib.parse.urlparse(json.load(sys.stdin)["jwks_uri"]).path)')
    load get --path /.well-known/openid-configuration "${RUN[@]}"
    sed -i '$ s/"scenario":"get"/"scenario":"discovery"/' "$RESULTS"
    load get --path "$JWKS_PATH" "${RUN[@]}"
    sed -i '$ s/"scenario":"get"/"scenario":"jwks"/' "$RESULTS"
    bound_beside rs256
    load exchange "${OIDC[@]}" "${RUN[@]}" --sources
    load refresh "${OIDC[@]}" "${RUN[@]}" --sources
    bound_beside rs256
    bound_beside argon2
    load login "${OIDC[@]}" "${RUN[@]}" --sources
    bound_beside argon2
    AFTER=$(loadavg)
    FINAL=$(status "$SERVER" VmRSS)
    note "{\"scenario\":\"setup\",\"label\":\"$SETUP\",\"load_before\":\"$BEFORE\",\"load_after\":\"$AFTER\",\"final_rss_kib\":$FINAL}"
    say "$SETUP done, load average $AFTER"
    stop_server
done

# ---------------------------------------------------------------- report
# CLEF_COMMIT names the commit CLEF_BIN was built from, when not this tree's HEAD.
COMMIT=${CLEF_COMMIT:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)}
echo
echo "binary   $CLEF_BIN"
echo "machine  $(nproc --all) cores, $(lscpu | awk -F': +' '/^Model name/ { print $2; exit }'), $(uname -r), $(free -g | awk '/^Mem:/ { print $2 }') GiB"
echo "date     $(date -u +%Y-%m-%dT%H:%MZ), Clef at commit $COMMIT"
echo "peer     oidc-provider $(node -p 'require("./bench/peer/node_modules/oidc-provider/package.json").version'), argon2 $(node -p 'require("./bench/peer/node_modules/argon2/package.json").version'), ioredis $(node -p 'require("./bench/peer/node_modules/ioredis/package.json").version'), Node $(node --version)"
echo "run      DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS STORM=$STORM, server on core $SERVER_CPU, load on core $LOAD_CPU"
echo
python3 "$ROOT/bench/load/report.py" "$RESULTS"
