#!/usr/bin/env bash
# Recovery timing: no enumeration through the recovery pages (issue 8; SPEC §3.4, §3.5).
# The same screen, status and time (within noise) whatever was typed: an identifier of an
# active account with a confirmed address, an unknown one, a provisional one (imported,
# letter not yet used) and an active one without address; a confirmed address and an
# unknown one. Compared over many requests here, never in a timed test.
#
#   bench/recovery-timing.sh                     # builds the release binary into ../target-bench,
#                                                # 400 requests per kind
#   CLEF_BIN=/path/to/clef REQUESTS=1000 bench/recovery-timing.sh
#
# The server runs on core 0 (taskset -c 0), the client on core 1, with a fresh data dir and
# keys dir in a temporary folder, the embedded defaults (SQLite, in-memory store, mail and
# SMS written to the outbox folder, JSON log lines at the default level, info, into a file;
# CLEF_LOG=warn quietens them) and CLEF_TRUSTED_PROXIES=127.0.0.1: every request
# carries its own X-Forwarded-For address (10.x.y.z), so the per-address limit (30 recovery
# requests an hour) never answers. The data dir is prepared with ACCOUNTS accounts of each
# kind, all identifiers 12 characters long and all addresses 24:
#   known        alix.connNNN   guardian, active, confirmed alix.connNNN@example.org (`clef account create`)
#   no-email     alix.nomeNNN   guardian, active, no address (`clef account create`)
#   provisional  alix.provNNN   guardian of a pupil imported from a CSV (`clef import`), with
#                               an address and a mobile number from the school, not activated
#   known-flood  alix.flooaaa   one known account asked for again and again: after 3 messages
#                               an hour the per-recipient limit holds the mail back
# (NNN is three letters.) /identifiant-oublie is asked with the known accounts' addresses
# (confirmed), random ones (unknown), the provisional accounts' (from the file, never
# confirmed) and alix.flooaaa@example.org every time (confirmed-flood; its hourly count is
# the one its reset mails use, so the flood gets 3 messages in all). With ACCOUNTS ≥
# REQUESTS every `known` and `confirmed` request is a real send.
# The client is bench/recovery_timing.py (Python standard library only). Needs: a Rust
# toolchain (or CLEF_BIN), python3, curl, taskset (util-linux), and at least 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQUESTS=${REQUESTS:-400}
ACCOUNTS=${ACCOUNTS:-$REQUESTS}
SEED=${SEED:-8}
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
UAI=0590001A

if [[ $(nproc --all) -lt 2 ]]; then
    echo "needs 2 cores: the server on core 0, the load on core 1" >&2
    exit 1
fi
if [[ $ACCOUNTS -lt $REQUESTS ]]; then
    echo "note: ACCOUNTS < REQUESTS, so some known accounts are asked for more than once" >&2
fi

if [[ -z ${CLEF_BIN:-} ]]; then
    # A target dir of its own beside the checkout (/work/target-bench for /work/main), so
    # the release build neither waits on nor disturbs the target/ of other builds.
    TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/../target-bench}")
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --bin clef)
    CLEF_BIN=$TARGET/release/clef
    SOURCE="built from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    git -C "$ROOT" diff --quiet HEAD -- src templates migrations Cargo.toml Cargo.lock 2>/dev/null ||
        SOURCE="$SOURCE with uncommitted changes"
else
    SOURCE="given as CLEF_BIN"
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

# Run from the temporary folder so no clef.toml is picked up.
cd "$WORK"
CLEF_ENV=(env -u CLEF_CONFIG
    CLEF_LISTEN="127.0.0.1:$PORT" CLEF_ISSUER="http://127.0.0.1:$PORT"
    CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" CLEF_DATABASE_URL= CLEF_REDIS_URL=
    CLEF_TRUSTED_PROXIES=127.0.0.1 CLEF_LOG_JSON=true)
# The subcommands' log lines go to seed.log, shown if one fails.
clef() { "${CLEF_ENV[@]}" "$CLEF_BIN" "$@" 2>>"$WORK/seed.log" || { cat "$WORK/seed.log" >&2; return 1; }; }

# n → three letters: 0 → aaa, 1 → aab… (17,576 at most).
LETTERS=abcdefghijklmnopqrstuvwxyz
suffix() { echo "${LETTERS:$(($1 / 676 % 26)):1}${LETTERS:$(($1 / 26 % 26)):1}${LETTERS:$(($1 % 26)):1}"; }

echo "preparing $ACCOUNTS accounts of each kind…" >&2
clef establishment create --uai "$UAI" --name "Collège Jean Moulin" >/dev/null
: >known.txt
: >no-email.txt
CSV=pupils.csv
echo "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_email,guardian1_phone" >"$CSV"
for n in $(seq 0 $((ACCOUNTS - 1))); do
    s=$(suffix "$n")
    clef account create --kind guardian --identifier "alix.conn$s" --given-name Alix \
        --family-name "Conn$s" --email "alix.conn$s@example.org" >/dev/null
    echo "alix.conn$s" >>known.txt
    clef account create --kind guardian --identifier "alix.nome$s" --given-name Alix \
        --family-name "Nome$s" >/dev/null
    echo "alix.nome$s" >>no-email.txt
    printf 'P%05d,Prov%s,Noa,2013-04-%02d,6 A,Prov%s,Alix,alix.prov%s@example.org,06%08d\n' \
        "$n" "$s" $((n % 28 + 1)) "$s" "$s" $((12345678 + n * 7919)) >>"$CSV"
done
clef account create --kind guardian --identifier alix.flooaaa --given-name Alix \
    --family-name Flooaaa --email alix.flooaaa@example.org >/dev/null
clef import --establishment "$UAI" --file "$CSV" >/dev/null
# The identifiers the import gave the guardians, as their letters show them.
clef letters --establishment "$UAI" --format csv --out letters.csv >/dev/null
python3 - letters.csv provisional.txt <<'EOF'
import csv, sys
with open(sys.argv[1], encoding="utf-8-sig") as f, open(sys.argv[2], "w") as out:
    for row in csv.DictReader(f, delimiter=";"):
        if row["type"].startswith("responsable"):
            print(row["identifiant"].lstrip("'"), file=out)
EOF
echo "  $(wc -l <known.txt) known, $(wc -l <no-email.txt) without address, $(wc -l <provisional.txt) provisional" >&2

"${CLEF_ENV[@]}" taskset -c "$SERVER_CPUS" "$CLEF_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!

for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done

echo "binary          $CLEF_BIN ($SOURCE)"
echo "machine         $(nproc --all) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date            $(date -u +%Y-%m-%dT%H:%MZ)"
echo "setup           server on cores $SERVER_CPUS, client on cores $LOAD_CPUS, $REQUESTS requests per kind and step, $ACCOUNTS accounts per kind"
taskset -c "$LOAD_CPUS" python3 "$ROOT/bench/recovery_timing.py" --port "$PORT" \
    --requests "$REQUESTS" --seed "$SEED" --known known.txt --no-email no-email.txt \
    --provisional provisional.txt --flood alix.flooaaa
sleep 1   # the last mails leave in the background
echo "outbox          $(find "$WORK/data/outbox/mail" -name '*.eml' 2>/dev/null | wc -l) mails written"
python3 - "$WORK/data/clef.db" <<'EOF'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT kind, outcome, count(*) FROM recovery_requests GROUP BY kind, outcome ORDER BY kind, outcome")
print("recorded        " + ", ".join(f"{kind} {outcome} {n}" for kind, outcome, n in rows)
      + " (warm-up included)")
EOF
python3 - "$WORK/server.log" <<'EOF'
import json, sys
from collections import Counter
levels, notes = Counter(), Counter()
for line in open(sys.argv[1], errors="replace"):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    levels[event.get("level", "?")] += 1
    if event.get("level") in ("WARN", "ERROR"):
        notes[(event["level"], event.get("fields", {}).get("message", "?"))] += 1
print("server log      " + ", ".join(f"{n} {level}" for level, n in sorted(levels.items())) + " lines")
for (level, message), n in notes.most_common(5):
    print(f"                {n} × {level} {message}")
EOF
