"""`cdcsync snapshot` on the real pipeline: Debezium re-emits a table's rows as 'r' events, `--where` limits
them, and its notifications say when the snapshot is done."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Message, TopicPartition

from debezium.connector_spec import load_connector_specs
from debezium.signals import (
    WHOLE_TABLE_SIGNAL_PREFIX,
    find_captured_table,
    is_whole_table_signal,
    trigger_incremental_snapshot,
)
from debezium.snapshot_notifications import wait_for_snapshot
from debezium.sources_commands import snapshot
from pipeline.stack.endpoints import StackEndpoints
from pipeline.targets import Targets
from tests.conftest import _TestStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPIC = "course.public.courses"


def _high_watermark(targets: Targets) -> int:
    consumer = Consumer({"bootstrap.servers": targets.kafka_bootstrap_servers, "group.id": f"t-{uuid.uuid4()}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)[1])
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


def _snapshot_reads(targets: Targets, since: int, expected: int, timeout: float = 60.0) -> list[int]:
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
        consumer.assign([TopicPartition(TOPIC, 0, since)])
        deadline = time.monotonic() + timeout
        while len(ids) < expected and time.monotonic() < deadline:
            ids.extend(_read_ids(consumer.consume(500, timeout=0.5)))
        # Rows beyond the expected ones would arrive with them: one more short read shows any.
        ids.extend(_read_ids(consumer.consume(500, timeout=2.0)))
        return sorted(ids)
    finally:
        consumer.close()


def _course_ids(targets: Targets) -> list[int]:
    with psycopg.connect(targets.course_db_url) as conn:
        return [i for (i,) in conn.execute("SELECT id FROM courses ORDER BY id")]


def test_snapshot_re_emits_every_row_as_read_events(pipeline: Targets) -> None:
    spec, table = find_captured_table(load_connector_specs(), "course.courses")
    ids = _course_ids(pipeline)
    since = _high_watermark(pipeline)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the service's own role may not signal
        trigger_incremental_snapshot(pipeline.course_db_url, spec, table)

    result = CliRunner().invoke(snapshot, ["--table", "course.courses", "--wait", "--timeout", "120"])
    assert result.exit_code == 0, result.output + result.stderr
    signal_id = result.stdout.strip()
    assert is_whole_table_signal(signal_id)
    uuid.UUID(signal_id.removeprefix(WHOLE_TABLE_SIGNAL_PREFIX))
    assert f"snapshot of course.public.courses done: {len(ids)} rows re-emitted" in result.stderr
    assert _snapshot_reads(pipeline, since, len(ids)) == ids


def test_where_limits_the_snapshot(pipeline: Targets, test_stack: _TestStack) -> None:
    spec, table = find_captured_table(load_connector_specs(), "course.courses")
    chosen = _course_ids(pipeline)[:3]
    since = _high_watermark(pipeline)
    admin_url = StackEndpoints(test_stack.settings).admin_url("course")
    signal_id = trigger_incremental_snapshot(admin_url, spec, table, where=f"id IN ({', '.join(map(str, chosen))})")
    done = wait_for_snapshot(pipeline.kafka_bootstrap_servers, spec, signal_id, table, timeout=120)
    assert done.rows_scanned in (None, len(chosen))
    assert _snapshot_reads(pipeline, since, len(chosen)) == chosen


def test_a_table_no_connector_captures_is_refused(pipeline: Targets) -> None:
    result = CliRunner().invoke(snapshot, ["--table", "course.assignments"])
    assert result.exit_code == 2
    assert "public.assignments is not in cdcsync-course's table.include.list" in result.stderr
