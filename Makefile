# Quick start on a fresh machine: `make demo` and `make test`. Each does its own set-up:
# the virtual environment (.venv), the Python dependencies, and the JVM artifacts
# (resolved by Maven from compose/pom.xml on the first `cdcsync stack up`).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: venv demo test lint typecheck unit down clean kill-loop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# The pipeline end to end on the local stack; the stack is left running (`make down` stops it).
demo: venv
	$(BIN)/cdcsync demo

down: venv
	$(BIN)/cdcsync down

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# Every test. The integration tests start their own stack (under .cdcsync/test-stack,
# on their own ports) and stop it at the end.
test: lint typecheck
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest tests/unit

# The SIGKILL recovery test under load, longer: 20 kills (CDCSYNC_KILLS to change), then verify
# and the offset ledger must show every offset applied exactly once.
kill-loop: venv
	CDCSYNC_KILLS=$${CDCSYNC_KILLS:-20} $(BIN)/pytest -s tests/integration/test_sink_recovery.py

clean:
	rm -rf $(VENV) .cdcsync .mypy_cache .ruff_cache .pytest_cache .hypothesis
