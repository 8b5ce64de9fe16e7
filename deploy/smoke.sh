#!/usr/bin/env bash
# deploy/ run for real on a Docker engine: the image is built, the compose file
# brought up, and the Kubernetes Deployment's pod played by `docker run` with
# the same settings. Run from anywhere; it cleans up after itself:
#
#   bash deploy/smoke.sh
#
# What it checks:
#  1. `compose up --build` with the demo profile: migrate runs, then the server,
#     which becomes ready on PostgreSQL and Redis; `clef demo` prints its client.
#  2. A parent signs in through the pages and the code is exchanged
#     (deploy/smoke.py login); « Identifiant oublié » reaches the mail catcher
#     (deploy/smoke.py mail).
#  3. A restart keeps the keys (same JWKS); a stop (SIGTERM) exits 0.
#  4. Kubernetes, without a cluster: deploy/kubernetes/keys.sh `init` makes the
#     keys Secret (kubectl renders it; a file stands in for the API server),
#     laid out as the kubelet mounts a Secret (..data symlinks, 0440, group
#     65532). Two "pods" run the image as deployment.yaml does: the ConfigMap's
#     environment, user 65532, read-only root, no capabilities, keys read-only,
#     data on a 64 MiB tmpfs, 256 MiB of memory. A sign-in on one is exchanged
#     on the other; `keys.sh rotate` then a kubelet-style swap of the Secret is
#     published by both within 40 s; SIGTERM stops both with status 0.
#
# Needs: a Docker engine with BuildKit, `docker compose` or docker-compose,
# kubectl (the client alone), curl, python3 with requests and PyYAML.
# DOCKER names the docker command (default: docker). Ports 8080-8082 and 1080
# must be free.
#
# SMOKE_STAND_INS=1 first builds stand-ins for the five public images it uses
# (rust, distroless cc, postgres, redis, maildev) from Debian's packages and
# this machine's Rust toolchain, under the same names, for a machine that
# reaches Debian and npm but not Docker Hub or gcr.io. They trust the CA
# certificates of /usr/local/share/ca-certificates (an intercepting proxy's).
# Needs debootstrap as well.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
if $DOCKER compose version >/dev/null 2>&1; then
  COMPOSE=("$DOCKER" compose -f deploy/compose.yaml -p clef-smoke)
else
  COMPOSE=(docker-compose -f deploy/compose.yaml -p clef-smoke)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/clef-smoke.XXXXXX")
pods=(clef-smoke-pod-1 clef-smoke-pod-2)
log() { printf '\n== %s\n' "$*"; }
die() { echo "smoke.sh: $*" >&2; exit 1; }
cleanup() {
  $DOCKER rm -f "${pods[@]}" >/dev/null 2>&1 || true
  "${COMPOSE[@]}" --profile demo down -v >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_ready() { # URL
  for _ in $(seq 1 60); do
    [[ $(curl -fsS "$1/readyz" 2>/dev/null) == ready ]] && return 0
    sleep 1
  done
  die "$1 never became ready"
}

if [[ ${SMOKE_STAND_INS:-} == 1 ]]; then
  log "stand-ins for the public images, from Debian"
  mkdir -p "$work/rootfs" "$work/ca"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$work/rootfs" -c . | $DOCKER import - clef-smoke/debian:bookworm >/dev/null
  rm -rf "$work/rootfs"
  cp /usr/local/share/ca-certificates/*.crt "$work/ca/" 2>/dev/null || true
  stand_in() { # TAG, then the Dockerfile on stdin; the context is $work/ca
    cat > "$work/ca/Dockerfile"
    $DOCKER build -q -t "$1" "$work/ca" >/dev/null
  }
  trust='COPY . /usr/local/share/ca-certificates/
RUN rm /usr/local/share/ca-certificates/Dockerfile; update-ca-certificates >/dev/null'
  stand_in rust:1.95-bookworm <<EOF
FROM clef-smoke/debian:bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev ca-certificates >/dev/null
$trust
EOF
  # The toolchain itself comes from this machine (rustup's sysroot).
  sysroot=$(rustc --print sysroot)
  $DOCKER build -q -t rust:1.95-bookworm -f - "$sysroot" >/dev/null <<'EOF'
FROM rust:1.95-bookworm
COPY bin /usr/local/rust/bin
COPY lib /usr/local/rust/lib
COPY libexec /usr/local/rust/libexec
ENV PATH=/usr/local/rust/bin:$PATH CARGO_HOME=/usr/local/cargo
EOF
  stand_in gcr.io/distroless/cc-debian12:nonroot <<'EOF'
FROM clef-smoke/debian:bookworm AS src
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libssl3 ca-certificates >/dev/null \
 && mkdir -p /out/lib/x86_64-linux-gnu /out/lib64 /out/etc/ssl/certs /out/tmp /out/home/nonroot \
 && cd /lib/x86_64-linux-gnu && cp -a libc.so.6 libm.so.6 libgcc_s.so.1 libssl.so.3 libcrypto.so.3 ld-linux-x86-64.so.2 /out/lib/x86_64-linux-gnu/ \
 && ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /out/lib64/ \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && printf 'root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group && chmod 1777 /out/tmp
FROM scratch
COPY --from=src /out/ /
USER 65532:65532
EOF
  # The official images' contracts as compose.yaml uses them.
  stand_in postgres:17 <<'EOF'
FROM clef-smoke/debian:bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
RUN printf '%s\n' '#!/bin/sh' 'set -e' 'mkdir -p $PGDATA && chown postgres $PGDATA && chmod 700 $PGDATA' \
  'if [ ! -s $PGDATA/PG_VERSION ]; then' \
  '  echo "$POSTGRES_PASSWORD" > /tmp/pw && chown postgres /tmp/pw' \
  '  su postgres -c "initdb -D $PGDATA -U $POSTGRES_USER --pwfile=/tmp/pw --auth-host=scram-sha-256 --auth-local=trust" >/dev/null' \
  '  rm /tmp/pw; echo "listen_addresses = '"'*'"'" >> $PGDATA/postgresql.conf' \
  '  echo "host all all all scram-sha-256" >> $PGDATA/pg_hba.conf' \
  '  su postgres -c "pg_ctl -D $PGDATA -w -o \"-c listen_addresses=\" start" >/dev/null' \
  '  su postgres -c "createdb -U $POSTGRES_USER $POSTGRES_DB"' \
  '  su postgres -c "pg_ctl -D $PGDATA -w stop" >/dev/null' \
  'fi' 'exec su postgres -c "postgres -D $PGDATA"' > /entrypoint && chmod +x /entrypoint
ENTRYPOINT ["/entrypoint"]
EOF
  stand_in redis:7 <<'EOF'
FROM clef-smoke/debian:bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
RUN printf '%s\n' '#!/bin/sh' 'shift; exec redis-server "$@" --bind 0.0.0.0 --protected-mode no' > /entrypoint && chmod +x /entrypoint
ENTRYPOINT ["/entrypoint"]
EOF
  stand_in maildev/maildev:2.2.1 <<EOF
FROM clef-smoke/debian:bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm ca-certificates >/dev/null
$trust
RUN npm config set cafile /etc/ssl/certs/ca-certificates.crt && npm install -g -s maildev@2.2.1
ENTRYPOINT ["maildev", "--smtp", "1025", "--web", "1080"]
EOF
fi

log "compose: build, migrate, serve, demo data"
"${COMPOSE[@]}" --profile demo up --build -d > "$work/up.log" 2>&1 \
  || { tail -n 30 "$work/up.log"; die "compose up failed"; }
wait_ready http://localhost:8080
for _ in $(seq 1 60); do
  demo=$("${COMPOSE[@]}" logs --no-color demo 2>/dev/null || true)
  [[ $demo == *"Secret:"* ]] && break
  sleep 1
done
client_id=$(sed -n 's/.*Client: *\([^ ]*\).*/\1/p' <<<"$demo" | head -n 1)
secret=$(sed -n 's/.*Secret: *\([^ ]*\).*/\1/p' <<<"$demo" | head -n 1)
[[ -n $client_id && -n $secret ]] || die "clef demo printed no client"
for service in migrate demo; do
  id=$("${COMPOSE[@]}" ps -q "$service")
  [[ $($DOCKER inspect -f '{{.State.ExitCode}}' "$id") == 0 ]] || die "$service did not exit 0"
done

log "compose: a sign-in, a code exchange, a mail"
python3 deploy/smoke.py login http://localhost:8080 http://localhost:8080 "$client_id" "$secret"
python3 deploy/smoke.py mail http://localhost:8080 http://localhost:1080

log "compose: a restart keeps the keys, a stop exits 0"
jwks=$(curl -fsS http://localhost:8080/jwks.json)
"${COMPOSE[@]}" restart clef >/dev/null 2>&1
wait_ready http://localhost:8080
[[ $(curl -fsS http://localhost:8080/jwks.json) == "$jwks" ]] || die "the keys changed across a restart"
"${COMPOSE[@]}" stop clef >/dev/null 2>&1
[[ $($DOCKER inspect -f '{{.State.ExitCode}}' "$("${COMPOSE[@]}" ps -q clef)") == 0 ]] \
  || die "clef did not exit 0 on SIGTERM"
echo "same JWKS after a restart; exit status 0 after SIGTERM"

log "kubernetes: keys.sh init, the Secret as the kubelet mounts it"
# kubectl renders the Secret; this file stands in for the API server.
cat > "$work/kubectl" <<EOF
#!/usr/bin/env python3
import os, sys, yaml
store, args = "$work/secret.yaml", sys.argv[1:]
if "--dry-run=client" in args or "--local" in args:
    os.execvp("kubectl", ["kubectl"] + args)
if args[0] in ("create", "replace", "apply"):
    if args[0] == "create" and os.path.exists(store):
        sys.exit("Error from server (AlreadyExists)")
    open(store, "w").write(sys.stdin.read())
elif args[:2] == ["get", "secret"]:
    for name, value in sorted(yaml.safe_load(open(store))["data"].items()):
        print(name, value)
else:
    sys.exit(f"kubectl stand-in: {args}")
EOF
chmod +x "$work/kubectl"
image=$($DOCKER inspect -f '{{.Config.Image}}' "$("${COMPOSE[@]}" ps -q clef)")
keys_sh() {
  KUBECTL="$work/kubectl" TMPDIR="$work" \
    CLEF="$DOCKER run --rm -u $(id -u) -v $work:$work -e CLEF_KEYS_DIR -e CLEF_DATA_DIR $image" \
    bash deploy/kubernetes/keys.sh "$@"
}
keys_sh init | tail -n 3
mount_secret() { # the kubelet's layout: a timestamped folder, ..data -> it, one symlink per key
  python3 - "$work/secret.yaml" "$work/secret" "$1" <<'EOF'
import base64, os, sys, yaml
store, root, version = sys.argv[1:]
data = yaml.safe_load(open(store))["data"]
os.makedirs(f"{root}/{version}")
for name, value in data.items():
    path = f"{root}/{version}/{name}"
    with open(path, "wb") as file:
        file.write(base64.b64decode(value))
    os.chown(path, 0, 65532)
    os.chmod(path, 0o440)
    if not os.path.lexists(f"{root}/{name}"):
        os.symlink(f"..data/{name}", f"{root}/{name}")
os.symlink(version, f"{root}/..data_tmp")
os.replace(f"{root}/..data_tmp", f"{root}/..data")
EOF
}
mount_secret ..v1

log "kubernetes: two pods as deployment.yaml runs them"
python3 - deploy/kubernetes/configmap.yaml "$work/pod.env" <<'EOF'
import sys, yaml
data = yaml.safe_load(open(sys.argv[1]))["data"]
data.update(CLEF_ISSUER="http://localhost:8081", CLEF_DATABASE_URL="postgres://clef:clef@postgres:5432/clef",
            CLEF_REDIS_URL="redis://redis:6379", CLEF_SMTP_URL="smtp://mail:1025")
open(sys.argv[2], "w").write("".join(f"{k}={v}\n" for k, v in data.items()))
EOF
# shellcheck disable=SC2016 # a Go template, not a shell expansion
network=$($DOCKER inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}' \
  "$("${COMPOSE[@]}" ps -q postgres)")
for i in 1 2; do
  $DOCKER run -d --name "${pods[i-1]}" --network "$network" --env-file "$work/pod.env" \
    --user 65532:65532 --group-add 65532 --read-only --cap-drop ALL --security-opt no-new-privileges \
    --memory 256m -p "808$i:8080" -v "$work/secret:/var/lib/clef/keys:ro" \
    --tmpfs /var/lib/clef/data:size=64m,uid=65532,gid=65532,mode=0700 "$image" serve >/dev/null
done
wait_ready http://localhost:8081
wait_ready http://localhost:8082
python3 deploy/smoke.py login http://localhost:8081 http://localhost:8082 "$client_id" "$secret"

log "kubernetes: keys.sh rotate, seen by both pods"
count_keys() { curl -fsS "$1/jwks.json" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["keys"]))'; }
before=$(count_keys http://localhost:8081)
keys_sh rotate RS256 | tail -n 3
mount_secret ..v2
for _ in $(seq 1 40); do
  (($(count_keys http://localhost:8081) > before && $(count_keys http://localhost:8082) > before)) && break
  sleep 1
done
(($(count_keys http://localhost:8081) > before && $(count_keys http://localhost:8082) > before)) \
  || die "the rotated key was not published by both pods within 40 s"
echo "both pods publish the new RS256 key"
$DOCKER stop "${pods[@]}" >/dev/null
for pod in "${pods[@]}"; do
  [[ $($DOCKER inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' "$pod") == "0 false" ]] \
    || die "$pod did not exit 0 on SIGTERM"
done
echo "both pods exit 0 on SIGTERM"

log "deploy/ smoke test passed"
