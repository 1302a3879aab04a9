#!/usr/bin/env bash
# Decide which base image peerchat's Dockerfiles should use and make sure it exists.
#
#   1. $PREFERRED_BASE (default python:3.12-slim) if it is already present locally;
#   2. else try `docker pull $PREFERRED_BASE` with a short timeout
#      (fails instantly on machines without a registry);
#   3. else build the local mmdebstrap base via build-base.sh (idempotent).
#
# stdout: exactly one line, the chosen image reference.  Everything else -> stderr.
#
# Usage:
#   docker/ensure-base.sh                       # print the image
#   docker/ensure-base.sh --env-file .env       # also write/replace BASE_IMAGE=... in .env
#   BASE_IMAGE=$(docker/ensure-base.sh)         # in a Makefile: $(shell docker/ensure-base.sh)
#
# Environment:
#   PREFERRED_BASE   image to prefer          (default python:3.12-slim)
#   PULL_TIMEOUT     seconds for docker pull  (default 30)
#   NO_PULL=1        never try to pull
#   FORCE_LOCAL=1    skip the preferred image and use the local build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFERRED="${PREFERRED_BASE:-python:3.12-slim}"
PULL_TIMEOUT="${PULL_TIMEOUT:-30}"
ENV_FILE=""

while [ $# -gt 0 ]; do
  case "$1" in
    --env-file) ENV_FILE="${2:?--env-file needs a path}"; shift 2 ;;
    --env-file=*) ENV_FILE="${1#*=}"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "ensure-base.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { echo "ensure-base: $*" >&2; }

recorded() {
  # The base an earlier run chose and wrote to the env file, if that image still exists.
  [ -n "$ENV_FILE" ] && [ -f "$ENV_FILE" ] || return 1
  local image
  image="$(sed -n 's/^BASE_IMAGE=//p' "$ENV_FILE" | tail -n 1)"
  [ -n "$image" ] && docker image inspect "$image" >/dev/null 2>&1 || return 1
  echo "$image"
}

choose() {
  if [ "${FORCE_LOCAL:-0}" != 1 ] && recorded; then
    log "using $(recorded) (recorded in $ENV_FILE)"
    return
  fi
  if [ "${FORCE_LOCAL:-0}" != 1 ]; then
    if docker image inspect "$PREFERRED" >/dev/null 2>&1; then
      log "using $PREFERRED (present locally)"
      echo "$PREFERRED"; return
    fi
    if [ "${NO_PULL:-0}" != 1 ]; then
      log "trying: docker pull $PREFERRED (timeout ${PULL_TIMEOUT}s)"
      if timeout --kill-after=5 "$PULL_TIMEOUT" docker pull --quiet "$PREFERRED" >/dev/null 2>/tmp/ensure-base-pull.$$; then
        rm -f /tmp/ensure-base-pull.$$
        log "pulled $PREFERRED"
        echo "$PREFERRED"; return
      fi
      log "pull failed: $(tr '\n' ' ' </tmp/ensure-base-pull.$$ | cut -c1-200)"
      rm -f /tmp/ensure-base-pull.$$
    fi
  fi
  log "falling back to the local mmdebstrap base"
  "$HERE/build-base.sh" | tail -n 1
}

IMAGE="$(choose)"
if [ -z "$IMAGE" ] || ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "ERROR: no usable base image"; exit 1
fi

if [ -n "$ENV_FILE" ]; then
  touch "$ENV_FILE"
  tmp="$(mktemp)"
  grep -v '^BASE_IMAGE=' "$ENV_FILE" >"$tmp" || true
  echo "BASE_IMAGE=$IMAGE" >>"$tmp"
  cat "$tmp" >"$ENV_FILE"; rm -f "$tmp"
  log "wrote BASE_IMAGE=$IMAGE to $ENV_FILE"
fi

echo "$IMAGE"
