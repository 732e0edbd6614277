# Slipway: every target installs what it needs first (a Python venv and the pinned CDK CLI).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
STAGE ?= dev
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install run test test-unit e2e bench zoo load lint pin synth deploy destroy smoke clean
.DEFAULT_GOAL := help

help:  ## List the targets (this).
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock model/requirements.txt package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip==25.3
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	# The recipe's own libraries, held to the lock's versions where both name one.
	$(VENV)/bin/pip install --quiet -r model/requirements.txt --constraint requirements.lock
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP)  ## Create .venv (pinned Python packages) and node_modules (the pinned CDK CLI).

run: install  ## Serve the example model on http://127.0.0.1:8080 against the embedded local stack.
	$(VENV)/bin/slipway up

test: lint  ## Lint, then every offline test: unit, handler, local stack, CDK assertions, synth, cfn-lint, cdk-nag, emulator tier.
	$(PY) -m pytest

test-unit: install  ## The fast AWS-free tests alone (also: pytest -m handler|local|infra|emulator).
	$(PY) -m pytest -m unit

e2e: install  ## The emulator tier alone: cdk deploy of dev onto MiniStack on 127.0.0.1, checked end to end, destroyed.
	$(PY) -m pytest tests/e2e

BENCH_ARGS ?=
bench: install  ## Speed, memory and size figures against a naive baseline, measured in one run (BENCH_ARGS=--readme rewrites docs/performance.md and the README's headline).
	$(PY) -m benchmarks $(BENCH_ARGS)

zoo: install  ## Train every model-zoo configuration and rewrite docs/models.md's table of supported estimators.
	$(PY) -m tests.functions.training.test_zoo

LOAD_USERS ?= 32
LOAD_SECONDS ?= 60
load: install  ## Locust against the local stack on loopback: LOAD_USERS keep-alive clients for LOAD_SECONDS s; fails on any server error or wrong answer.
	$(PY) -m benchmarks.load --users $(LOAD_USERS) --seconds $(LOAD_SECONDS)

lint: install  ## ruff (lint and format) and mypy over the project.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

pin: install  ## Hash every requirement the Lambda packages install (after editing model/requirements.txt or a version).
	$(PY) -m infra.pinning

synth: install  ## Templates of $(STAGE) in cdk.out/, Lambda packages built, cdk-nag checked.
	$(CDK) synth --quiet -c stage=$(STAGE)

deploy: install  ## cdk deploy of $(STAGE), asking before any broadening of rights.
	$(CDK) deploy -c stage=$(STAGE) --require-approval broadening

destroy: install  ## cdk destroy of $(STAGE) (prod keeps its data: storage.retain_data).
	$(CDK) destroy -c stage=$(STAGE) --force

smoke: install  ## Call the deployed endpoint of $(STAGE) end to end (its API key or SigV4, as the stage says).
	$(VENV)/bin/slipway smoke --stage $(STAGE)

clean:  ## Remove .venv, node_modules, cdk.out and local state.
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .slipway
