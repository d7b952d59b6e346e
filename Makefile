# Quick start: `make demo` (offline demo on SQLite) and `make test` (the whole test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint eval bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/policywatch demo --out demo-out

PYTEST_ARGS ?=
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: $(STAMP)
	$(BIN)/python -m pytest tests/eval -q

bench: $(STAMP)
	$(BIN)/python bench/bench_detect.py
	$(BIN)/python bench/bench_pagework.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
