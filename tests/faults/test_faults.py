"""Faults injected under a concurrent workload across the three services; afterwards verify is clean
and every offset was applied exactly once (see ``harness``). One round each by default; ``make
faults`` runs more. Each scenario prints its counts, and the session prints them all with a total."""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from tests.faults.conftest import Faults
from tests.faults.stack import KAFKA_PROXY, PART_TIMEOUT_S, POSTGRES_PROXY
from tests.faults.workload import ConcurrentWorkload
from tests.integration.conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.fault]

_ASSIGNED = re.compile(r"assigned ((?:\S+\[\d+\]@-?\d+(?:, )?)+)$", re.MULTILINE)


def test_connect_worker_sigkill(faults: Faults) -> None:
    def inject(_round: int, _workload: ConcurrentWorkload) -> int:
        faults.stack.sigkill("connect")
        faults.stack.connect.start(PART_TIMEOUT_S)
        faults.wait_until_streaming()
        return 1

    faults.run("Connect worker SIGKILL", inject)


def test_broker_sigkill(faults: Faults) -> None:
    def inject(_round: int, _workload: ConcurrentWorkload) -> int:
        faults.stack.sigkill("kafka")
        faults.stack.kafka.start(PART_TIMEOUT_S)
        faults.wait_until_streaming()
        return 1

    faults.run("broker SIGKILL", inject)


def test_postgres_immediate_restart(faults: Faults) -> None:
    """Sources and calendar share the server: Debezium, the workload and the sink all lose it at once."""

    def inject(_round: int, _workload: ConcurrentWorkload) -> int:
        assert faults.stack.postgres.stop(mode="immediate")
        faults.stack.postgres.start(PART_TIMEOUT_S)
        faults.wait_until_streaming()
        return 1

    faults.run("PostgreSQL immediate restart", inject)


def test_sink_sigkill(faults: Faults) -> None:
    """At a random moment of the workload; the restarted sink resumes exactly at the offsets it stored."""
    sink = faults.sink

    def inject(_round: int, workload: ConcurrentWorkload) -> int:
        workload.wait_for_commits(faults.rng.randint(1, 40))
        sink.kill()
        # A commit the sink sent just before it died may still land (the proxy holds its bytes):
        # the stored offsets are final once PostgreSQL has ended the dead sink's sessions.
        until("the killed sink's sessions to end", lambda: _no_other_sink_session(faults), 60)
        stored = _stored_offsets(faults)
        log_end = len(sink.log_text())
        sink.start()
        resumed = until("the restarted sink's assignment", lambda: _assignment_after(sink.log_text(), log_end))
        assert {p: o for p, o in resumed.items() if p in stored} == stored
        return 1

    faults.run("sink SIGKILL", inject)


PROXIES = {"kafka": KAFKA_PROXY, "postgres": POSTGRES_PROXY}
LATENCY_HOLD_S = 5.0
CUT_HOLD_S = 3.0
HALF_OPEN_HOLD_S = 10.0


@pytest.mark.parametrize("peer", ["kafka", "postgres"])
def test_network_latency(faults: Faults, peer: str) -> None:
    """Every byte between the sink and its peer delayed by 100 to 700 ms, both ways."""

    def inject(_round: int, _workload: ConcurrentWorkload) -> int:
        with faults.stack.toxiproxy.toxic(
            PROXIES[peer], "latency", ("upstream", "downstream"), latency=400, jitter=300
        ):
            time.sleep(LATENCY_HOLD_S)  # the fault's duration
        return 1

    faults.run(f"sink-{peer} latency", inject)


@pytest.mark.parametrize("peer", ["kafka", "postgres"])
def test_network_cut(faults: Faults, peer: str) -> None:
    """Connections reset by the peer, then the proxy down: open connections closed, new ones refused."""
    toxiproxy = faults.stack.toxiproxy

    def inject(_round: int, workload: ConcurrentWorkload) -> int:
        with toxiproxy.toxic(PROXIES[peer], "reset_peer", ("upstream",), timeout=0):
            time.sleep(CUT_HOLD_S)
        workload.wait_for_commits(10)
        toxiproxy.set_enabled(PROXIES[peer], False)
        try:
            time.sleep(CUT_HOLD_S)
        finally:
            toxiproxy.set_enabled(PROXIES[peer], True)
        return 2

    faults.run(f"sink-{peer} cut", inject)


@pytest.mark.parametrize("peer", ["kafka", "postgres"])
def test_network_half_open(faults: Faults, peer: str) -> None:
    """Connections stay open but carry nothing either way: the peer seems alive and never answers.

    The sink has to notice by itself; when the toxic goes, what was lost on those connections is lost."""

    def inject(_round: int, _workload: ConcurrentWorkload) -> int:
        with faults.stack.toxiproxy.toxic(PROXIES[peer], "timeout", ("upstream", "downstream"), timeout=0):
            time.sleep(HALF_OPEN_HOLD_S)
        return 1

    faults.run(f"sink-{peer} half-open", inject)


def _stored_offsets(faults: Faults) -> dict[str, int]:
    with psycopg.connect(faults.stack.targets.sink_db_url) as conn:
        rows = conn.execute(
            "SELECT topic, partition, next_offset FROM cdcsync.consumer_offsets WHERE group_id = %s",
            ("cdcsync-calendar-sink",),
        ).fetchall()
    return {f"{topic}[{partition}]": offset for topic, partition, offset in rows}


def _no_other_sink_session(faults: Faults) -> bool | None:
    with psycopg.connect(faults.stack.targets.sink_db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = current_user AND pid <> pg_backend_pid()"
        ).fetchone()
    return True if row is not None and row[0] == 0 else None


def _assignment_after(log: str, start: int) -> dict[str, int] | None:
    match = _ASSIGNED.search(log, start)
    if match is None:
        return None
    positions = {}
    for item in match.group(1).split(", "):
        partition, _, offset = item.rpartition("@")
        positions[partition] = int(offset)
    return positions
