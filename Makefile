# The commands people and CI type. `.ci/run` calls `make test`; the README shows both.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit services install bench clean

demo: $(STAMP)  ## Run the whole loop on this machine (SQLite, loopback, no tokens).
	$(BIN)/driftloop demo

test: $(STAMP) services lint typecheck unit  ## Everything CI checks.

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

services:  ## Install Prometheus and Chromium if missing; start PostgreSQL if it is down.
	bash scripts/ensure-services.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/python scripts/typecheck.py

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
