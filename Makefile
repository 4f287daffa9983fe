# The commands people and CI type. `.ci/run` calls `make test`; the README shows both.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit services mlflow install bench clean

demo: $(STAMP)  ## Run the whole loop on this machine (SQLite, loopback, no tokens).
	$(BIN)/driftloop demo

test: $(STAMP) services mlflow lint typecheck unit  ## Everything CI checks.

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# Every extra: the demo needs bento + demo, the tests exercise reports and dashboards too.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,reports,bento,demo,dashboards,estimation]"
	touch $(STAMP)

services:  ## Install Prometheus and Chromium if missing; start PostgreSQL if it is down.
	bash scripts/ensure-services.sh

mlflow:  ## MLflow server and client for the MLflow integration tests (.venv-mlflow).
	bash scripts/ensure-mlflow.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/lint_imports.py

typecheck: $(STAMP)
	$(BIN)/python scripts/typecheck.py

# Two workers, a test file each at a time (module fixtures such as a real Bento or Prometheus
# are started once per file): the suite spends much of its time waiting on the processes it
# starts, so two workers on two cores cut it by a third (one process: 12.1 min; two: 8.3 min,
# measured in turn on one machine). WORKERS=0 runs in one process.
WORKERS ?= 2

unit: $(STAMP)  ## The tests, with the coverage gate ([tool.coverage.report] fail_under).
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --cov --cov-report=term-missing:skip-covered

bench: $(STAMP)
	for script in bench/[!_]*.py; do $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .venv-mlflow .venv-bench .pytest_cache .mypy_cache .ruff_cache .hypothesis
