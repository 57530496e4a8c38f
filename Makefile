# What people type and what CI runs. Everything installs into .venv at the repo root.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean browser nats node e2e

# System packages come from Debian (apt-get), installed here when missing, never by hand only.
APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

install: $(STAMP)

# Re-install only when the project metadata changes, so repeated runs are fast.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: install
	$(BIN)/tidings serve --data-dir ./data

# Debian's chromium drives the browser test (tests/transports/test_browser.py) over CDP.
browser:
	@command -v chromium >/dev/null 2>&1 || ($(APT_INSTALL) chromium)

# nats-server's websocket listener is a contender in benchmarks/ws_fanout.py.
nats:
	@command -v nats-server >/dev/null 2>&1 || ($(APT_INSTALL) nats-server)

# Node runs the official Backendless JS SDK against the server (tests/transports/test_sdk_realtime.py).
node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || ($(APT_INSTALL) nodejs npm)

# The SDK, pinned by tests/e2e/package-lock.json; `npm ci` again only when the lock file changes
# (npm ci writes node_modules/.package-lock.json).
E2E := tests/e2e
e2e: $(E2E)/node_modules/.package-lock.json

$(E2E)/node_modules/.package-lock.json: $(E2E)/package-lock.json | node
	cd $(E2E) && npm ci --no-audit --no-fund
	touch $@

test: install browser nats e2e
	$(BIN)/python -m pytest -q --cov=broker --cov-branch --cov-report=term-missing --cov-fail-under=100

lint: install
	$(BIN)/ruff check broker transports tests benchmarks examples
	$(BIN)/ruff format --check broker transports tests benchmarks examples
	$(BIN)/mypy

bench: install nats
	$(BIN)/python benchmarks/inproc_fanout.py
	$(BIN)/python benchmarks/selector_scaling.py
	$(BIN)/python benchmarks/timer_wheel.py
	$(BIN)/python benchmarks/scheduled_publish.py
	$(BIN)/python benchmarks/timers.py
	$(BIN)/python benchmarks/rest_publish.py
	$(BIN)/python benchmarks/ws_fanout.py
	$(BIN)/python benchmarks/socketio_fanout.py
	$(BIN)/python benchmarks/push_outbox.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
