# Every set-up step lives here: a fresh machine needs only `make run` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime the template declares (python3.12); we use the same locally. python.mk finds
# it (PATH, then uv and pyenv, then the usual places), the same way the layer's and the functions'
# Makefiles do under `sam build`.
include python.mk
PYTHON := $(FOUND_PYTHON)
VENV := .venv
SAM_VENV := .venv-sam
SECURITY_VENV := .venv-security
BIN := $(VENV)/bin
DYNAMODB_LOCAL_VERSION := 2.9.30
DYNAMODB_LOCAL := .tools/dynamodb/DynamoDBLocal.jar
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE := 1
# Except for pytest: it keeps the test modules it rewrote (assertion rewriting) in __pycache__,
# and without them compiles every one again on each run, a good share of a unit run's time.
# __pycache__ is ignored by git, and no build takes .pyc files from the tree (`sam build`
# copies only sources and compiles them itself).
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/pytest

JAVA_HINT := install Java 17 or newer (brew install openjdk@17, or apt-get install openjdk-17-jre-headless)
NPM_HINT := install Node.js with npm (brew install node, or apt-get install npm)
PIP_INSTALL = python -m pip install --disable-pip-version-check --progress-bar on

.PHONY: help prerequisites setup run status deploy test lint typecheck unit integration e2e sam-validate sam-build \
	sam-checks security bench chaos clean

help:
	@echo "make run    - run the whole app locally (sandbox Close/ChartMogul unless API keys are set)"
	@echo "             make run FRESH=1 starts clean (forgets the links and checkpoints a restart keeps)"
	@echo "make status - what the running local stack has mirrored (links, parked tasks, queues)"
	@echo "make deploy - build and deploy to AWS (guided the first time, then with the saved answers)"
	@echo "make test   - install everything and run the full suite (lint, types, tests, SAM checks)"
	@echo "make bench  - performance benchmarks (writes docs/performance.md)"
	@echo "make chaos  - the large chaos, hostile-input and load runs"
	@echo "make security - cfn-lint, checkov, bandit and pip-audit"

# What each goal needs from the machine, checked before anything is installed, all at once, with
# one install hint each. A prerequisite inherits the target-specific NEEDS of the goal that asks.
NEEDS := python
setup run test integration e2e bench chaos: NEEDS := python java npm
prerequisites:
	@missing=0; \
	if [ -z "$(PYTHON)" ]; then \
		echo "Python $(PYTHON_VERSION) not found: $(PYTHON_HINT)" >&2; missing=1; fi; \
	if [[ " $(NEEDS) " == *" java "* ]]; then \
		java_major="$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"; \
		if [ -z "$$java_major" ] || [ "$$java_major" -lt 17 ]; then \
			echo "Java 17 not found (DynamoDB Local runs on it): $(JAVA_HINT)" >&2; missing=1; fi; \
	fi; \
	if [[ " $(NEEDS) " == *" npm "* ]] && [ ! -f $(DYNAMODB_LOCAL) ] && ! command -v npm >/dev/null; then \
		echo "npm not found (DynamoDB Local is downloaded as an npm package): $(NPM_HINT)" >&2; missing=1; fi; \
	exit $$missing

$(VENV)/.installed: requirements-dev.txt layers/tasksync/requirements.txt pyproject.toml | prerequisites
	@echo "==> $(VENV): Python $(PYTHON_VERSION) virtualenv with the app and its dev tools ($(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_INSTALL) --quiet --upgrade pip
	$(BIN)/$(PIP_INSTALL) -r requirements-dev.txt
	$(BIN)/$(PIP_INSTALL) --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt | prerequisites
	@echo "==> $(SAM_VENV): the AWS SAM CLI"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/$(PIP_INSTALL) --quiet --upgrade pip
	$(SAM_VENV)/bin/$(PIP_INSTALL) -r requirements-sam.txt
	touch $@

$(SECURITY_VENV)/.installed: requirements-security.txt | prerequisites
	@echo "==> $(SECURITY_VENV): the security scanners"
	$(PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_VENV)/bin/$(PIP_INSTALL) --quiet --upgrade pip
	$(SECURITY_VENV)/bin/$(PIP_INSTALL) -r requirements-security.txt
	touch $@

# DynamoDB Local ships inside the npm package amplify-dynamodb-simulator; it runs on Java 17.
$(DYNAMODB_LOCAL): | prerequisites
	@echo "==> .tools/dynamodb: DynamoDB Local $(DYNAMODB_LOCAL_VERSION) (npm package amplify-dynamodb-simulator)"
	mkdir -p .tools/dynamodb .tools/npm
	cd .tools/npm && npm pack amplify-dynamodb-simulator@$(DYNAMODB_LOCAL_VERSION)
	tar -xzf .tools/npm/amplify-dynamodb-simulator-$(DYNAMODB_LOCAL_VERSION).tgz -C .tools/npm
	cp -r .tools/npm/package/emulator/. .tools/dynamodb/
	rm -rf .tools/npm
	test -f $@

setup: prerequisites $(VENV)/.installed $(SAM_VENV)/.installed $(SECURITY_VENV)/.installed $(DYNAMODB_LOCAL)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy
	@# Each handler is a module named `app`, so they are checked one at a time.
	for handler in functions/*/app.py; do $(BIN)/mypy --strict "$$handler" || exit 1; done

unit: $(VENV)/.installed
	$(PYTEST) -q tests/unit

integration: $(VENV)/.installed $(DYNAMODB_LOCAL)
	$(PYTEST) -q tests/integration

e2e: $(VENV)/.installed $(DYNAMODB_LOCAL)
	$(PYTEST) -q tests/e2e

sam-validate: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml

# PYTHON and PATH hand the Python found here to the layer's and the functions' Makefiles.
sam-build: $(SAM_VENV)/.installed
	PYTHON="$(PYTHON)" PATH="$(dir $(PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build --parallel
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m tests.support.check_build .aws-sam/build; fi

# The first deploy is guided (`sam deploy --guided`) and saves the answers in samconfig.toml; once a
# region is saved there, a deploy reuses them (`sam deploy`). README "Deploy" says what to answer.
deploy: sam-build
	@if $(PYTHON) -c 'import sys, tomllib; \
		config = tomllib.load(open("samconfig.toml", "rb")); \
		sys.exit(0 if config.get("default", {}).get("deploy", {}).get("parameters", {}).get("region") else 1)'; \
	then \
		echo "==> sam deploy (with the answers saved in samconfig.toml)"; \
		$(SAM_VENV)/bin/sam deploy; \
	else \
		echo "==> sam deploy --guided: Enter keeps a default; answer y to \"... has no authentication. Is this okay?\""; \
		echo "    (the webhook endpoint is public by design: Close must reach it; the receiver checks Close's signature)"; \
		$(SAM_VENV)/bin/sam deploy --guided; \
	fi

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
	TASKSYNC_IAM_COVERAGE=required $(PYTEST) -q -p no:cacheprovider tests
	$(MAKE) sam-build

# FRESH=1: forget what the last run of this mode kept in .local/ (links, checkpoints, sandbox).
# `make run SYNC_COMPLETION_BACK=true` writes ChartMogul completions back to the sandbox Close.
run: export SYNC_COMPLETION_BACK ?= false
run: prerequisites $(VENV)/.installed $(DYNAMODB_LOCAL)
	$(BIN)/python -m tasksync_dev.local $(if $(FRESH),--fresh)

status: $(VENV)/.installed
	$(BIN)/tasksync --local status

bench: setup
	$(BIN)/python -m tests.bench

chaos: setup
	TASKSYNC_CHAOS=full $(PYTEST) -q -p no:cacheprovider tests/unit/test_receiver_hostile.py tests/e2e/test_chaos.py tests/e2e/test_load.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(SECURITY_VENV) .tools .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis
