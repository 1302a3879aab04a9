#!/usr/bin/env bash
# Build a small local Debian image with Python 3 (python3 + python3-venv) using
# mmdebstrap piped into `docker import`.  Needed because this machine has no
# container registry: `docker pull` fails and the engine starts with no images.
#
# Usage: docker/build-base.sh [--force]
#   mmdebstrap, when missing, is installed by host-deps.sh (or it prints the command).
#   stdout: the image reference (only that line), so callers can capture it.
#   stderr: progress, timing and size.
#
# Environment overrides:
#   BASE_TAG        image tag              (default: peerchat-base:<suite>-python3)
#   DEBIAN_SUITE    Debian suite           (default: bookworm = host's suite; python3 is 3.11 there)
#   DEBIAN_MIRROR   main archive URI       (default: taken from the host's apt config)
#   DEBIAN_SECURITY_MIRROR security URI    (default: taken from the host's apt config)
#   EXTRA_PACKAGES  comma-separated extra packages (e.g. ca-certificates)
#
# Idempotent: if the tag already exists it is printed and nothing is built
# (use --force to rebuild).
set -euo pipefail

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --install-deps) ;;  # the default now; kept so older callers still work
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "build-base.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-base: $*" >&2; }

host_suite() {
  # Codename of the host, e.g. bookworm.
  . /etc/os-release 2>/dev/null && [ -n "${VERSION_CODENAME:-}" ] && echo "$VERSION_CODENAME" && return
  echo bookworm
}

SUITE="${DEBIAN_SUITE:-$(host_suite)}"
TAG="${BASE_TAG:-peerchat-base:${SUITE}-python3}"

if ! command -v docker >/dev/null 2>&1; then
  log "ERROR: docker CLI not found"; exit 1
fi

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  log "image $TAG already exists; skipping build (use --force to rebuild)"
  echo "$TAG"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  # Installs it (saying why), or prints the command to run and stops.
  "$(dirname "$0")/host-deps.sh" mmdebstrap >&2 || exit 1
fi

# --- Mirrors: reuse what the host's apt uses (the only reachable mirror here). ---
host_uri() {
  # $1 = regex the suite must match; prints the first repo URI of the host apt config.
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
    | awk -v re="$1" '$2 ~ re {print $1; exit}'
}
MIRROR="${DEBIAN_MIRROR:-$(host_uri "^${SUITE}\$")}"
MIRROR="${MIRROR:-http://deb.debian.org/debian/}"
SEC_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(host_uri "^${SUITE}-security\$")}"
SEC_MIRROR="${SEC_MIRROR:-http://deb.debian.org/debian-security/}"
MIRROR="${MIRROR%/}"; SEC_MIRROR="${SEC_MIRROR%/}"

MMARGS=(
  --mode=root
  --variant=apt
  --format=tar
  # Merge /usr the debootstrap way (installs the tiny usr-is-merged package)
  # instead of pulling in the usrmerge package, which drags in full perl (~55 MB).
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --include="python3,python3-venv${EXTRA_PACKAGES:+,$EXTRA_PACKAGES}"
  # Slim: no man pages, docs (keep copyright), translations.
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --aptopt='Acquire::Languages "none"'
  --aptopt='APT::Install-Recommends "false"'
  # Same apt cache hygiene as the official Debian docker images.
  --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" > "$1/etc/apt/apt.conf.d/docker-clean"'
  --customize-hook='rm -rf "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/cache/debconf/*-old "$1"/var/cache/ldconfig/aux-cache "$1"/var/cache/apt/*.bin'
)

# The host's mirror may serve a frozen snapshot whose Release files are past
# Valid-Until; copy the host's relaxations so apt works inside mmdebstrap (and
# later inside containers built from this image).
if apt-config dump 2>/dev/null | grep -qi '^Acquire::Check-Valid-Until "false"'; then
  MMARGS+=(--aptopt='Acquire::Check-Valid-Until "false"')
fi
if apt-config dump 2>/dev/null | grep -qi '^Acquire::Check-Date "false"'; then
  MMARGS+=(--aptopt='Acquire::Check-Date "false"')
fi
# Apt proxy configured on the host (http_proxy/https_proxy env are inherited anyway).
HOST_PROXY="$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n1)"
if [ -n "$HOST_PROXY" ]; then
  MMARGS+=(--aptopt="Acquire::http::Proxy \"$HOST_PROXY\"")
fi

SOURCES=(
  "deb $MIRROR $SUITE main"
  "deb $MIRROR $SUITE-updates main"
  "deb $SEC_MIRROR $SUITE-security main"
)

OLD_ID="$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)"
log "building $TAG: suite=$SUITE mirror=$MIRROR security=$SEC_MIRROR"
START=$(date +%s)
# pipefail makes a failure of mmdebstrap fail the pipeline too.
mmdebstrap --quiet "${MMARGS[@]}" "$SUITE" - "${SOURCES[@]}" \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      --change "LABEL org.opencontainers.image.description=\"Debian $SUITE + python3 + python3-venv (mmdebstrap)\"" \
      --message "mmdebstrap $SUITE python3 python3-venv" \
      - "$TAG" >/dev/null
END=$(date +%s)
NEW_ID="$(docker image inspect -f '{{.Id}}' "$TAG")"
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
  # --force rebuild: drop the now-untagged previous image (ignore if still in use).
  docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi

SIZE="$(docker image inspect -f '{{.Size}}' "$TAG")"
log "built $TAG in $((END - START))s, size $((SIZE / 1000 / 1000)) MB ($SIZE bytes)"
log "python: $(docker run --rm --network none "$TAG" python3 --version 2>&1)"
echo "$TAG"
