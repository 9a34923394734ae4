"""The fault suite's fixtures: its own stack and sink, and the scenario runner.

``CDCSYNC_FAULT_ROUNDS`` (default 1; ``make faults`` sets 5) is the number of faults of each
kind; ``CDCSYNC_FAULT_PORT_BASE`` (default 36400) moves the stack's ports (see ``stack``).
The stack starts from scratch for the suite's module and is stopped after it (so it
is not running beside the integration tests' stack), unless ``CDCSYNC_KEEP_TEST_STACK``
is set (then it is left running for a post-mortem).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectError
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.pipeline.verification.reports import render_report, verify_until_clean
from tests.faults.harness import Inject, ScenarioCounts, run_scenario
from tests.faults.stack import FaultStack
from tests.integration.conftest import SinkProcess, until

ROUNDS = int(os.environ.get("CDCSYNC_FAULT_ROUNDS") or "1")
PORT_BASE = int(os.environ.get("CDCSYNC_FAULT_PORT_BASE") or "36400")
_RESULTS: list[ScenarioCounts] = []


@dataclass
class Faults:
    """What a scenario works with: the stack, the sink, a seeded random source, and the runner."""

    stack: FaultStack
    sink: SinkProcess
    rng: random.Random
    rounds: int = ROUNDS
    counts: ScenarioCounts = field(default_factory=lambda: ScenarioCounts("before the scenario"))

    def run(self, scenario: str, inject: Inject) -> None:
        self.counts = ScenarioCounts(scenario)
        _RESULTS.append(run_scenario(self.counts, self.stack, self.sink, self.rounds, inject))

    def wait_until_streaming(self, timeout: float = 180.0) -> None:
        """Until every connector and task runs and each replication slot is active again.

        A task that FAILED meanwhile is restarted, as `cdcsync up` does, and counted: Debezium's
        PostgreSQL tasks fail for good when the database is down while they restart."""
        names = [spec.name for spec in load_connector_specs()]
        with ConnectClient(self.stack.targets.connect_url) as client:

            def streaming() -> bool | None:
                try:
                    states = [client.connector_status(name) for name in names]
                    for state in states:
                        if state.failed:
                            client.restart_failed(state.name)
                            self.counts.tasks_restarted += 1
                except ConnectError:  # unreachable, or still rejoining its group after a restart
                    return None
                running = all(state.running for state in states)
                return True if running and self.stack.replication_slots_active() else None

            until("every connector and task RUNNING and streaming", streaming, timeout, every=0.5)


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[FaultStack]:
    stack = FaultStack(PORT_BASE)
    stack.up_from_scratch()
    yield stack
    if not os.environ.get("CDCSYNC_KEEP_TEST_STACK"):
        stack.down()


@pytest.fixture(scope="module")
def fault_sink(fault_stack: FaultStack) -> Iterator[SinkProcess]:
    """The sink as a child process, through the proxies; the calendar equals the rules before any fault."""
    sink = SinkProcess(fault_stack.sink_targets, fault_stack.settings.home / "logs" / "fault-sink.log")
    sink.env = dict(fault_stack.env)
    sink.start()
    report = verify_until_clean(fault_stack.targets, 300, poll_s=0.5)
    assert report.clean, "\n".join(render_report(report, 10))
    yield sink
    if sink.running():
        assert sink.stop() == 0, "the sink did not exit cleanly on SIGTERM"


@pytest.fixture
def faults(fault_stack: FaultStack, fault_sink: SinkProcess, request: pytest.FixtureRequest) -> Iterator[Faults]:
    """Every part running and every proxy clean before a scenario, whatever an earlier one left."""
    fault_stack.ensure_running()
    if not fault_sink.running():
        fault_sink.start()
    faults = Faults(fault_stack, fault_sink, random.Random(request.node.name))
    faults.wait_until_streaming()
    yield faults
    fault_stack.toxiproxy.reset()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _RESULTS:
        return
    total = ScenarioCounts("fault suite")
    terminalreporter.section("fault suite counts")
    for counts in _RESULTS:
        total.add(counts)
        terminalreporter.write_line(counts.line())
    terminalreporter.write_line(total.line())
