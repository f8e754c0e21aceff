# flowspark developer commands. `make help` lists them.
# The two that matter on a fresh machine (they do all the set-up themselves):
#   make demo   - the whole pipeline on generated sample data, local Spark, local folders
#   make test   - the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
VENV35 ?= .venv-35
STAMP35 := $(VENV35)/.installed
DEMO   ?= demo
RECORDS ?= 200000

.DEFAULT_GOAL := help
.PHONY: help setup setup-spark35 demo test test-all test-slow test-fast test-isolated lint typecheck bench bench-detections package clean

help: ## list the targets
	@grep -E '^[a-z][a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n",$$1,$$2}'

# uv (from PyPI, into the venv) installs from its cache in seconds where pip takes minutes (pyspark is
# ~320 MB); pip is the fallback when uv cannot be had.
define install
	$(PYTHON) -m venv $(1)
	@if $(1)/bin/python -m pip install --quiet --disable-pip-version-check uv; then \
	  $(1)/bin/uv pip install --quiet --python $(1)/bin/python -e '.[$(2),dev]'; \
	else \
	  $(1)/bin/python -m pip install --quiet --upgrade pip && $(1)/bin/python -m pip install --quiet -e '.[$(2),dev]'; \
	fi
endef

$(STAMP): pyproject.toml
	$(call install,$(VENV),spark)
	touch $(STAMP)

setup: $(STAMP) ## create .venv, install flowspark[spark,dev], fetch and cache the JVM jars (once)
	$(VENV)/bin/flowspark setup

$(STAMP35): pyproject.toml
	$(call install,$(VENV35),spark35)
	touch $(STAMP35)

setup-spark35: $(STAMP35) ## the Spark 3.5 + Delta 3.3 line (Glue 5, EMR 7) in .venv-35, jars cached
	$(VENV35)/bin/flowspark setup

demo: setup ## generate sample flow logs and run the whole pipeline on them (local Spark)
	$(PY) scripts/demo.py --out $(DEMO) --records $(RECORDS)

test: setup setup-spark35 lint ## CI: lint, the suite but its slow tests plus this commit's slice of them (1 of ~17, in turn) on Spark 4.0 + Delta 4.0 and tests/lane35.txt on Spark 3.5 + Delta 3.3, at once
	scripts/test_lanes.sh

test-all: setup setup-spark35 lint ## every test on both Spark lines (the slow ones too: crashes, concurrency, the cluster, real-size objects; long)
	FULL=1 scripts/test_lanes.sh

test-slow: setup ## every slow test on Spark 4 (~57 min on 2 cores; run it before a change to ingest, the lake or the reports lands)
	$(PY) -m pytest -q -p no:cacheprovider -m slow --durations=0

test-fast: setup ## the suite without the slow tests (real-size objects, crashes, S3, generated data), Spark 4 only
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

test-isolated: setup ## each test file alone in a process of its own (Spark 4; the suite's order is random on every run)
	@for f in tests/test_*.py; do echo "== $$f"; $(PY) -m pytest -q -p no:cacheprovider $$f || exit 1; done

lint: setup ## ruff, and the import contract of the layers (cli -> pipelines -> edges -> core)
	$(VENV)/bin/ruff check flowspark jobs scripts tests dags
	cd $(CURDIR) && $(VENV)/bin/lint-imports

typecheck: setup ## mypy on the library
	$(VENV)/bin/mypy

bench: setup ## ingest+dedup benchmark against pandas, DuckDB and plain PySpark (long)
	$(PY) scripts/bench_dedup.py

bench-detections: setup ## precision and recall of every detection on generated days with planted patterns and look-alikes, 3 seeds (~8 min)
	$(PY) scripts/bench_detections.py

package: setup ## dist/: the wheel, a zip for --py-files, a venv-pack archive for --archives (see docs/operations.md)
	scripts/package.sh $(PY)

clean: ## remove demo output and caches (keeps .venv and the jar cache)
	rm -rf $(DEMO) bench-out .pytest_cache .mypy_cache .ruff_cache spark-warehouse
