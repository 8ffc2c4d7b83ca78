PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO_ARGS ?=
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/logsieve demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/run.py parse
	$(PY) benchmarks/loghub_ga.py
	$(PY) benchmarks/bench_deeplog.py

clean:
	rm -rf $(VENV) build .pytest_cache
