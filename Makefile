# Quick start on a fresh machine: `make demo` and `make test`. Each does its own set-up:
# the virtual environment (.venv), the Python dependencies, and the JVM artifacts
# (resolved by Maven from compose/pom.xml on the first `cdcsync stack up`).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: venv demo test lint typecheck unit down clean kill-loop faults toxiproxy bench bench-peers bench-apply

# Shopify's toxiproxy, the fault suite's network fault proxy, built from source with Go (pinned).
TOXIPROXY_VERSION := v2.12.0
TOXIPROXY_DIR     := .cdcsync/tools/toxiproxy
TOXIPROXY_STAMP   := $(TOXIPROXY_DIR)/.installed-$(TOXIPROXY_VERSION)
export CDCSYNC_TOXIPROXY := $(abspath $(TOXIPROXY_DIR))/server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

$(TOXIPROXY_STAMP):
	mkdir -p $(TOXIPROXY_DIR)
	GOBIN=$(abspath $(TOXIPROXY_DIR)) go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)
	rm -f $(TOXIPROXY_DIR)/.installed-*
	touch $(TOXIPROXY_STAMP)

toxiproxy: $(TOXIPROXY_STAMP)

# The bench's peers (docs/bench-peers.md): PyPI's apache-flink in a venv of its own (~770 MB, kept apart
# from .venv), and the Debezium JDBC sink plugin and Flink SQL connector jars from compose/bench-peers.pom
# (into the jvm directory of CDCSYNC_HOME's stack; a peer resolves them itself too when they are missing).
FLINK_VENV  := .cdcsync/bench-peers/flink-venv
FLINK_STAMP := $(FLINK_VENV)/.installed-$(shell sha1sum pipeline/bench/peers/flink-requirements.txt | cut -c1-12)

$(FLINK_STAMP): pipeline/bench/peers/flink-requirements.txt
	$(PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_VENV)/bin/pip install --quiet --upgrade pip
	$(FLINK_VENV)/bin/pip install --quiet -r pipeline/bench/peers/flink-requirements.txt
	rm -f $(FLINK_VENV)/.installed-*
	touch $(FLINK_STAMP)

bench-peers: venv $(FLINK_STAMP)
	$(BIN)/python -c 'from cdcsync.pipeline.bench.peers.artifacts import PeerArtifacts;\
	from cdcsync.pipeline.settings import StackSettings; PeerArtifacts(StackSettings.from_env()).ensure()'

# The pipeline end to end on the local stack; the stack is left running (`make down` stops it).
# FORMAT=avro: connectors write Avro through the schema registry (started with the stack).
# Without it, the stack's own choice (CDCSYNC_CHANGE_FORMAT, else the last `up --format`, else json).
demo: venv
	$(BIN)/cdcsync demo $(if $(FORMAT),--format $(FORMAT))

down: venv
	$(BIN)/cdcsync down

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# Every test. The integration tests start their own stack (under .cdcsync/test-stack,
# on their own ports) and stop it at the end; the fault suite runs one round of each fault
# on a stack of its own (.cdcsync/fault-stack).
test: lint typecheck toxiproxy
	$(BIN)/pytest

# The fault suite, longer: CDCSYNC_FAULT_ROUNDS (default 5) faults of each kind, each under a
# concurrent workload; afterwards verify must be clean and every offset applied exactly once.
faults: venv toxiproxy
	CDCSYNC_FAULT_ROUNDS=$${CDCSYNC_FAULT_ROUNDS:-5} $(BIN)/pytest -s -m fault tests/faults

# The benchmark (README "Performance"): cdcsync beside the Debezium JDBC sink and Flink SQL, on a stack of its
# own (.cdcsync/bench-stack, ports below) that it starts and stops, never the demo's. Prints the table, writes
# .cdcsync/bench/results.json. BENCH_ARGS passes options on (cdcsync bench run --help), e.g. BENCH_ARGS=--smoke.
BENCH_PG_PORT         ?= 25432
BENCH_KAFKA_PORT      ?= 29092
BENCH_CONTROLLER_PORT ?= 29093
BENCH_CONNECT_PORT    ?= 28083
BENCH_REGISTRY_PORT   ?= 28081
BENCH_ENV := CDCSYNC_PROFILE=local CDCSYNC_HOME=$(abspath .cdcsync/bench-stack) CDCSYNC_PG_PORT=$(BENCH_PG_PORT) \
	CDCSYNC_KAFKA_PORT=$(BENCH_KAFKA_PORT) CDCSYNC_KAFKA_CONTROLLER_PORT=$(BENCH_CONTROLLER_PORT) \
	CDCSYNC_CONNECT_PORT=$(BENCH_CONNECT_PORT) CDCSYNC_REGISTRY_PORT=$(BENCH_REGISTRY_PORT) CDCSYNC_CHANGE_FORMAT=json

bench: venv $(FLINK_STAMP)
	$(BENCH_ENV) $(BIN)/cdcsync bench run --json .cdcsync/bench/results.json $(BENCH_ARGS); \
	status=$$?; $(BENCH_ENV) $(BIN)/cdcsync stack down; exit $$status

# How a batch's apply time grows with the calendar (README "Performance"): the same batches of the change
# mix on a 1M- and a 10M-row calendar, on the bench stack's PostgreSQL alone. BENCH_APPLY_ARGS passes options on.
bench-apply: venv
	$(BENCH_ENV) $(BIN)/cdcsync bench apply $(BENCH_APPLY_ARGS); \
	status=$$?; $(BENCH_ENV) $(BIN)/cdcsync stack down; exit $$status

unit: venv
	$(BIN)/pytest tests/unit

# The fault suite's sink SIGKILL scenario, longer: 20 kills (CDCSYNC_KILLS to change), then verify
# and the offset ledger must show every offset applied exactly once.
kill-loop: venv toxiproxy
	CDCSYNC_FAULT_ROUNDS=$${CDCSYNC_KILLS:-20} $(BIN)/pytest -s tests/faults -k sink_sigkill

clean:
	rm -rf $(VENV) .cdcsync .mypy_cache .ruff_cache .pytest_cache .hypothesis
