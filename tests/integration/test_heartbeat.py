"""A quiet captured database keeps no WAL: its slot advances while another database on the server is busy.

The test builds its own pair of databases (the course schema in each), and captures the idle one
with a copy of the shipped course connector under its own name, slot, publication, topic prefix
and notification topic, beating every second. It records the idle slot's confirmed_flush_lsn,
writes a burst into the busy database, and waits until the idle slot has confirmed a position past
the end of that burst. Everything it made is removed afterwards; the shipped connectors are
never touched.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql
from psycopg.rows import TupleRow

from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.heartbeat import HEARTBEAT_TABLE
from cdcsync.debezium.publications import prepare_capture
from cdcsync.debezium.source_preflight import check_sources
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.setup import schema_ddl
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, StackEndpoints
from cdcsync.pipeline.targets import Targets
from tests.conftest import _TestStack
from tests.integration.conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _worker_env() -> dict[str, str]:
    """What the test stack's Connect worker resolves placeholders from."""
    return Targets.local_stack(StackSettings.from_env()).placeholder_env()


logger = logging.getLogger(__name__)
HEARTBEAT_INTERVAL_MS = 1000
# Bound: the first beat after the burst, the next heartbeat record carrying its LSN, one
# offset flush of the Connect worker (10 s), with room for a loaded 2-core machine.
ADVANCE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class QuietPair:
    endpoints: StackEndpoints
    idle: str  # database names
    busy: str
    spec: ConnectorSpec  # captures the idle database

    def admin(self, database: str) -> psycopg.Connection[TupleRow]:
        return psycopg.connect(self.endpoints.admin_url(database), autocommit=True)

    def slot(self) -> tuple[bool, str] | None:
        """(active, confirmed_flush_lsn) of the idle database's slot; None until it exists and has confirmed."""
        with self.admin(self.idle) as conn:
            row = conn.execute(
                "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots"
                " WHERE slot_name = %s AND confirmed_flush_lsn IS NOT NULL",
                (self.spec.slot_name,),
            ).fetchone()
        return None if row is None else (bool(row[0]), str(row[1]))

    def confirmed_past(self, lsn: str) -> str | None:
        """The idle slot's confirmed_flush_lsn once it is at or past ``lsn``."""
        with self.admin(self.idle) as conn:
            row = conn.execute(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots"
                " WHERE slot_name = %s AND confirmed_flush_lsn >= %s::pg_lsn",
                (self.spec.slot_name, lsn),
            ).fetchone()
        return None if row is None else str(row[0])


def _create_database(endpoints: StackEndpoints, name: str) -> None:
    """A database with the course service's tables, owned by the admin, readable by Debezium's role."""
    with psycopg.connect(endpoints.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(*map(sql.Identifier, (name, DEBEZIUM_ROLE))))
    with psycopg.connect(endpoints.admin_url(name)) as conn:
        conn.execute(schema_ddl("course"))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(DEBEZIUM_ROLE)))


def _idle_connector_spec(database: str, suffix: str) -> ConnectorSpec:
    """The shipped course connector, reading ``database`` under names of its own, beating every second."""
    course = next(s for s in load_connector_specs() if s.config["database.dbname"] == "course")
    name = f"cdcsync_quiet_{suffix}"
    return ConnectorSpec(
        f"cdcsync-quiet-{suffix}",
        {
            **course.config,
            "database.dbname": database,
            "slot.name": name,
            "publication.name": name,
            "topic.prefix": name,
            "notification.sink.topic.name": f"{name}.notifications",
            "heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
        },
    )


@pytest.fixture
def quiet_pair(pipeline: Targets, test_stack: _TestStack) -> Iterator[QuietPair]:
    endpoints = StackEndpoints(test_stack.settings)
    suffix = uuid.uuid4().hex[:8]
    idle = f"cdcsync_idle_{suffix}"
    pair = QuietPair(endpoints, idle, f"cdcsync_busy_{suffix}", _idle_connector_spec(idle, suffix))
    client = ConnectClient(pipeline.connect_url)
    try:
        for database in (pair.idle, pair.busy):
            _create_database(endpoints, database)
        idle_admin = endpoints.admin_url(pair.idle)
        prepare_capture(idle_admin, pair.spec, DEBEZIUM_ROLE)
        yield pair
    finally:
        _remove(client, pipeline, pair)
        client.close()


def _remove(client: ConnectClient, targets: Targets, pair: QuietPair) -> None:
    with contextlib.suppress(ConnectorNotFound):
        client.delete_connector(pair.spec.name)

    def slot_dropped() -> bool | None:
        with pair.admin("postgres") as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s AND NOT active",
                (pair.spec.slot_name,),
            )
            left = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (pair.spec.slot_name,))
            return None if left.fetchone() else True

    until(f"slot {pair.spec.slot_name} to be released and dropped", slot_dropped, timeout=90)
    with pair.admin("postgres") as conn:
        for database in (pair.idle, pair.busy):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    admin = AdminClient({"bootstrap.servers": targets.kafka_bootstrap_servers})
    prefix = pair.spec.topic_prefix
    made = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix) or t.endswith(f".{prefix}")]
    for future in admin.delete_topics(made).values() if made else ():
        future.result(timeout=30)


def _streaming(client: ConnectClient, pair: QuietPair) -> str | None:
    """The idle slot's confirmed_flush_lsn once the connector runs and holds its slot."""
    try:
        if not client.connector_status(pair.spec.name).running:
            return None
    except ConnectorNotFound:  # just created: its status is not registered yet
        return None
    slot = pair.slot()
    return slot[1] if slot is not None and slot[0] else None


def _burst(pair: QuietPair, rows: int) -> str:
    """Commit ``rows`` courses in the busy database; the server's WAL position afterwards."""
    with pair.admin(pair.busy) as conn:
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
    assert not check_sources([pair.spec], _worker_env()).has_errors, "\n".join(
        check_sources([pair.spec], _worker_env()).lines()
    )
    with ConnectClient(pipeline.connect_url) as client:
        client.put_connector_config(pair.spec.name, pair.spec.config)
        start = until(f"{pair.spec.name} to stream from its slot", lambda: _streaming(client, pair), timeout=120)

        after_burst = _burst(pair, rows=20_000)
        with pair.admin(pair.idle) as conn:
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
        with pair.admin(pair.idle) as conn:
            beats = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*HEARTBEAT_TABLE.split("."))))
            assert beats.fetchone() == (1,), "the action query keeps exactly one heartbeat row"
        # The heartbeat rows reach Debezium but no change topic: nothing for the sink to ignore.
        topics = AdminClient({"bootstrap.servers": pipeline.kafka_bootstrap_servers}).list_topics(timeout=10).topics
        assert not [t for t in topics if t.endswith(HEARTBEAT_TABLE)]
        assert client.connector_status(pair.spec.name).running
