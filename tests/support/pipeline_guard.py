"""The guard over the shipped connectors, which the shared sink and most integration tests rely on.

A broken shipped connector used to show only as every sink test waiting out its deadline. The guard
reads the connectors' states from Kafka Connect and fails within seconds, naming the connector and the
cause. Every check of the connectors' fitness goes in ``shipped_connector_problems``; the fixtures call
it once the connectors run, in every polling loop that waits for the sink, and before each test that
uses the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.connect_errors import ConnectTimeout
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.debezium.connector_state import ConnectorState
from cdcsync.debezium.snapshot_states import snapshot_states, wait_for_snapshots
from cdcsync.debezium.waiting import failure_line
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import Targets

ConnectorStates = Mapping[str, ConnectorState | None]  # None: not registered in Kafka Connect


def shipped_connector_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in load_connector_specs())


def shipped_connector_states(connect_url: str) -> dict[str, ConnectorState | None]:
    """The status of each shipped connector, None for one Kafka Connect does not know."""
    states: dict[str, ConnectorState | None] = {}
    with ConnectClient(connect_url) as client:
        for name in shipped_connector_names():
            try:
                states[name] = client.connector_status(name)
            except ConnectorNotFound:
                states[name] = None
    return states


def shipped_connector_problems(states: ConnectorStates) -> list[str]:
    """What makes the shipped connectors in ``states`` unfit to feed the sink, one line each; [] if nothing.

    A connector Kafka Connect does not know, and a connector or task that is FAILED (with the first
    line of its trace and its root cause). This is the one place for such checks: a check of the
    initial snapshots takes the same states and adds a line for each one that was interrupted or
    lost, while one still running is no problem (the callers wait for the calendar meanwhile).
    """
    problems = [f"{name}: not registered in Kafka Connect" for name, state in states.items() if state is None]
    problems += [failure_line(state) for state in states.values() if state is not None and state.failed]
    return problems


def interrupted_snapshot_problems(targets: Targets, wait_s: float = 0.0) -> list[str]:
    """One line (connector, tables, cause, fix) per shipped connector whose initial snapshot was interrupted.

    With ``wait_s``, first waits until no initial snapshot runs; one still running at the deadline is a
    problem too. Debezium may resume streaming from an offset that says nothing of the snapshot it never
    finished (issue: the attendance table's rows never reached Kafka): the calendar would wait forever.
    """
    specs = load_connector_specs()
    with ConnectClient(targets.connect_url) as client:
        try:
            states = (
                wait_for_snapshots(client, targets.kafka_bootstrap_servers, specs, wait_s)
                if wait_s > 0
                else snapshot_states(client, targets.kafka_bootstrap_servers, specs)
            )
        except ConnectTimeout as exc:
            return [str(exc)]
    return [state.line() for state in states.values() if state.interrupted]


def fail_on_snapshot_problems(targets: Targets, what: str, wait_s: float) -> None:
    """Fail at once, naming each connector, when a shipped connector's initial snapshot was interrupted."""
    problems = interrupted_snapshot_problems(targets, wait_s)
    if problems:
        pytest.fail(
            f"{what}: a shipped connector's initial snapshot is incomplete, so the calendar cannot converge:\n  "
            + "\n  ".join(problems),
            pytrace=False,
        )


def fail_on_problems(states: ConnectorStates, what: str) -> None:
    """Fail the test (or fixture) at once, naming every problem, if there is one."""
    problems = shipped_connector_problems(states)
    if problems:
        pytest.fail(
            f"{what}: a shipped connector is broken, so the tests that need the pipeline cannot pass:\n  "
            + "\n  ".join(problems)
            + f"\nConnect's log: {StackSettings.from_env().home / 'logs' / 'connect.log'}",
            pytrace=False,
        )


def wait_until_running(connect_url: str, timeout: float, what: str) -> dict[str, ConnectorState | None]:
    """Poll until every shipped connector and task is RUNNING; fail at once when one is FAILED.

    A connector not registered yet (just created) is waited for, as is one in any other state, until
    ``timeout``; then the failure names each one's state.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = shipped_connector_states(connect_url)
        fail_on_problems({n: s for n, s in states.items() if s is not None}, what)
        if all(state is not None and state.running for state in states.values()):
            return states
        if time.monotonic() >= deadline:
            where = ", ".join(
                f"{name} {'not registered' if s is None else s.state} (tasks: "
                f"{', '.join(t.state for t in s.tasks) if s is not None and s.tasks else 'none'})"
                for name, s in states.items()
                if s is None or not s.running
            )
            pytest.fail(f"{what}: shipped connectors not RUNNING within {timeout:g}s: {where}", pytrace=False)
        time.sleep(0.5)
