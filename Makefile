# Quick start: `make demo` (offline demo on SQLite) and `make test` (the whole test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP  := $(VENV)/.installed
# An editable install is setuptools' "Editable installation" notice on every build: information, not a
# problem with the package (a packaging warning still prints).
PIP    := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip

.PHONY: install demo test lint eval bench bench-crawl clean

# The demo needs only what policywatch itself needs; the tests add pytest, aiosmtpd, datasette, selenium, ruff.
$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(RUNTIME)
	$(BIN)/policywatch demo --out demo-out

PYTEST_ARGS ?=
# The suite runs on pytest-xdist workers: every test has its own folder, loopback ports and PostgreSQL database,
# and most of a test's time is a crawl child or a server waiting, so more workers than cores pays.
# `make test WORKERS=0` runs it in this one process.
WORKERS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal $(PYTEST_ARGS)

# mypy reads the installed names (policywatch.crawler, …): the editable install's import hook is invisible to it,
# so the four folders are linked under $(TYPECHECK)/policywatch, as a wheel lays them out.
TYPECHECK := $(VENV)/typecheck
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p $(TYPECHECK)/policywatch
	for d in crawler monitor storage reports; do ln -sfn ../../../$$d $(TYPECHECK)/policywatch/$$d; done
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy

eval: $(STAMP)
	$(BIN)/python -m pytest tests/eval -q

bench: $(STAMP)
	$(BIN)/python bench/bench_detect.py
	$(BIN)/python bench/bench_pagework.py

# Whole passes beside urlwatch on both corpora (synthetic, real canada.ca captures), then BENCHMARKS.md's table
# rewritten with the commit and date: run it after any change to page work, detection or storage.
URLWATCH_VENV ?= .venv-urlwatch
BENCH_PAGES ?= 2000
$(URLWATCH_VENV)/bin/urlwatch:
	$(PYTHON) -m venv $(URLWATCH_VENV)
	$(URLWATCH_VENV)/bin/python -m pip install --quiet urlwatch html2text lxml cssselect

bench-crawl: $(STAMP) $(URLWATCH_VENV)/bin/urlwatch
	$(BIN)/python bench/bench_crawl.py --pages $(BENCH_PAGES) --no-bare --urlwatch $(URLWATCH_VENV)/bin/urlwatch
	$(BIN)/python bench/bench_crawl.py --pages $(BENCH_PAGES) --no-bare --corpus real \
		--urlwatch $(URLWATCH_VENV)/bin/urlwatch
	$(BIN)/python bench/bench_table.py --pages $(BENCH_PAGES)

clean:
	rm -rf $(VENV) demo-out .pytest_cache
