# flowspark developer commands. `make help` lists them.
# The two that matter on a fresh machine (they do all the set-up themselves):
#   make demo   - the whole pipeline on generated sample data, local Spark, local folders
#   make test   - the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo
RECORDS ?= 200000

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast lint typecheck bench clean

help: ## list the targets
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n",$$1,$$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv, install flowspark[dev], fetch and cache the JVM jars (once)
	$(VENV)/bin/flowspark setup

demo: setup ## generate sample flow logs and run the whole pipeline on them (local Spark)
	$(PY) scripts/demo.py --out $(DEMO) --records $(RECORDS)

test: setup ## run the test suite (pytest; needs ../shared/samples for the sample-data tests)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: setup ## the suite without the slow end-to-end tests
	$(PY) -m pytest -q -m "not slow"

lint: setup ## ruff
	$(VENV)/bin/ruff check flowspark jobs scripts tests

typecheck: setup ## mypy on the library
	$(VENV)/bin/mypy

bench: setup ## ingest+dedup benchmark against pandas, DuckDB and plain PySpark (long)
	$(PY) scripts/bench_dedup.py

clean: ## remove demo output and caches (keeps .venv and the jar cache)
	rm -rf $(DEMO) bench-out .pytest_cache .mypy_cache .ruff_cache spark-warehouse
