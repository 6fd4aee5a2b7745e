# tickwatch: `make run` starts the embedded pipeline; `make test` installs what the tests need,
# starts it, and runs the whole suite. Downloads are cached under .cache/ (ignored by git).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
export PIP_CACHE_DIR := $(CACHE)/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install system-deps run test lint format bench clean airflow audit

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

run: install
	$(BIN)/tickwatch run

system-deps:
	bash scripts/install-system-deps.sh

airflow:  # Apache Airflow 3 in its own venv (.venv-airflow), tickwatch installed into it
	bash scripts/airflow.sh install

# TICKWATCH_WRITE_REPORTS: the full suite rewrites docs/RELIABILITY.md from what it tried
test: install system-deps
	TICKWATCH_WRITE_REPORTS=1 $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# Regenerates docs/BENCHMARKS.md (about 5-10 minutes). The OpenBLAS overrides are dropped for
# this command only (the engine calls no BLAS, but numpy should run as it does elsewhere).
bench: install
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m bench

# Known vulnerabilities in the pinned dependencies (needs the PyPI vulnerability service; it is
# not reachable from the build machines here, so CI does not run it)
audit: install
	$(BIN)/pip-audit --strict -r constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
