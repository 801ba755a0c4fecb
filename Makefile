# Every set-up step lives here: a fresh machine needs only `make run` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime the template declares (python3.12); we use the same locally.
PYTHON_VERSION := 3.12
PYTHON := $(shell for p in "$$(pyenv root 2>/dev/null)"/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION) \
	/usr/local/bin/python$(PYTHON_VERSION) /usr/bin/python$(PYTHON_VERSION); do \
	[ -x "$$p" ] && "$$p" -c 'import sys' 2>/dev/null && echo "$$p" && break; done)
VENV := .venv
SAM_VENV := .venv-sam
SECURITY_VENV := .venv-security
BIN := $(VENV)/bin
DYNAMODB_LOCAL_VERSION := 2.9.30
DYNAMODB_LOCAL := .tools/dynamodb/DynamoDBLocal.jar
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run test lint typecheck unit integration e2e sam-validate sam-build sam-checks security bench chaos clean

help:
	@echo "make run    - run the whole app locally (sandbox Close/ChartMogul unless API keys are set)"
	@echo "make test   - install everything and run the full suite (lint, types, tests, SAM checks)"
	@echo "make bench  - performance benchmarks (writes docs/performance.md)"
	@echo "make chaos  - the large chaos, hostile-input and load runs"
	@echo "make security - cfn-lint, checkov, bandit and pip-audit"

$(VENV)/.installed: requirements-dev.txt layers/tasksync/requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found (pyenv versions $(PYTHON_VERSION).x or /usr/bin/python$(PYTHON_VERSION))" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found" >&2; exit 1; }
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

$(SECURITY_VENV)/.installed: requirements-security.txt
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found" >&2; exit 1; }
	$(PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SECURITY_VENV)/bin/python -m pip install --quiet -r requirements-security.txt
	touch $@

# DynamoDB Local ships inside the npm package amplify-dynamodb-simulator; it runs on Java 17.
$(DYNAMODB_LOCAL):
	@command -v java >/dev/null || { echo "java is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	mkdir -p .tools/dynamodb .tools/npm
	cd .tools/npm && npm pack --silent amplify-dynamodb-simulator@$(DYNAMODB_LOCAL_VERSION) >/dev/null
	tar -xzf .tools/npm/amplify-dynamodb-simulator-$(DYNAMODB_LOCAL_VERSION).tgz -C .tools/npm
	cp -r .tools/npm/package/emulator/. .tools/dynamodb/
	rm -rf .tools/npm
	test -f $@

setup: $(VENV)/.installed $(SAM_VENV)/.installed $(SECURITY_VENV)/.installed $(DYNAMODB_LOCAL)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy
	@# Each handler is a module named `app`, so they are checked one at a time.
	for handler in functions/*/app.py; do $(BIN)/mypy --strict "$$handler" || exit 1; done

unit: $(VENV)/.installed
	$(BIN)/pytest -q tests/unit

integration: $(VENV)/.installed $(DYNAMODB_LOCAL)
	$(BIN)/pytest -q tests/integration

e2e: $(VENV)/.installed $(DYNAMODB_LOCAL)
	$(BIN)/pytest -q tests/e2e

sam-validate: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml

sam-build: $(SAM_VENV)/.installed
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build --parallel
	$(BIN)/python -m tests.support.check_build .aws-sam/build

sam-checks: sam-validate sam-build

# Every scanner must be clean. Skips are justified where they are made: checkov's in
# template.yaml (Metadata: checkov: skip:), bandit's in pyproject.toml ([tool.bandit]).
# --skip-download: checkov runs with its bundled checks, without calling its vendor's API.
security: $(SECURITY_VENV)/.installed $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SECURITY_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(SECURITY_VENV)/bin/bandit --quiet --configfile pyproject.toml --recursive layers/tasksync/tasksync devtools functions
	$(SECURITY_VENV)/bin/python -m tests.support.audit_requirements \
		layers/tasksync/requirements.lock requirements-dev.txt requirements-sam.txt requirements-security.txt

test: setup lint typecheck sam-validate security
	@# The IAM coverage check (tests/iam) must compare a complete recording here, never skip.
	TASKSYNC_IAM_COVERAGE=required $(BIN)/pytest -q -p no:cacheprovider tests
	$(MAKE) sam-build

# `make run SYNC_COMPLETION_BACK=true` writes ChartMogul completions back to the sandbox Close.
run: export SYNC_COMPLETION_BACK ?= false
run: $(VENV)/.installed $(DYNAMODB_LOCAL)
	$(BIN)/python -m tasksync_dev.local

bench: setup
	$(BIN)/python -m tests.bench

chaos: setup
	TASKSYNC_CHAOS=full $(BIN)/pytest -q -p no:cacheprovider tests/unit/test_receiver_hostile.py tests/e2e/test_chaos.py tests/e2e/test_load.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(SECURITY_VENV) .tools .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis
