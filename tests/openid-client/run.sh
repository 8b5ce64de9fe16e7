#!/usr/bin/env bash
# Clef driven by a relying party written by others: panva's openid-client (npm,
# version pinned in package-lock.json), through node's built-in test runner.
#
#   bash tests/openid-client/run.sh     (from anywhere; exits non-zero on any failure)
#
# Builds nothing: it uses target/debug/clef, which `cargo test` (or `cargo build`)
# has already built — .ci/run runs it after `cargo test`. It installs the npm
# packages with `npm ci`, loads the demo data (`clef demo`: parent.martin with two
# children, a student) into a throw-away data dir, registers a confidential and a
# public client with `clef client create`, issues an initial access token for
# dynamic registration with `clef client token` (the tests register their own
# clients with it), starts `clef serve` on a free loopback port (issuer
# http://127.0.0.1:PORT), runs openid-client.test.mjs, and stops the server. On
# failure the server's log is printed.
#
# Environment (all optional):
#   CLEF_BIN    the clef binary   (default: target/debug/clef, or $CARGO_TARGET_DIR/debug/clef)
#   CLEF_PORT   port for the server (default: a free one)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
START=$SECONDS

log() { printf '[openid-client] %s\n' "$*"; }

# --- 1. npm packages (exact versions from package-lock.json) ------------------
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

# --- 2. the clef binary (built by `cargo test` / `cargo build`, never here) ---
BIN="${CLEF_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/clef}"
[ -x "$BIN" ] || { echo "no clef binary at $BIN: run \`cargo build\` first (or set CLEF_BIN)" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" # the server and the CLI run elsewhere

# --- 3. data, clients, server ---------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/clef-openid-client.XXXXXX")"
CLEF_PID=""
cleanup() {
  local rc=$?
  if [ -n "$CLEF_PID" ] && kill -0 "$CLEF_PID" 2>/dev/null; then
    kill "$CLEF_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CLEF_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CLEF_PID" 2>/dev/null || true
    wait "$CLEF_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK/setup.log" "$WORK/clef.log"; do
      [ -s "$f" ] || continue
      echo "---- $(basename "$f") (last 80 lines) ----" >&2
      tail -n 80 "$f" >&2 || true
    done
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
ISSUER="http://127.0.0.1:$PORT"
# The relying party's addresses: loopback, never requested (the tests stop at the redirect).
RP="http://127.0.0.1:9"
export CLEF_DATA_DIR="$WORK/data" CLEF_KEYS_DIR="$WORK/keys" \
  CLEF_LISTEN="127.0.0.1:$PORT" CLEF_ISSUER="$ISSUER" NO_COLOR=1 # plain logs, printed on failure
unset CLEF_CONFIG CLEF_DATABASE_URL CLEF_REDIS_URL # the embedded defaults, whatever the caller's shell says
cd "$WORK"                                          # no clef.toml of the caller's is read

clef() { "$BIN" "$@" 2>>"$WORK/setup.log" </dev/null; }
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];process.stdout.write(v==null?"":String(v))})' "$1"; }

log "demo data and two clients in $WORK"
clef demo >>"$WORK/setup.log"
CONFIDENTIAL="$(clef client create --name "openid-client (confidentiel)" --first-party --json \
  --redirect-uri "$RP/confidential/callback" --post-logout-redirect-uri "$RP/confidential/logged-out")"
PUBLIC="$(clef client create --name "openid-client (public)" --first-party --public --json \
  --redirect-uri "$RP/public/callback" --post-logout-redirect-uri "$RP/public/logged-out")"
export OIDC_CONFIDENTIAL_ID="$(json_field client_id <<<"$CONFIDENTIAL")"
export OIDC_CONFIDENTIAL_SECRET="$(json_field client_secret <<<"$CONFIDENTIAL")"
export OIDC_PUBLIC_ID="$(json_field client_id <<<"$PUBLIC")"
[ -n "$OIDC_CONFIDENTIAL_ID" ] && [ -n "$OIDC_CONFIDENTIAL_SECRET" ] && [ -n "$OIDC_PUBLIC_ID" ] \
  || { echo "clef client create did not print the clients' credentials" >&2; exit 1; }
[ -z "$(json_field client_secret <<<"$PUBLIC")" ] || { echo "a public client was given a secret" >&2; exit 1; }
# RFC 7591: the tests register clients themselves, with this bearer token.
export OIDC_INITIAL_ACCESS_TOKEN="$(clef client token --ttl 3600)"
[ -n "$OIDC_INITIAL_ACCESS_TOKEN" ] || { echo "clef client token printed no initial access token" >&2; exit 1; }
export OIDC_ISSUER="$ISSUER" OIDC_RP="$RP"

log "starting clef serve on $ISSUER"
"$BIN" serve >"$WORK/clef.log" 2>&1 </dev/null &
CLEF_PID=$!
for _ in $(seq 300); do # up to 30 s
  kill -0 "$CLEF_PID" 2>/dev/null || { echo "clef exited early" >&2; exit 1; }
  curl -sf "$ISSUER/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$ISSUER/healthz" >/dev/null || { echo "clef did not answer $ISSUER/healthz" >&2; exit 1; }
log "clef is up (pid $CLEF_PID); confidential client $OIDC_CONFIDENTIAL_ID, public client $OIDC_PUBLIC_ID"

# --- 4. the relying party -------------------------------------------------------
node --test-reporter=spec "$HERE/openid-client.test.mjs"
