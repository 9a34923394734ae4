"""`cdcsync snapshot` on the real pipeline: Debezium re-emits a table's rows as 'r' events, `--where` limits
them, and its notifications say when the snapshot is done.

The snapshots are taken by a connector of this module's own, on its own database: the shipped connectors
feed the shared sink and are not signalled."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Message, TopicPartition

from cdcsync.debezium.apply import apply_connector
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.debezium.signals import (
    WHOLE_TABLE_SIGNAL_PREFIX,
    find_captured_table,
    is_whole_table_signal,
    trigger_incremental_snapshot,
)
from cdcsync.debezium.snapshot_notifications import wait_for_snapshot
from cdcsync.debezium.waiting import wait_for_state
from cdcsync.pipeline.sources_commands import snapshot
from cdcsync.pipeline.targets import Targets
from tests.conftest import _TestStack
from tests.support.own_connector import OwnConnector, OwnConnectors

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COURSES = 20


@pytest.fixture(scope="module")
def own(pipeline: Targets, test_stack: _TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnConnector]:
    """A copy of the course connector on its own database of ``COURSES`` courses, RUNNING, its first snapshot done."""
    made = OwnConnectors(test_stack.settings, tmp_path_factory.mktemp("own-connectors"))
    try:
        connector = made.make("course")
        connector.execute(
            *(("INSERT INTO courses (id, title) VALUES (%s, %s)", (i, f"course {i}")) for i in range(1, COURSES + 1))
        )
        with ConnectClient(pipeline.connect_url) as client:
            apply_connector(client, connector.spec)
            wait_for_state(client, [connector.name], "RUNNING", timeout=120)
        assert _snapshot_reads(pipeline, connector.topic("courses"), 0, COURSES, timeout=120) == _course_ids(connector)
        yield connector
    finally:
        made.remove_all()


def _high_watermark(targets: Targets, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": targets.kafka_bootstrap_servers, "group.id": f"t-{uuid.uuid4()}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def _read_ids(messages: list[Message]) -> list[int]:
    ids = []
    for message in messages:
        value = message.value() if message.error() is None else None
        envelope = json.loads(value) if value else {}
        if envelope.get("op") == "r":
            ids.append(int(envelope["after"]["id"]))
    return ids


def _snapshot_reads(targets: Targets, topic: str, since: int, expected: int, timeout: float = 60.0) -> list[int]:
    """The ids of 'r' events in the topic from offset ``since``, once ``expected`` of them arrived (or the deadline)."""
    consumer = Consumer(
        {
            "bootstrap.servers": targets.kafka_bootstrap_servers,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    ids: list[int] = []
    try:
        consumer.assign([TopicPartition(topic, 0, since)])
        deadline = time.monotonic() + timeout
        while len(ids) < expected and time.monotonic() < deadline:
            ids.extend(_read_ids(consumer.consume(500, timeout=0.5)))
        # Rows beyond the expected ones would arrive with them: one more short read shows any.
        ids.extend(_read_ids(consumer.consume(500, timeout=2.0)))
        return sorted(ids)
    finally:
        consumer.close()


def _course_ids(connector: OwnConnector) -> list[int]:
    with psycopg.connect(connector.db_url) as conn:
        return [i for (i,) in conn.execute("SELECT id FROM courses ORDER BY id")]


def test_the_services_own_role_may_not_signal(pipeline: Targets) -> None:
    spec, table = find_captured_table(load_connector_specs(), "course.courses")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # refused before anything reaches the connector
        trigger_incremental_snapshot(pipeline.course_db_url, spec, table)


def test_snapshot_re_emits_every_row_as_read_events(pipeline: Targets, own: OwnConnector) -> None:
    ids = _course_ids(own)
    topic = own.topic("courses")
    since = _high_watermark(pipeline, topic)
    result = CliRunner().invoke(
        snapshot,
        ["--table", f"{own.database}.courses", "--connectors-dir", str(own.file.parent), "--wait", "--timeout", "120"],
    )
    assert result.exit_code == 0, result.output + result.stderr
    signal_id = result.stdout.strip()
    assert is_whole_table_signal(signal_id)
    uuid.UUID(signal_id.removeprefix(WHOLE_TABLE_SIGNAL_PREFIX))
    assert f"snapshot of {own.database}.public.courses done: {len(ids)} rows re-emitted" in result.stderr
    assert _snapshot_reads(pipeline, topic, since, len(ids)) == ids


def test_where_limits_the_snapshot(pipeline: Targets, own: OwnConnector) -> None:
    chosen = _course_ids(own)[:3]
    topic = own.topic("courses")
    since = _high_watermark(pipeline, topic)
    table = "public.courses"
    where = f"id IN ({', '.join(map(str, chosen))})"
    signal_id = trigger_incremental_snapshot(own.db_url, own.spec, table, where=where)
    done = wait_for_snapshot(pipeline.kafka_bootstrap_servers, own.spec, signal_id, table, timeout=120)
    assert done.rows_scanned in (None, len(chosen))
    assert _snapshot_reads(pipeline, topic, since, len(chosen)) == chosen


def test_a_table_no_connector_captures_is_refused(pipeline: Targets) -> None:
    result = CliRunner().invoke(snapshot, ["--table", "course.assignments"])
    assert result.exit_code == 2
    assert "public.assignments is not in cdcsync-course's table.include.list" in result.stderr
