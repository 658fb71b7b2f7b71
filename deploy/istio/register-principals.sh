#!/bin/sh
# register-principals.sh — tell matryoshka-authz which Matryoshka service id (sid) each Istio
# workload identity is. Istio cannot set per-route context_extensions, so the service learns the
# destination of a Check from `attributes.destination.principal` (the SPIFFE id of the workload's
# sidecar) through this mapping. Each line is registered with
#   matryoshka-authz principal map --principal spiffe://<trust-domain>/ns/<ns>/sa/<sa> --sid <sid>
#
# Input (files named as arguments, or standard input): one mapping a line, `#` starts a comment:
#   <namespace>/<serviceaccount>  <sid>        e.g.  shop/orders  orders
#   spiffe://<id>                 <sid>        e.g.  spiffe://cluster.local/ns/edge/sa/gateway  gateway
# The whole list is checked before anything is written; a bad line stops it with exit code 2.
#
# Environment:
#   TRUST_DOMAIN    SPIFFE trust domain of the mesh (default cluster.local)
#   MATRYOSHKA_CLI  the command to run (default: matryoshka-authz on PATH, else the CLI inside the
#                   service's image, /app/dist/src/cli/main.js)
#   DRY_RUN=1       print the commands instead of running them
#   REDIS_URL       read by the CLI (already set inside the service's pods)
#
# Usage:
#   locally:     REDIS_URL=redis://… sh deploy/istio/register-principals.sh principals.txt
#   in the pod:  kubectl -n matryoshka-authz exec -i deploy/matryoshka-authz -- \
#                  sh -c "$(cat deploy/istio/register-principals.sh)" register-principals < principals.txt
#   via kubectl: MATRYOSHKA_CLI='kubectl -n matryoshka-authz exec deploy/matryoshka-authz -- node dist/src/cli/main.js' \
#                  sh deploy/istio/register-principals.sh principals.txt
set -eu

TRUST_DOMAIN=${TRUST_DOMAIN:-cluster.local}
DRY_RUN=${DRY_RUN:-}

fail() {
  printf 'register-principals: %s\n' "$*" >&2
  exit 2
}

if [ -n "${MATRYOSHKA_CLI:-}" ]; then
  cli=$MATRYOSHKA_CLI
elif command -v matryoshka-authz >/dev/null 2>&1; then
  cli=matryoshka-authz
elif [ -f /app/dist/src/cli/main.js ]; then
  cli='node /app/dist/src/cli/main.js'
else
  fail 'no matryoshka-authz CLI found: set MATRYOSHKA_CLI (e.g. "npx matryoshka-authz")'
fi

case $TRUST_DOMAIN in
  '' | */* | *[[:space:]]*) fail "TRUST_DOMAIN '$TRUST_DOMAIN' is not a trust domain" ;;
esac

# Words are split on whitespace below ($cli, each line); file names never get globbed.
set -f

nl='
'
pairs=''
count=0

# add WHERE IDENTITY SID: validate one mapping and queue "principal sid".
add() {
  where=$1
  shift
  [ $# -eq 0 ] && return 0
  [ $# -eq 2 ] || fail "$where: expected '<namespace>/<serviceaccount> <sid>' or '<spiffe id> <sid>'"
  identity=$1
  sid=$2
  case $identity in
    spiffe://?*/?*) principal=$identity ;;
    spiffe://*) fail "$where: '$identity' is not a SPIFFE id" ;;
    */*/* | /* | */) fail "$where: '$identity' is not <namespace>/<serviceaccount>" ;;
    */*) principal="spiffe://$TRUST_DOMAIN/ns/${identity%%/*}/sa/${identity#*/}" ;;
    *) fail "$where: '$identity' is not <namespace>/<serviceaccount> or a SPIFFE id" ;;
  esac
  # The CLI's identifier rule: a letter or digit, then letters, digits, . _ : @ / - (128 at most).
  case $sid in
    [!A-Za-z0-9]* | *[!A-Za-z0-9._:@/-]*) fail "$where: '$sid' is not a service id" ;;
  esac
  [ ${#sid} -le 128 ] || fail "$where: service id '$sid' is longer than 128 characters"
  pairs="$pairs$principal $sid$nl"
  count=$((count + 1))
}

# read_list NAME: read mappings from standard input, NAME for messages.
read_list() {
  n=0
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line=${line%%#*}
    # shellcheck disable=SC2086 # split into words on purpose
    add "$1:$n" $line
  done
}

if [ $# -eq 0 ]; then
  read_list stdin
else
  for file in "$@"; do
    if [ "$file" = - ]; then
      read_list stdin
    else
      [ -r "$file" ] || fail "cannot read $file"
      read_list "$file" <"$file"
    fi
  done
fi

[ "$count" -gt 0 ] || fail 'no mappings given'

printf '%s' "$pairs" | while IFS=' ' read -r principal sid; do
  if [ -n "$DRY_RUN" ]; then
    printf '%s principal map --principal %s --sid %s\n' "$cli" "$principal" "$sid"
  else
    # shellcheck disable=SC2086 # $cli is a command line on purpose
    $cli principal map --principal "$principal" --sid "$sid" </dev/null
  fi
done
