# tickwatch: `make run` starts the embedded pipeline; `make test` installs what the tests need,
# starts it, and runs the whole suite. Downloads are cached under .cache/ (ignored by git).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
# Exact versions of every dependency, generated from pyproject.toml by `make lock` (never by hand)
LOCK := requirements.lock
export PIP_CACHE_DIR := $(CACHE)/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Not quiet on purpose: pip names each package it collects, draws a bar per download and says
# what it installs, so a first `make run` shows progress instead of minutes of silence.
PIP_INSTALL := $(BIN)/pip install --progress-bar on -c $(LOCK)

.PHONY: install install-dev lock system-deps run test lint format bench clean airflow audit fuzz

# The core install: what the embedded pipeline imports (no Kafka, Spark, Grafana SDK or dev tools).
# --no-compile: Python writes bytecode for the modules it imports on first use instead of pip
# compiling every file up front (pandas' own tests alone are 30 MB of it); a smaller venv, sooner.
install: $(VENV)/.installed

# Everything the tests, linters and benchmarks use: the dev tools and every extra
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	@echo "== installing tickwatch and its runtime dependencies into $(VENV) (pins: $(LOCK))"
	$(PIP_INSTALL) --no-compile -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	@echo "== installing tickwatch with the dev tools and every extra into $(VENV) (pins: $(LOCK))"
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed

# Regenerates $(LOCK) from pyproject.toml: one resolution for every extra and platform (Python
# 3.11+), keeping the current pins where they still fit; UPGRADE=1 moves them to the newest.
# pip is left out (pip-audit's dependency on it would otherwise pin the venv's own pip).
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	  --no-emit-package pip --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) \
	  --quiet -o $(LOCK)

$(BIN)/uv: | $(BIN)/python
	$(PIP_INSTALL) uv

run: install
	$(BIN)/tickwatch run

system-deps:
	bash scripts/install-system-deps.sh

airflow:  # Apache Airflow 3 in its own venv (.venv-airflow), tickwatch installed into it
	bash scripts/airflow.sh install

# TICKWATCH_WRITE_REPORTS: the full suite rewrites docs/RELIABILITY.md from what it tried
test: install-dev system-deps
	TICKWATCH_WRITE_REPORTS=1 $(BIN)/pytest

# The replay fuzz target, long: 2,000 generated files per format (make test runs a few)
fuzz: install-dev
	TICKWATCH_FUZZ_EXAMPLES=2000 $(BIN)/pytest tests/reliability/test_input_fuzz.py

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# Regenerates docs/BENCHMARKS.md (about 5-10 minutes). The OpenBLAS overrides are dropped for
# this command only (the engine calls no BLAS, but numpy should run as it does elsewhere).
bench: install-dev
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m bench

# Known vulnerabilities in the pinned dependencies (needs the PyPI vulnerability service; it is
# not reachable from the build machines here, so CI does not run it)
audit: install-dev
	$(BIN)/pip-audit --strict -r $(LOCK)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
