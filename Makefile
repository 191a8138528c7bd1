# ordersaga: `make run` starts everything on the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# .venv is installed from uv.lock by uv, itself installed from PyPI at this exact version
# into a venv of its own (uv sync removes from .venv whatever the lock does not list).
UV_VERSION := 0.13.9
UV_VENV    ?= .uv
UV_STAMP   := $(UV_VENV)/.installed-$(UV_VERSION)
UV         := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON=$(PYTHON) UV_PYTHON_DOWNLOADS=never $(UV_VENV)/bin/uv

# promtool (tests/unit/test_alerts.py checks deploy/alerts.yml with it): Debian's
# prometheus package, unpacked into .tools (no root needed once apt knows the package).
TOOLS    ?= .tools
PROMTOOL := $(TOOLS)/prometheus/usr/bin/promtool
# The operators' page is tested in Debian's chromium through its chromedriver (root
# installs them with apt when they are missing).
BROWSER  := $(TOOLS)/.browser
# The npm checks (deploy/checks, pinned by its package-lock.json): deploy/k8s against the
# schemas of its kinds (kubernetes-models), docs/asyncapi.json with the AsyncAPI parser.
# The overlay is rendered by kustomize, built once from the Go module proxy into the
# user's cache (as the Kafka jars are).
NPM_CHECKS := deploy/checks/node_modules/.installed
KUSTOMIZE_VERSION := v5.7.1
KUSTOMIZE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ordersaga/kustomize-$(KUSTOMIZE_VERSION)/kustomize

.DEFAULT_GOAL := help

.PHONY: help install lock run run-secure test test-fast test-slow chaos chaos-brokers chaos-kafka test-unit test-agents test-web test-integration demo lint typecheck check clean bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(UV_STAMP):
	rm -rf $(UV_VENV)
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $(UV_STAMP)

# Exactly what uv.lock lists (ordersaga itself editable, with the dev and embedded extras);
# a uv.lock that no longer matches pyproject.toml is an error, not silently re-resolved.
# Compiled to bytecode at install: where PYTHONDONTWRITEBYTECODE is set (CI, containers)
# Python never caches it, and every worker, restart and CLI call compiled Faust, aiokafka
# and pydantic again: 3.0 s to import a worker's modules instead of 1.5 s.
$(STAMP): pyproject.toml uv.lock $(UV_STAMP)
	@$(UV) lock --check --quiet || { echo "uv.lock is out of date with pyproject.toml: run 'make lock' and commit uv.lock" >&2; exit 1; }
	$(UV) sync --locked --compile-bytecode --extra dev --extra embedded
	$(BIN)/python -m compileall -q ordersaga
	touch $(STAMP)

$(PROMTOOL):
	mkdir -p $(TOOLS)/download
	cd $(TOOLS)/download && { apt-get download prometheus || { apt-get update && apt-get download prometheus; }; }
	dpkg -x $(TOOLS)/download/prometheus_*.deb $(TOOLS)/prometheus
	rm -rf $(TOOLS)/download
	$(PROMTOOL) --version

$(NPM_CHECKS): deploy/checks/package-lock.json
	cd deploy/checks && npm ci --no-audit --no-fund --silent
	touch $(NPM_CHECKS)

$(KUSTOMIZE):
	GOBIN=$(dir $(KUSTOMIZE)) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	$(KUSTOMIZE) version

$(BROWSER):
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; }
	mkdir -p $(TOOLS) && touch $(BROWSER)

install: $(STAMP) ## create .venv and install ordersaga with its dev tools, exactly as uv.lock pins them

lock: $(UV_STAMP) ## regenerate uv.lock after editing pyproject.toml (LOCK_ARGS=--upgrade: newest allowed versions)
	$(UV) lock $(LOCK_ARGS)

run: $(STAMP) ## start broker (ORDERSAGA_BROKER=auto|kafka|tansu), Redis, every group and the web view
	$(BIN)/ordersaga run

run-secure: $(STAMP) ## the same on Apache Kafka with SASL_SSL, a user per group and ACLs (docs/security.md)
	$(BIN)/ordersaga run --secure

# `make test` = test-fast then test-slow: each test runs once (tests/conftest.py marks the
# fast ones, test-slow takes every other), and a unit failure shows before the slow tiers start.
test: ## every test: the fast lane, then promtool's, the whole system and the chaos test, on both brokers
	$(MAKE) --no-print-directory test-fast
	$(MAKE) --no-print-directory test-slow

test-fast: $(STAMP) ## unit, agent and web tests: no broker, no apt, no root (about a minute)
	$(BIN)/pytest -m fast tests/unit tests/agents tests/web

test-slow: $(STAMP) $(PROMTOOL) $(NPM_CHECKS) $(KUSTOMIZE) $(BROWSER) ## what test-fast leaves: promtool's and the manifests' checks, the whole system, the chaos test
	$(BIN)/pytest -m "not fast and not chaos and not chaos_brokers"
	$(BIN)/pytest -m chaos -s

chaos: $(STAMP) ## the chaos test alone (CHAOS_ORDERS=N sets its size, default 1600)
	$(BIN)/pytest -m chaos -s

test-unit: $(STAMP) $(PROMTOOL) $(NPM_CHECKS) $(KUSTOMIZE) ## tests/unit: the pure rules, the docs, promtool's and the manifests' checks; no broker
	$(BIN)/pytest tests/unit

test-agents: $(STAMP) ## agents through agent.test_context(), no broker
	$(BIN)/pytest tests/agents

test-web: $(STAMP) ## the web view's decisions and HTTP routes, no broker
	$(BIN)/pytest tests/web

test-integration: $(STAMP) $(BROWSER) ## the whole system over HTTP, on both brokers
	$(BIN)/pytest tests/integration

demo: $(STAMP) ## run the seven scenarios against a running system (make run first)
	$(BIN)/ordersaga demo

bench: $(STAMP) ## run the benchmark and print its figures
	$(BIN)/ordersaga bench --via kafka --orders 3000 --warmup 300 --retention 20 --audit --overload 30 --kills 30 $(BENCH_ARGS)

lint: $(STAMP) ## ruff check and ruff format --check on every Python file (ordersaga, tests, docs)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy ordersaga

check: lint typecheck test ## lint, types and every test, fast lane first (what .ci/run runs)

chaos-brokers: $(STAMP) ## chaos on a three-node Kafka cluster, brokers SIGKILLed too
	$(BIN)/pytest -m chaos_brokers -s

chaos-kafka: $(STAMP) ## the chaos test on Apache Kafka alone
	$(BIN)/pytest -m chaos -s -k kafka

clean: ## remove the virtual environments (.venv, .uv), .tools and local state (the broker's and Redis' data too)
	rm -rf $(VENV) $(UV_VENV) $(TOOLS) deploy/checks/node_modules .ordersaga .pytest_cache .mypy_cache .ruff_cache
