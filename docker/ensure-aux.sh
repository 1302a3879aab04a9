#!/usr/bin/env bash
# The images the cluster demo needs besides ours: Redis and HAProxy.
#
#   docker/ensure-aux.sh redis|haproxy [--env-file .env]
#
# Where a registry is reachable, the official image (redis:7-bookworm, haproxy:2.6);
# where none is, one built here the same way as our base (docker/build-base.sh:
# mmdebstrap piped into docker import) from Debian's own redis-server or haproxy
# package. stdout: the image reference; with --env-file it is also recorded there as
# REDIS_IMAGE / HAPROXY_IMAGE, which docker-compose.cluster.yml reads.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WHAT="${1:?usage: ensure-aux.sh redis|haproxy [--env-file FILE]}"; shift
ENV_FILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env-file) ENV_FILE="${2:?--env-file needs a path}"; shift 2 ;;
    *) echo "ensure-aux.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$WHAT" in
  redis)   OFFICIAL="redis:7-bookworm"; PACKAGE="redis-server"; VAR="REDIS_IMAGE" ;;
  haproxy) OFFICIAL="haproxy:2.6";      PACKAGE="haproxy";      VAR="HAPROXY_IMAGE" ;;
  *) echo "ensure-aux.sh: redis or haproxy, not $WHAT" >&2; exit 2 ;;
esac
LOCAL="peerchat-$WHAT:bookworm"
log() { echo "ensure-aux: $*" >&2; }

choose() {
  if docker image inspect "$OFFICIAL" >/dev/null 2>&1; then echo "$OFFICIAL"; return; fi
  if docker image inspect "$LOCAL" >/dev/null 2>&1; then echo "$LOCAL"; return; fi
  if [ "${NO_PULL:-0}" != 1 ] && timeout --kill-after=5 "${PULL_TIMEOUT:-30}" \
      docker pull --quiet "$OFFICIAL" >/dev/null 2>&1; then
    echo "$OFFICIAL"; return
  fi
  log "no registry: building $LOCAL from Debian's $PACKAGE (about 30 s)"
  BASE_TAG="$LOCAL" EXTRA_PACKAGES="$PACKAGE" "$HERE/build-base.sh" >/dev/null
  echo "$LOCAL"
}

IMAGE="$(choose)"
if [ -n "$ENV_FILE" ]; then
  touch "$ENV_FILE"
  grep -v "^$VAR=" "$ENV_FILE" > "$ENV_FILE.tmp" || true
  echo "$VAR=$IMAGE" >> "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
fi
log "$WHAT: $IMAGE"
echo "$IMAGE"
