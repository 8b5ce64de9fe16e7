#!/usr/bin/env bash
# Memory of `clef serve` while a school file is imported from the back office: the
# largest file the page takes (8 MiB: 62,000 pupils with two guardians each)
# uploaded for a preview, then applied, the progress page followed to the report.
#
#   bench/import-memory.sh                          # builds the release binary; SQLite, in-process store
#   CLEF_BIN=/path/to/clef PUPILS=2000 bench/import-memory.sh
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/3 \
#     bench/import-memory.sh                        # PostgreSQL + Redis (the database emptied first)
#
# The server runs on core 0 with a fresh data and keys folder and no MALLOC_* variable; the
# driver (bench/import_memory.py, Python standard library only) on core 1 signs a staff
# member in through the pages, uploads, applies and samples the server's VmRSS every 20 ms.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PUPILS=${PUPILS:-62000}
UAI=0590001A
PASSWORD=Demo2026clef

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

if [[ -n ${DATABASE_URL:-} ]]; then
    psql -q "$DATABASE_URL" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;'
    redis-cli -u "${REDIS_URL:?REDIS_URL goes with DATABASE_URL}" FLUSHDB >/dev/null
fi

cd "$WORK"
CLEF_ENV=(env -u MALLOC_ARENA_MAX -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ -u CLEF_CONFIG
    CLEF_LISTEN="127.0.0.1:$PORT" CLEF_ISSUER="http://127.0.0.1:$PORT"
    CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys"
    CLEF_DATABASE_URL="${DATABASE_URL:-}" CLEF_REDIS_URL="${REDIS_URL:-}" CLEF_LOG=warn)

"${CLEF_ENV[@]}" "$CLEF_BIN" establishment create --uai "$UAI" --name "Collège Jean Moulin" >/dev/null
printf '%s\n' "$PASSWORD" | "${CLEF_ENV[@]}" "$CLEF_BIN" staff create --identifier secretariat.bench \
    --given-name Claire --family-name Secretariat --establishment "$UAI" --password-stdin >/dev/null

"${CLEF_ENV[@]}" taskset -c 0 "$CLEF_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
sleep 6   # the hashing workers return their blocks after 5 s without requests
IDLE=$(status "$SERVER" VmRSS)

RESULT=$(taskset -c 1 python3 "$ROOT/bench/import_memory.py" --port "$PORT" --pid "$SERVER" \
    --uai "$UAI" --identifier secretariat.bench --password "$PASSWORD" --pupils "$PUPILS")
sleep 10
AFTER=$(status "$SERVER" VmRSS)
# The same 10 s later with requests coming (mimalloc gives pages back to the
# system when a thread allocates again; an idle server's threads do not).
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/.well-known/openid-configuration" >/dev/null; sleep 0.1; done
AFTER_BUSY=$(status "$SERVER" VmRSS)

echo "binary          $CLEF_BIN"
echo "machine         $(nproc --all) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -r)"
echo "date            $(date -u +%Y-%m-%dT%H:%MZ)"
if [[ -n ${DATABASE_URL:-} ]]; then STORAGE="PostgreSQL + Redis"; else STORAGE="SQLite + in-process store"; fi
echo "storage         $STORAGE"
echo "idle RSS        $(mib "$IDLE")"
python3 - "$RESULT" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
mib = lambda kib: f"{kib / 1024:.1f} MiB"
p, a = r["preview"], r["apply"]
print(f"file            {r['pupils']} pupils, {r['file_bytes'] / 1048576:.2f} MiB")
print(f"preview         {p['status']} in {p['seconds']} s, page {p['page_bytes'] / 1024:.0f} KiB, peak so far {mib(p['hwm_kib'])} (VmHWM)")
print(f"apply           {a['status']} in {a['seconds']} s ({a['progress_pages']} progress pages), report {a['report_bytes'] / 1024:.0f} KiB, peak {mib(a['hwm_kib'])} (VmHWM)")
print(f"peak sampled    {mib(r['peak_sampled_rss_kib'])} (VmRSS every 20 ms)")
PY
echo "RSS 10 s after  $(mib "$AFTER"), then $(mib "$AFTER_BUSY") after 10 s of requests"
