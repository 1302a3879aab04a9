#!/usr/bin/env bash
# Smoke test for the Docker tooling:
#   - base image from ../ensure-base.sh
#   - docker/smoke/Dockerfile built with the classic builder (DOCKER_BUILDKIT=0)
#   - the same with BuildKit, if the buildx plugin is present
#   - the same through `docker compose` (v2), if present
# The wheels are built on the host (`pip wheel click`) and installed offline in
# the image.  All smoke images/containers are removed at the end; the base stays.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE_IMAGE="$("$HERE/../ensure-base.sh")"
TAG=peerchat-smoke
CTX="$(mktemp -d)"
PROJECT="peerchat-smoke-$$"
fails=0; passes=0

cleanup() {
  if docker compose version >/dev/null 2>&1 && [ -f "$CTX/compose.yaml" ]; then
    docker compose -p "$PROJECT" --project-directory "$CTX" down --rmi all -t 1 >/dev/null 2>&1 || true
  fi
  docker rmi -f "$TAG:classic" "$TAG:buildkit" "$TAG:compose" >/dev/null 2>&1 || true
  rm -rf "$CTX"
}
trap cleanup EXIT

echo "base image: $BASE_IMAGE"
cp "$HERE/Dockerfile" "$CTX/"
python3 -m pip wheel --quiet --disable-pip-version-check click -w "$CTX/wheels"
ls "$CTX/wheels"

check() {  # name image
  local out
  if out="$(docker run --rm --network none "$2" 2>&1)" && [[ "$out" == "smoke ok: click"* ]]; then
    echo "PASS $1: $out"; passes=$((passes + 1))
  else
    echo "FAIL $1: $out"; fails=$((fails + 1))
  fi
}

t0=$(date +%s)
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$TAG:classic" "$CTX" 2>/dev/null
echo "classic build: $(( $(date +%s) - t0 ))s"
check classic "$TAG:classic"

if docker buildx version >/dev/null 2>&1; then
  t0=$(date +%s)
  DOCKER_BUILDKIT=1 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$TAG:buildkit" "$CTX"
  echo "buildkit build: $(( $(date +%s) - t0 ))s"
  check buildkit "$TAG:buildkit"
else
  echo "SKIP buildkit: no buildx plugin (docker/install-compose-v2.sh --with-buildx adds one)"
fi

if docker compose version >/dev/null 2>&1; then
  cat >"$CTX/compose.yaml" <<EOF
services:
  smoke:
    build:
      context: .
      args:
        BASE_IMAGE: \${BASE_IMAGE:-python:3.12-slim}
    image: $TAG:compose
    network_mode: none
EOF
  echo "BASE_IMAGE=$BASE_IMAGE" >"$CTX/.env"
  t0=$(date +%s)
  # With a buildx plugin present, compose >= 2.37 builds via bake and insists on
  # buildx >= 0.17 (Debian's is 0.13): fall back to compose's internal builder.
  # Without buildx, compose uses its internal builder anyway.
  bake=()
  if docker buildx version >/dev/null 2>&1; then bake=(env COMPOSE_BAKE=false); fi
  "${bake[@]}" docker compose -p "$PROJECT" --project-directory "$CTX" build -q
  echo "compose build: $(( $(date +%s) - t0 ))s"
  out="$(docker compose -p "$PROJECT" --project-directory "$CTX" run --rm smoke 2>&1)" || true
  if [[ "$out" == *"smoke ok: click"* ]]; then echo "PASS compose: $out"; passes=$((passes + 1))
  else echo "FAIL compose: $out"; fails=$((fails + 1)); fi
else
  echo "SKIP compose: no 'docker compose' (run docker/install-compose-v2.sh)"
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
