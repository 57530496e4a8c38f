# What people type and what CI runs. Everything installs into .venv at the repo root.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

# Re-install only when the project metadata changes, so repeated runs are fast.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: install
	$(BIN)/tidings serve --data-dir ./data

test: install
	$(BIN)/python -m pytest -q --cov=broker --cov-branch --cov-report=term-missing --cov-fail-under=100

lint: install
	$(BIN)/ruff check broker transports tests benchmarks examples
	$(BIN)/ruff format --check broker transports tests benchmarks examples
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/inproc_fanout.py
	$(BIN)/python benchmarks/selector_scaling.py
	$(BIN)/python benchmarks/timer_wheel.py
	$(BIN)/python benchmarks/scheduled_publish.py
	$(BIN)/python benchmarks/timers.py
	$(BIN)/python benchmarks/rest_publish.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
