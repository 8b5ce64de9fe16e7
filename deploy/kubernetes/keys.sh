#!/usr/bin/env bash
# Clef's keys folder kept in a Kubernetes Secret (default: clef-keys), which
# every pod mounts read-only as its keys folder. Run from an operator's
# machine with kubectl and a clef binary of the deployed version:
#
#   keys.sh init            create the Secret with new keys (refuses if it exists)
#   keys.sh import DIR      create the Secret from an existing keys folder
#                           (moving a running Clef to Kubernetes: keeps its
#                           pairwise.key, so third parties keep their subjects)
#   keys.sh rotate [ALG]    add new signing keys (RS256, ES256, EdDSA or all,
#                           the default) and drop expired ones: `clef keys rotate`
#                           on a private copy of the Secret, written back whole
#   keys.sh list            `clef keys list` on a private copy of the Secret
#
# Environment:
#   KUBECTL   the kubectl command, with its options   (default: kubectl)
#             e.g. KUBECTL="kubectl --context prod -n clef"
#   CLEF      the clef command                        (default: clef)
#             or the image, e.g. (the copy is under $TMPDIR, /tmp by default)
#             CLEF="docker run --rm -u $(id -u) -v /tmp:/tmp -e CLEF_KEYS_DIR
#                   -e CLEF_DATA_DIR -e CLEF_DATABASE_URL registry.example.fr/clef:0.1.0"
#   SECRET    the Secret's name                       (default: clef-keys)
#   CLEF_DATABASE_URL  where `keys rotate` records its audit event; unset, it
#             goes to a throwaway SQLite file (see docs/operations.md)
#
# The copy lives in a private temporary folder, removed on exit. A rotated key
# is published at once and signs 10 minutes after `rotate` ran: the Secret is
# written back immediately, and pods see it within about a minute and a half
# (the kubelet's refresh, then Clef's 30-second re-read).
set -euo pipefail

KUBECTL=${KUBECTL:-kubectl}
CLEF=${CLEF:-clef}
SECRET=${SECRET:-clef-keys}

die() { echo "keys.sh: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/clef-keys.XXXXXX")
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/keys" "$work/data"

# Runs clef on the private copy, from the temporary folder (so that no
# clef.toml of the current folder applies).
clef_on_copy() {
  # shellcheck disable=SC2086 # $CLEF may be a command with options
  (cd "$work" && CLEF_KEYS_DIR="$work/keys" CLEF_DATA_DIR="$work/data" $CLEF "$@")
}

# The Secret's entries, one file each, into $work/keys.
fetch() {
  local listing name value
  # shellcheck disable=SC2086,SC2016 # $KUBECTL has options; a go template
  listing=$($KUBECTL get secret "$SECRET" \
    -o go-template='{{range $k, $v := .data}}{{$k}} {{$v}}{{"\n"}}{{end}}') \
    || die "cannot read the Secret $SECRET"
  while read -r name value; do
    [[ -n $name ]] || continue
    [[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9._-]*$ ]] || die "unexpected entry name: $name"
    (umask 077 && printf '%s' "$value" | base64 -d > "$work/keys/$name")
  done <<< "$listing"
}

# Refuses a folder that is not a whole keys folder, before writing it anywhere.
check_complete() {
  local dir=$1 family file
  for family in rs256 es256 ed25519; do
    compgen -G "$dir/$family-*.pem" > /dev/null || die "no $family key in $dir"
  done
  for file in pairwise.key device-cookie.key provisional-passwords.key; do
    [[ -f $dir/$file ]] || die "no $file in $dir"
    [[ $(wc -c < "$dir/$file") -eq 32 ]] || die "$dir/$file does not hold 32 bytes"
  done
}

# The Secret's manifest for the files of $1 (not the dot files: .keys.lock,
# temporary files), labelled.
manifest() {
  local dir=$1 file args=()
  for file in "$dir"/*; do
    [[ -f $file ]] && args+=("--from-file=$(basename "$file")=$file")
  done
  # shellcheck disable=SC2086
  $KUBECTL create secret generic "$SECRET" "${args[@]}" --dry-run=client -o yaml \
    | $KUBECTL label --local -f - -o yaml \
        app.kubernetes.io/name=clef app.kubernetes.io/component=keys
}

case ${1:-} in
  init)
    clef_on_copy keys rotate --alg all > /dev/null
    for file in pairwise.key device-cookie.key provisional-passwords.key; do
      (umask 077 && head -c 32 /dev/urandom > "$work/keys/$file")
    done
    check_complete "$work/keys"
    # `create` fails if the Secret exists: never replace a pairwise.key.
    # shellcheck disable=SC2086
    manifest "$work/keys" | $KUBECTL create -f -
    clef_on_copy keys list
    ;;
  import)
    [[ -n ${2:-} && -d $2 ]] || die "usage: keys.sh import DIR"
    check_complete "$2"
    # shellcheck disable=SC2086
    manifest "$2" | $KUBECTL create -f -
    cp -p "$2"/* "$work/keys/" 2>/dev/null || true
    clef_on_copy keys list
    ;;
  rotate)
    fetch
    check_complete "$work/keys"
    clef_on_copy keys rotate --alg "${2:-all}"
    check_complete "$work/keys"
    # The whole Secret is replaced, so that the keys `rotate` deleted go too.
    # shellcheck disable=SC2086
    manifest "$work/keys" | $KUBECTL replace -f -
    clef_on_copy keys list
    ;;
  list)
    fetch
    clef_on_copy keys list
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
