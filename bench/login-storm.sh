#!/usr/bin/env bash
# Login storm: memory and throughput of `clef serve` under CONNECTIONS concurrent logins
# (issue 6 item 9; SPEC §6 target: peak RSS < 128 MiB during the storm, < 64 MiB idle after).
#
#   bench/login-storm.sh                       # builds the release binary, 256 connections, 4 rounds
#   CLEF_BIN=/path/to/clef ROUNDS=8 bench/login-storm.sh
#   SERVER_CPUS=0,1 bench/login-storm.sh       # the server on both cores (one hashing worker each)
#
# The server runs on core 0 (taskset -c 0; Clef starts one hashing worker per core it may use),
# the load on core 1, with a fresh data dir and keys dir in a temporary folder, the embedded
# defaults (SQLite, in-memory store) and no MALLOC_* variable. The data dir is prepared with
# ACCOUNTS guardian accounts (`clef account create`, tempete.000…, password Demo2026clef).
# The load generator is bench/login_storm.py (Python standard library only): each connection
# is one family with its own account and loopback address (so the failed-attempt counters of
# SPEC §3.1 behave as for real families), logging in as a new browser each round: GET /login
# for the CSRF cookie and field, then POST /login. Needs: a Rust toolchain (or CLEF_BIN),
# python3, curl, taskset (util-linux), and at least 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNECTIONS=${CONNECTIONS:-256}
ACCOUNTS=${ACCOUNTS:-$CONNECTIONS}
PASSWORD=Demo2026clef
ROUNDS=${ROUNDS:-4}
AFTER=${AFTER:-10}   # seconds of idle before the "idle" and "after" readings
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}

if [[ $(nproc --all) -lt 2 ]]; then
    echo "needs 2 cores: the server on core 0, the load on core 1" >&2
    exit 1
fi

if [[ -z ${CLEF_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --bin clef)
    CLEF_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/clef
fi
CLEF_BIN=$(realpath "$CLEF_BIN")

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SERVER=""
cleanup() {
    if [[ -n $SERVER ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

status() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
mib() { awk -v kib="$1" 'BEGIN { printf "%.1f MiB", kib / 1024 }'; }

# Run from the temporary folder so no clef.toml is picked up.
cd "$WORK"
# env and taskset exec, so $! below is the server's own PID.
CLEF_ENV=(env -u MALLOC_ARENA_MAX -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ -u CLEF_CONFIG
    CLEF_LISTEN="127.0.0.1:$PORT" CLEF_ISSUER="http://127.0.0.1:$PORT"
    CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" CLEF_DATABASE_URL= CLEF_REDIS_URL=
    CLEF_LOG=warn)

echo "preparing $ACCOUNTS accounts…" >&2
for n in $(seq 0 $((ACCOUNTS - 1))); do
    id=$(printf 'tempete.%03d' "$n")
    printf '%s\n' "$PASSWORD" | "${CLEF_ENV[@]}" "$CLEF_BIN" account create --kind guardian --identifier "$id" \
        --given-name Camille --family-name Tempete --email "$id@example.org" --password-stdin >/dev/null
done

"${CLEF_ENV[@]}" taskset -c "$SERVER_CPUS" "$CLEF_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!

for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
sleep "$AFTER"   # the workers return their blocks after 5 s without requests

IDLE=$(status "$SERVER" VmRSS)
START_PEAK=$(status "$SERVER" VmHWM)
# Reset the peak (Linux ≥ 4.0) so VmHWM below is the storm's alone.
if echo 5 >"/proc/$SERVER/clear_refs" 2>/dev/null; then HWM_NOTE="storm only"; else HWM_NOTE="since start"; fi

RESULT=$(taskset -c "$LOAD_CPUS" python3 "$ROOT/bench/login_storm.py" --port "$PORT" --pid "$SERVER" \
    --connections "$CONNECTIONS" --rounds "$ROUNDS" --accounts "$ACCOUNTS" --password "$PASSWORD")
PEAK=$(status "$SERVER" VmHWM)
sleep "$AFTER"
AFTER_RSS=$(status "$SERVER" VmRSS)

echo "binary          $CLEF_BIN"
echo "machine         $(nproc --all) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -r)"
echo "date            $(date -u +%Y-%m-%dT%H:%MZ)"
echo "storm           $CONNECTIONS connections × $ROUNDS logins on $ACCOUNTS accounts, server on cores $SERVER_CPUS, load on cores $LOAD_CPUS"
echo "idle RSS        $(mib "$IDLE") ${AFTER} s after start (peak while starting: $(mib "$START_PEAK"))"
echo "peak RSS        $(mib "$PEAK") (VmHWM, $HWM_NOTE)"
echo "RSS ${AFTER} s after  $(mib "$AFTER_RSS")"
python3 - "$RESULT" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
ok = sum(n for s, n in r["statuses"].items() if s.startswith("3"))
busy = r["statuses"].get("503", 0)
print(f"logins          {ok} signed in of {r['logins']} in {r['seconds']} s: {ok / r['seconds']:.1f} logins/s")
print(f"503             {busy} ({100 * busy / r['logins']:.1f} %)")
print(f"statuses        {r['statuses']}")
print(f"peak sampled    {r['peak_sampled_rss_kib'] / 1024:.1f} MiB (VmRSS every 50 ms)")
EOF
