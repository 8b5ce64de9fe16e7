#!/usr/bin/env bash
# A million accounts (issue 12, item 7): do logins, code exchanges and imports slow down
# when the tables are large? Loads ACCOUNTS accounts with their guardianships into a "big"
# database the way schools' files come in (`clef import`), prepares an "empty" database with
# nothing but the same few active accounts and client, then measures both with the same
# binary in the same run, alternating, and prints the ratios. Figures: docs/benchmarks.md,
# « A million accounts (issue 12, item 7) ».
#
#   bench/million.sh postgres                 # PostgreSQL at PG_URL, 1,000,000 accounts
#   bench/million.sh sqlite                   # SQLite files in a temporary folder
#   ACCOUNTS=30000 SECONDS_PER_RUN=5 bench/million.sh sqlite   # a quick run
#
# Knobs (environment):
#   ACCOUNTS=1000000        accounts in the big database: ACCOUNTS/3 pupils with two guardians each,
#   ESTABLISHMENTS=30       spread over this many establishments (one file and one import each)
#   THREADS=8               load threads, each one family (account banc.NNN, its own 127.2.x.y)
#   SECONDS_PER_RUN=20      measured seconds per load run (after WARMUP=3 uncounted seconds)
#   ROUNDS=2                rounds of (empty, big) load runs, alternating
#   IMPORT_PUPILS=1000      pupils in each file of the import comparison (×3 accounts),
#   IMPORT_RUNS=3           imported this many times into each database, alternating
#   PROBE=100               provisional guardians deleted (and rolled back) by the expiry probe
#   PG_URL=postgres://postgres:postgres@127.0.0.1:5432   the PostgreSQL server (databases
#                           clef_million_big and clef_million_empty are created, then dropped)
#   KEEP=1                  keep the databases and the work folder (default: drop and remove)
#   WORK=/path              work folder (default: a new temporary folder; SQLite files go there)
#   CLEF_BIN=/path/to/clef  the binary (default: cargo build --release into CARGO_TARGET_DIR,
#                           or ../target-bench)
#   SERVER_CPUS=0 LOAD_CPUS=1   taskset cores for clef (server and imports) and for the load
#
# The load generator is bench/million_load.py and the school files come from
# bench/million_gen.py (Python standard library only). Needs python3, curl, taskset, and
# psql (PostgreSQL) or sqlite3 (SQLite, for the size, plans and expiry probe).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BACKEND=${1:-sqlite}
ACCOUNTS=${ACCOUNTS:-1000000}
ESTABLISHMENTS=${ESTABLISHMENTS:-30}
THREADS=${THREADS:-8}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-2}
IMPORT_PUPILS=${IMPORT_PUPILS:-1000}
IMPORT_RUNS=${IMPORT_RUNS:-3}
PROBE=${PROBE:-100}
PG_URL=${PG_URL:-postgres://postgres:postgres@127.0.0.1:5432}
KEEP=${KEEP:-0}
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
PASSWORD=Demo2026clef
REDIRECT=http://127.0.0.1:9/cb
BENCH_UAI=9999999Z

case $BACKEND in
    sqlite) command -v sqlite3 >/dev/null || { echo "needs sqlite3" >&2; exit 1; } ;;
    postgres) command -v psql >/dev/null || { echo "needs psql" >&2; exit 1; } ;;
    *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac
if [[ $(nproc --all) -lt 2 ]]; then
    echo "needs 2 cores: clef on core $SERVER_CPUS, the load on core $LOAD_CPUS" >&2
    exit 1
fi

if [[ -z ${CLEF_BIN:-} ]]; then
    TARGET=${CARGO_TARGET_DIR:-$ROOT/../target-bench}
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --bin clef)
    CLEF_BIN=$TARGET/release/clef
fi
CLEF_BIN=$(realpath "$CLEF_BIN")

WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
RESULTS=$WORK/results.txt
: >"$RESULTS"
SERVER=""
cleanup() {
    if [[ -n $SERVER ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    if [[ $KEEP != 1 ]]; then
        if [[ $BACKEND == postgres ]]; then
            for db in big empty; do
                psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS clef_million_$db" 2>/dev/null || true
            done
        fi
        rm -rf "$WORK"
    else
        echo "kept: $WORK (and the clef_million_* databases, if PostgreSQL)" >&2
    fi
}
trap cleanup EXIT

say() { echo "$*" | tee -a "$RESULTS"; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Run from the work folder so no clef.toml is picked up.
cd "$WORK"

db_url() {
    case $BACKEND in
        sqlite) echo "" ;;   # the default: $CLEF_DATA_DIR/clef.db
        postgres) echo "$PG_URL/clef_million_$1" ;;
    esac
}
# The command that runs clef on database $1 (big|empty), in CLEF: env and taskset exec,
# so a background "${CLEF[@]}" … & has clef's own PID in $!.
clef_env() {
    CLEF=(env -u CLEF_CONFIG -u MALLOC_ARENA_MAX CLEF_LISTEN="127.0.0.1:$PORT" CLEF_ISSUER="http://127.0.0.1:$PORT"
        CLEF_DATA_DIR="$WORK/$1/data" CLEF_KEYS_DIR="$WORK/keys" CLEF_DATABASE_URL="$(db_url "$1")"
        CLEF_REDIS_URL= CLEF_LOG=warn taskset -c "$SERVER_CPUS" "$CLEF_BIN")
}
clef() {   # clef big|empty ARGS…
    clef_env "$1"
    shift
    "${CLEF[@]}" "$@"
}
sql() {   # sql big|empty "statement": runs it with the backend's client
    case $BACKEND in
        sqlite) sqlite3 "$WORK/$1/data/clef.db" "$2" ;;
        postgres) psql -q -X -A -t "$(db_url "$1")" -c "$2" ;;
    esac
}
db_size() {
    case $BACKEND in
        sqlite)
            sqlite3 "$WORK/$1/data/clef.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
            du -cb "$WORK/$1/data"/clef.db* | awk 'END { printf "%.0f MB", $1 / 1e6 }'
            ;;
        postgres) sql "$1" "SELECT pg_size_pretty(pg_database_size(current_database()))" ;;
    esac
}

log "binary $CLEF_BIN, backend $BACKEND, work folder $WORK"
say "backend         $BACKEND"
say "binary          $CLEF_BIN (the repository was at $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "?") when the run started)"
say "machine         $(nproc --all) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -r)"
say "date            $(date -u +%Y-%m-%dT%H:%MZ)"
say "load average    $(cut -d' ' -f1-3 /proc/loadavg) (start)"

# 1. Two databases, migrated: the same establishment, active accounts and client in each.
for db in empty big; do
    mkdir -p "$WORK/$db/data"
    if [[ $BACKEND == postgres ]]; then
        psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS clef_million_$db" -c "CREATE DATABASE clef_million_$db"
    fi
    clef "$db" migrate >/dev/null
    clef "$db" establishment create --uai "$BENCH_UAI" --name "Collège du banc d'essai" >/dev/null
done

# 2. The big one: ACCOUNTS accounts through the schools' files.
PUPILS=$(( (ACCOUNTS / 3 + ESTABLISHMENTS - 1) / ESTABLISHMENTS ))
log "generating $ESTABLISHMENTS files of $PUPILS pupils"
mapfile -t UAIS < <(python3 "$ROOT/bench/million_gen.py" --out "$WORK/files" --first 1 \
    --establishments "$ESTABLISHMENTS" --pupils "$PUPILS" --tag m)
LOAD_START=$(now)
n=0
for uai in "${UAIS[@]}"; do
    clef big establishment create --uai "$uai" --name "Collège $uai" >/dev/null
    t0=$(now)
    clef big import --establishment "$uai" --file "$WORK/files/$uai.csv" >/dev/null
    t1=$(now)
    n=$((n + 1))
    echo "$n $(elapsed "$t0" "$t1")" >>"$WORK/load-times"
    log "import $n/${#UAIS[@]} ($uai, $((PUPILS * 3)) accounts): $(elapsed "$t0" "$t1") s"
    rm -f "$WORK/files/$uai.csv"
done
LOAD_END=$(now)
say "load            $(elapsed "$LOAD_START" "$LOAD_END") s for $ESTABLISHMENTS imports of $PUPILS pupils ($((ESTABLISHMENTS * PUPILS * 3)) accounts), first import $(awk 'NR == 1 { print $2 }' "$WORK/load-times") s, last $(awk 'END { print $2 }' "$WORK/load-times") s"
say "rows (big)      $(sql big "SELECT (SELECT COUNT(*) FROM accounts) || ' accounts, ' || (SELECT COUNT(*) FROM guardianships) || ' guardianships, ' || (SELECT COUNT(*) FROM identifier_counters) || ' identifier counters'")"

# 3. In both: THREADS active guardians with a password, each with one child, and the client.
for db in empty big; do
    log "active accounts and client in $db"
    for i in $(seq 0 $((THREADS - 1))); do
        id=$(printf 'banc.%03d' "$i")
        clef "$db" account create --kind student --identifier "$(printf 'banc.eleve%03d' "$i")" \
            --given-name Lou --family-name Banc --birthdate 14/05/2013 \
            --establishment "$BENCH_UAI" --class "5e 2" >/dev/null
        printf '%s\n' "$PASSWORD" | clef "$db" account create --kind guardian --identifier "$id" \
            --given-name Camille --family-name Banc --email "$id@example.org" --password-stdin >/dev/null
        clef "$db" guardian link --guardian "$id" --student "$(printf 'banc.eleve%03d' "$i")" --rank 1 >/dev/null
    done
    clef "$db" client create --name bench --redirect-uri "$REDIRECT" --first-party --json >"$WORK/$db/client.json"
done
say "size            empty $(db_size empty), big $(db_size big)"
# Let the bulk load settle before measuring: right after it, PostgreSQL is still writing the
# loaded pages out (a first run measured code exchanges 3× slower on the big database, with
# COMMITs of 8–11 ms, and equal a few minutes later). Vacuum, statistics and a checkpoint,
# as autovacuum and the checkpointer would have done by then.
for db in empty big; do
    case $BACKEND in
        sqlite) sql "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null ;;   # no ANALYZE: Clef runs none
        postgres) sql "$db" "VACUUM ANALYZE" && sql "$db" "CHECKPOINT" ;;
    esac
done

# 4. Logins and code exchanges, the server alone on SERVER_CPUS, alternating empty and big.
start_server() {
    if curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
        echo "port $PORT is taken by another server" >&2
        exit 1
    fi
    clef_env "$1"
    "${CLEF[@]}" serve >"$WORK/$1/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 600); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
        kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$1/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "the server did not start" >&2
    exit 1
}
stop_server() {
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
}
load() {   # load DB MODE: one run, its JSON appended to $WORK/runs
    local client_id secret
    client_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_id"])' "$WORK/$1/client.json")
    secret=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$WORK/$1/client.json")
    taskset -c "$LOAD_CPUS" python3 "$ROOT/bench/million_load.py" --mode "$2" --port "$PORT" --pid "$SERVER" \
        --threads "$THREADS" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --password "$PASSWORD" \
        --client-id "$client_id" --client-secret="$secret" --redirect-uri "$REDIRECT" |
        python3 -c 'import json, sys; r = json.load(sys.stdin); r["db"] = sys.argv[1]; r["load"] = sys.argv[2]; print(json.dumps(r))' \
            "$1" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$WORK/runs" >&2
}
: >"$WORK/runs"
for round in $(seq 1 "$ROUNDS"); do
    for db in empty big; do
        log "round $round, $db: logins, then code exchanges"
        start_server "$db"
        load "$db" login
        load "$db" exchange
        stop_server
    done
done

# 5. Imports of a new establishment's file (IMPORT_PUPILS pupils), alternating.
: >"$WORK/imports"
for run in $(seq 1 "$IMPORT_RUNS"); do
    uai=$(python3 "$ROOT/bench/million_gen.py" --out "$WORK/files" --first $((1000 + run)) \
        --establishments 1 --pupils "$IMPORT_PUPILS" --tag "i$run")
    for db in empty big; do
        clef "$db" establishment create --uai "$uai" --name "Collège $uai" >/dev/null
        t0=$(now)
        clef "$db" import --establishment "$uai" --file "$WORK/files/$uai.csv" >/dev/null
        t1=$(now)
        echo "$db $(elapsed "$t0" "$t1")" >>"$WORK/imports"
        log "import of $IMPORT_PUPILS pupils into $db: $(elapsed "$t0" "$t1") s"
    done
done
# The same process start without the import, to tell them apart.
t0=$(now); clef big migrate >/dev/null; t1=$(now)
START_BIG=$(elapsed "$t0" "$t1")
t0=$(now); clef empty migrate >/dev/null; t1=$(now)
START_EMPTY=$(elapsed "$t0" "$t1")

say "load average    $(cut -d' ' -f1-3 /proc/loadavg) (end of the measures)"
python3 - "$WORK/runs" "$WORK/imports" "$START_EMPTY" "$START_BIG" "$IMPORT_PUPILS" <<'EOF' | tee -a "$RESULTS"
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
imports = [line.split() for line in open(sys.argv[2])]
def med(values):
    return statistics.median(values) if values else float("nan")
print()
print("| measure | empty | big | big / empty |")
print("|---|---|---|---|")
for mode, unit in (("login", "logins/s"), ("exchange", "exchanges/s")):
    rows = {db: [r for r in runs if r["mode"] == mode and r["db"] == db] for db in ("empty", "big")}
    for key, label in (("rate", unit), ("p50_ms", f"{mode} p50 ms"), ("p99_ms", f"{mode} p99 ms"),
                       ("server_cpu_ms_per_op", f"{mode} server CPU ms/op")):
        e = med([r[key] for r in rows["empty"]])
        b = med([r[key] for r in rows["big"]])
        print(f"| {label} | {e:g} | {b:g} | {b / e:.2f} |")
    bad = {db: sum(n for r in rows[db] for s, n in r["statuses"].items() if s not in ("303", "200"))
           for db in rows}
    print(f"| {mode} failures (any other answer) | {bad['empty']} | {bad['big']} | |")
e = [float(t) for db, t in imports if db == "empty"]
b = [float(t) for db, t in imports if db == "big"]
print(f"| import of {sys.argv[5]} pupils, s (median of {len(e)}) | {med(e):.2f} | {med(b):.2f} | {med(b) / med(e):.2f} |")
print(f"| process start (clef migrate), s | {sys.argv[3]} | {sys.argv[4]} | |")
print()
for r in runs:
    print(f"run {r['db']:5} {r['mode']:8} {r['rate']:7}/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
          f"cpu {r['server_cpu_ms_per_op']} ms/op load {r['load']} statuses {r['statuses']}")
print("imports " + ", ".join(f"{db} {t} s" for db, t in imports))
EOF

# 6. Plans on the big database, with its real statistics, and the expiry probe: deleting
#    PROBE provisional guardians (their links first) in a transaction rolled back, with the
#    index on accounts.merged_into and without it (dropped inside the same transaction).
IDENT=$(sql big "SELECT identifier FROM accounts WHERE kind = 'guardian' ORDER BY id LIMIT 1")
GUARDIAN=$(sql big "SELECT id FROM accounts WHERE identifier = '$IDENT'")
ESTAB=$(sql big "SELECT id FROM establishments WHERE uai = '${UAIS[0]}'")
PLANS=(
    "SELECT * FROM accounts WHERE identifier = '$IDENT'"
    "SELECT s.id, g.rank, e.uai FROM guardianships g JOIN accounts s ON s.id = g.student_id LEFT JOIN establishments e ON e.id = s.establishment_id WHERE g.guardian_id = '$GUARDIAN' AND s.state <> 'closed' ORDER BY g.created_at, s.family_name, s.given_name, s.id"
    "SELECT s.class_name AS class, g.state AS state, COUNT(DISTINCT g.id) AS n FROM accounts s JOIN guardianships l ON l.student_id = s.id JOIN accounts g ON g.id = l.guardian_id WHERE s.establishment_id = '$ESTAB' AND s.kind = 'student' AND s.state <> 'closed' AND g.state <> 'closed' GROUP BY s.class_name, g.state ORDER BY s.class_name"
    "SELECT g.student_id, g.rank, a.id FROM guardianships g JOIN accounts a ON a.id = g.guardian_id JOIN accounts s ON s.id = g.student_id WHERE s.establishment_id = '$ESTAB' AND s.student_ref IS NOT NULL AND a.state <> 'closed'"
)
{
    echo
    echo "plans on the big database:"
    for q in "${PLANS[@]}"; do
        echo "-- $q"
        case $BACKEND in
            sqlite) sql big "EXPLAIN QUERY PLAN $q" ;;
            postgres) sql big "EXPLAIN (ANALYZE, COSTS OFF) $q" ;;
        esac
    done
    echo
    echo "expiry probe: deleting $PROBE provisional guardians (rolled back)"
} | tee -a "$RESULTS"
for index in with without; do
    drop=""
    [[ $index == without ]] && drop="DROP INDEX accounts_merged_into;"
    prepare="CREATE TEMP TABLE doomed AS SELECT id FROM accounts WHERE kind = 'guardian' AND state = 'provisional' ORDER BY id LIMIT $PROBE;
DELETE FROM guardianships WHERE guardian_id IN (SELECT id FROM doomed);"
    case $BACKEND in
        sqlite)
            took=$(printf 'PRAGMA foreign_keys = ON;\nBEGIN;\n%s\n%s\n.timer on\nDELETE FROM accounts WHERE id IN (SELECT id FROM doomed);\n.timer off\nROLLBACK;\n' \
                "$drop" "$prepare" | sqlite3 "$WORK/big/data/clef.db" | awk '/^Run Time/ { print $4 " s" }')
            ;;
        postgres)
            took=$(printf 'BEGIN;\n%s\n%s\nEXPLAIN (ANALYZE, COSTS OFF) DELETE FROM accounts WHERE id IN (SELECT id FROM doomed);\nROLLBACK;\n' \
                "$drop" "$prepare" | psql -q -X -A -t "$(db_url big)" | { grep -E 'merged_into|Execution Time' || true; } | tr '\n' ' ')
            ;;
    esac
    say "  $index the index on accounts.merged_into: $took"
done

echo
echo "=== results ($RESULTS) ==="
cat "$RESULTS"
