#!/usr/bin/env bash
# Real-browser end-to-end + accessibility check of Clef's login, account
# activation, consent and logout flows, « Mon compte »'s sessions and
# applications, the recovery pages (identifiant / mot de passe oubliés),
# « Regrouper des comptes » and the establishment back office.
#
#   bash tests/browser/run.sh        (from anywhere; exits non-zero on any failure)
#
# Idempotent: installs Debian's chromium only when /usr/bin/chromium is missing,
# installs the npm packages pinned in tests/browser/package-lock.json, builds clef
# (debug), starts `clef serve --demo` in a throw-away directory on a free loopback
# port, runs tests/browser/login.spec.mjs, tests/browser/activation.spec.mjs
# (which provisions a family through the clef CLI on the same data dir),
# tests/browser/consent.spec.mjs (which registers a third-party service through
# the CLI), tests/browser/logout.spec.mjs, tests/browser/account.spec.mjs
# (« Mon compte »'s sessions and applications) and tests/browser/recovery.spec.mjs
# (identifier reminder, password reset by mailed link and by SMS code, read from
# the server's mail and SMS outboxes; it changes the demo parent's password and
# sets it back), tests/browser/grouping.spec.mjs (« Regrouper des comptes »:
# a letter account provisioned through the CLI grouped into the demo parent's)
# and tests/browser/backoffice.spec.mjs (the establishment back office at
# /etablissement, with a staff account made through the CLI) in headless
# Chromium, and cleans up.
# Every spec always runs; the exit status is non-zero when any fails.
#
# Environment (all optional):
#   CHROMIUM        Chromium binary                       (default /usr/bin/chromium)
#   CLEF_BIN        use this clef binary, skip cargo build
#   CLEF_PORT       port for the test server              (default: a free one)
#   KEEP_ARTIFACTS  directory for screenshots/HTML of failures (default tests/browser/artifacts)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
ARTIFACTS_DIR="${KEEP_ARTIFACTS:-$HERE/artifacts}"
START=$SECONDS

log() { printf '[browser] %s\n' "$*"; }

# --- 1. Chromium (Debian package; never a Playwright-downloaded build) --------
if [ ! -x "$CHROMIUM" ]; then
  log "installing chromium with apt-get"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
log "$("$CHROMIUM" --version 2>/dev/null || echo "chromium at $CHROMIUM")"

# --- 2. npm packages (exact versions from package-lock.json) ------------------
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(
  cd "$HERE"
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    npm install --no-audit --no-fund --loglevel=error
  fi
)

# --- 3. clef (debug build) -----------------------------------------------------
if [ -n "${CLEF_BIN:-}" ]; then
  BIN="$CLEF_BIN"
else
  log "cargo build (waits if another build holds the cargo lock)"
  (cd "$ROOT" && cargo build --quiet --bin clef)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/clef"
fi
[ -x "$BIN" ] || { echo "no clef binary at $BIN" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" # the server and the CLI run elsewhere

# --- 4. start `clef serve --demo` in a temp dir --------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/clef-browser.XXXXXX")"
CLEF_PID=""
cleanup() {
  local rc=$?
  if [ -n "$CLEF_PID" ] && kill -0 "$CLEF_PID" 2>/dev/null; then
    kill "$CLEF_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CLEF_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CLEF_PID" 2>/dev/null || true
    wait "$CLEF_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/clef.log" ]; then
    echo "---- clef log (last 60 lines) ----" >&2
    tail -n 60 "$WORK/clef.log" >&2 || true
  fi
  rm -rf "$WORK"
  log "done in $((SECONDS - START)) s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${CLEF_PORT:-}" ]; then
  PORT="$CLEF_PORT"
else
  PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
fi
URL="http://127.0.0.1:$PORT"

log "starting clef serve --demo on $URL (work dir $WORK)"
(
  cd "$WORK"
  exec env CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
    CLEF_LISTEN="127.0.0.1:$PORT" CLEF_ISSUER="$URL" \
    "$BIN" serve --demo
) >"$WORK/clef.log" 2>&1 </dev/null &
CLEF_PID=$!

CLIENT_ID=""
CLIENT_SECRET=""
for _ in $(seq 600); do # up to 60 s
  kill -0 "$CLEF_PID" 2>/dev/null || { echo "clef exited early" >&2; exit 1; }
  if [ -z "$CLIENT_ID" ]; then
    CLIENT_ID="$(sed -n 's/^ *Client: *\([^ ]*\).*$/\1/p' "$WORK/clef.log" | tail -n 1)"
    CLIENT_SECRET="$(sed -n 's/^ *Secret: *\([^ ]*\).*$/\1/p' "$WORK/clef.log" | tail -n 1)"
  fi
  if [ -n "$CLIENT_ID" ] && [ -n "$CLIENT_SECRET" ] && curl -sf "$URL/healthz" >/dev/null 2>&1; then
    break
  fi
  sleep 0.1
done
[ -n "$CLIENT_ID" ] && [ -n "$CLIENT_SECRET" ] || { echo "no demo client id/secret in the clef log" >&2; exit 1; }
curl -sf "$URL/healthz" >/dev/null || { echo "clef did not answer $URL/healthz" >&2; exit 1; }
log "clef is up (pid $CLEF_PID, client $CLIENT_ID)"

# --- 5. the browser checks -----------------------------------------------------
rm -rf "$ARTIFACTS_DIR"
FAILED=0
log "login.spec.mjs"
CLEF_URL="$URL" CLEF_CLIENT_ID="$CLIENT_ID" CLEF_CLIENT_SECRET="$CLIENT_SECRET" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR" \
  node "$HERE/login.spec.mjs" || FAILED=1

# Same server; the spec runs the clef CLI against the server's data and keys.
log "activation.spec.mjs"
CLEF_URL="$URL" CLEF_BIN="$BIN" CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/activation" \
  node "$HERE/activation.spec.mjs" || FAILED=1

log "consent.spec.mjs"
CLEF_URL="$URL" CLEF_BIN="$BIN" CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/consent" \
  node "$HERE/consent.spec.mjs" || FAILED=1

log "logout.spec.mjs"
CLEF_URL="$URL" CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/logout" \
  node "$HERE/logout.spec.mjs" || FAILED=1

# « Se déconnecter partout » ends the demo parent's other sessions.
log "account.spec.mjs"
CLEF_URL="$URL" CLEF_BIN="$BIN" CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/account" \
  node "$HERE/account.spec.mjs" || FAILED=1

# After account.spec.mjs: a reset ends every session of the demo parent, and
# her password is changed (then set back to the demo one).
log "recovery.spec.mjs"
CLEF_URL="$URL" CLEF_DATA_DIR="$WORK/data" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/recovery" \
  node "$HERE/recovery.spec.mjs" || FAILED=1

# Last: it attaches a new child to the demo parent (« Regrouper des comptes »
# with a letter it provisions through the CLI) and closes the letter account.
log "grouping.spec.mjs"
CLEF_URL="$URL" CLEF_BIN="$BIN" CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/grouping" \
  node "$HERE/grouping.spec.mjs" || FAILED=1

# After grouping.spec.mjs: it makes a staff account with the CLI, imports a
# pupil and her parent into the demo establishment from the browser and resets
# that parent's account (« Réinitialiser le compte »).
log "backoffice.spec.mjs"
CLEF_URL="$URL" CLEF_BIN="$BIN" CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
  CHROMIUM="$CHROMIUM" ARTIFACTS_DIR="$ARTIFACTS_DIR/backoffice" \
  node "$HERE/backoffice.spec.mjs" || FAILED=1

exit "$FAILED"
