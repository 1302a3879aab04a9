#!/usr/bin/env bash
# Install what `make bench` needs on a fresh Debian/Ubuntu machine:
#   redis-server and nats-server from the distribution (apt-get), and matplotlib
#   into the project's virtualenv (.venv, made by `make dev`).
# The Debian redis-server package may start a system Redis on port 6379 where an
# init system runs; the benchmark does not use it (it starts its own on a free
# loopback port with no persistence).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ERROR: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

PY=.venv/bin/python
[ -x "$PY" ] || { echo "ERROR: $PY missing: run 'make dev' first" >&2; exit 1; }
"$PY" -c 'import matplotlib' 2>/dev/null || "$PY" -m pip install --quiet 'matplotlib>=3.7'

echo "redis: $(redis-server --version | cut -d' ' -f3)"
echo "nats:  $( (command -v nats-server >/dev/null && nats-server --version) || /usr/sbin/nats-server --version)"
echo "matplotlib: $("$PY" -c 'import matplotlib; print(matplotlib.__version__)')"
