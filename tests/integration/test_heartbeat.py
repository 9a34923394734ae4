"""A quiet captured database keeps no WAL: its slot advances while another database on the server is busy.

The test builds its own pair of databases (the course schema in each, from ``own_connectors``),
and captures the idle one with a copy of the shipped course connector under its own name, slot,
publication, topic prefix and notification topic, beating every second. It records the idle
slot's confirmed_flush_lsn, writes a burst into the busy database, and waits until the idle slot
has confirmed a position past the end of that burst. Everything it made is removed afterwards;
the shipped connectors are never touched.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.heartbeat import HEARTBEAT_TABLE
from cdcsync.debezium.source_preflight import check_sources
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import Targets
from tests.integration.conftest import until
from tests.support.own_connector import OwnConnector, OwnConnectors

pytestmark = [pytest.mark.integration, pytest.mark.slow]

logger = logging.getLogger(__name__)
HEARTBEAT_INTERVAL_MS = 1000
# Bound: the first beat after the burst, the next heartbeat record carrying its LSN, one
# offset flush of the Connect worker (10 s), with room for a loaded 2-core machine.
ADVANCE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class QuietPair:
    idle: OwnConnector  # captures the idle database, beating every second
    busy_url: str  # the busy database (course schema, not captured), as the admin

    def confirmed_past(self, lsn: str) -> str | None:
        """The idle slot's confirmed_flush_lsn once it is at or past ``lsn``."""
        with psycopg.connect(self.idle.db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots"
                " WHERE slot_name = %s AND confirmed_flush_lsn >= %s::pg_lsn",
                (self.idle.spec.slot_name, lsn),
            ).fetchone()
        return None if row is None else str(row[0])


@pytest.fixture
def quiet_pair(own_connectors: OwnConnectors) -> QuietPair:
    """The idle database with a copy of the shipped course connector (its own names and notification
    topic, beating every second), and the busy one; both removed with all they leave by ``own_connectors``."""
    token = f"cdcsync_quiet_{uuid.uuid4().hex[:8]}"
    idle = own_connectors.make(
        "course",
        token=token,
        notification_topic=f"{token}.notifications",
        config={"heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS)},
    )
    return QuietPair(idle, own_connectors.database("course"))


def _streaming(client: ConnectClient, pair: QuietPair) -> str | None:
    """The idle slot's confirmed_flush_lsn once the connector runs and holds its slot."""
    try:
        if not client.connector_status(pair.idle.spec.name).running:
            return None
    except ConnectorNotFound:  # just created: its status is not registered yet
        return None
    slot = pair.idle.slot()
    return slot[1] if slot is not None and slot[0] else None


def _burst(pair: QuietPair, rows: int) -> str:
    """Commit ``rows`` courses in the busy database; the server's WAL position afterwards."""
    with psycopg.connect(pair.busy_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO courses (id, title, description)"
            " SELECT g, 'course ' || g, repeat('busy ', 40) FROM generate_series(1, %s) g",
            (rows,),
        )
        (position,) = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone() or ("",)
    return str(position)


def test_an_idle_databases_slot_advances_while_another_database_is_busy(
    quiet_pair: QuietPair, pipeline: Targets
) -> None:
    pair = quiet_pair
    report = check_sources([pair.idle.spec], Targets.local_stack(StackSettings.from_env()).placeholder_env())
    assert not report.has_errors, "\n".join(report.lines())
    with ConnectClient(pipeline.connect_url) as client:
        client.put_connector_config(pair.idle.spec.name, pair.idle.spec.config)
        start = until(f"{pair.idle.spec.name} to stream from its slot", lambda: _streaming(client, pair), timeout=120)

        after_burst = _burst(pair, rows=20_000)
        with psycopg.connect(pair.idle.db_url, autocommit=True) as conn:
            (wal_written,) = conn.execute(
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::bigint", (after_burst, start)
            ).fetchone() or (0,)
        burst_done = time.monotonic()
        confirmed = until(
            f"the idle slot to confirm past {after_burst} (it was at {start})",
            lambda: pair.confirmed_past(after_burst),
            timeout=ADVANCE_TIMEOUT_S,
            every=0.5,
        )
        logger.info(
            "idle slot went from %s past %s (%d bytes of WAL, nearly all the busy database's) to %s in %.1fs",
            start,
            after_burst,
            wal_written,
            confirmed,
            time.monotonic() - burst_done,
        )
        with psycopg.connect(pair.idle.db_url, autocommit=True) as conn:
            beats = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*HEARTBEAT_TABLE.split("."))))
            assert beats.fetchone() == (1,), "the action query keeps exactly one heartbeat row"
        # The heartbeat rows reach Debezium but no change topic: nothing for the sink to ignore.
        topics = AdminClient({"bootstrap.servers": pipeline.kafka_bootstrap_servers}).list_topics(timeout=10).topics
        assert not [t for t in topics if t.endswith(HEARTBEAT_TABLE)]
        assert client.connector_status(pair.idle.spec.name).running
