"""Waiting for connectors to reach a state: Connect applies every change asynchronously."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectorFailed, ConnectorNotFound, ConnectTimeout
from cdcsync.debezium.connector_state import ConnectorState
from cdcsync.debezium.output import trace_summary


def reached(state: ConnectorState | None, target: str) -> bool:
    """RUNNING means the connector and every task (at least one); PAUSED and STOPPED the connector. Pure."""
    if state is None:
        return False
    return state.running if target == "RUNNING" else state.state == target


def wait_for_state(
    client: ConnectClient,
    names: Sequence[str],
    target: str,
    timeout: float,
    *,
    settled: Iterable[str] = (),
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ConnectorState]:
    """Block until every connector in ``names`` is in ``target`` state; their states.

    Waiting for RUNNING, a FAILED connector in ``settled`` (nothing was changed, so
    no restart is coming) ends the wait at once; any other FAILED one may still be
    restarting after an update and ends the wait only at the deadline. Raises
    ``ConnectorFailed`` (some FAILED) or ``ConnectTimeout`` (not there yet) at the deadline.
    """
    deadline = clock() + timeout
    settled = set(settled)
    while True:
        states = [_status_or_none(client, name) for name in names]
        if all(reached(s, target) for s in states):
            return [s for s in states if s is not None]
        failed = [s for s in states if s is not None and s.failed] if target == "RUNNING" else []
        if any(s.name in settled for s in failed) or (failed and clock() >= deadline):
            causes = "; ".join(failure_line(s) for s in failed)
            raise ConnectorFailed(f"{causes}. Fix the cause, then: cdcsync connectors restart NAME --failed-only")
        if clock() >= deadline:
            where = ", ".join(f"{n} {s.state if s else 'not registered'}" for n, s in zip(names, states, strict=True))
            raise ConnectTimeout(f"not {target} within {timeout:g}s: {where}")
        sleep(poll_s)


def failure_line(state: ConnectorState) -> str:
    """``name FAILED: root cause`` for the connector or its first failed task."""
    traces = [(state.name, state.trace)] if state.state == "FAILED" else []
    traces += [(f"{state.name} task {t.id}", t.trace) for t in state.tasks if t.state == "FAILED"]
    who, trace = traces[0] if traces else (state.name, None)
    return f"{who} FAILED: {trace_summary(trace) if trace else 'no error reported'}"


def _status_or_none(client: ConnectClient, name: str) -> ConnectorState | None:
    try:
        return client.connector_status(name)
    except ConnectorNotFound:  # just created: its status is not registered yet
        return None
