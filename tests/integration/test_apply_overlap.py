"""The sink decodes the next batch while the one before applies; when that one fails, the decoded
batch is dropped unapplied and everything is read again from the offsets stored in PostgreSQL.

Deterministic: the test holds the advisory lock every batch's transaction takes first, so the
sink's first batch stays in flight (its backend waits on the lock) for as long as the test wants.
The sink's own metrics show it received the next batch meanwhile; then its backend is terminated.

Its own sink process, consumer group, dead-letter topic and fresh calendar database; it only
reads the shared change topics.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from cdcsync.pipeline.stack.own_connectors import delete_topics
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.calendar_database import APPLICATION_NAME
from cdcsync.sink.calendar_writer import BATCH_LOCK
from cdcsync.sink.metrics import RECEIVE_DELAY
from tests.integration.conftest import SinkProcess, assert_calendar_matches_rules, assert_ledger_clean, until

BATCH = 5  # messages per batch: the shared topics hold many more, so a second batch is always there


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _received(url: str) -> float | None:
    """Messages the sink has received (its append-to-receive histogram's count); None while it does not answer."""
    try:
        text = requests.get(f"{url}/metrics", timeout=5).text
    except requests.ConnectionError:
        return None
    counts = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{RECEIVE_DELAY}_count"
    ]
    return counts[0] if counts else None


def _waiting_on_the_batch_lock(db_url: str) -> int:
    """The sink's backends waiting on an advisory lock in its calendar database."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
            " AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
            (APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def _terminate_sink_backends(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (APPLICATION_NAME,),
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)


def _low_watermarks(targets: Targets, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": targets.kafka_bootstrap_servers, "group.id": f"t-{uuid.uuid4()}"})
    try:
        return {(t, p): int(consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[0]) for t, p in partitions}
    finally:
        consumer.close()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.fault
def test_a_batch_decoded_while_the_one_before_fails_is_dropped_and_read_again(
    pipeline: Targets, fresh_database: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:10]
    group, dead_letters = f"test-overlap-{suffix}", f"test-overlap-dlq-{suffix}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    targets = pipeline.with_values(CALENDAR_DB_URL=fresh_database, CDCSYNC_SINK_DB_URL=fresh_database)
    env = {
        "CDCSYNC_SINK_GROUP": group,
        "CDCSYNC_DLQ_TOPIC": dead_letters,
        "CDCSYNC_SINK_HTTP": f"127.0.0.1:{port}",
        "CDCSYNC_SINK_BATCH_MAX": str(BATCH),
    }
    sink = SinkProcess(targets, tmp_path, env=env)
    try:
        with psycopg.connect(fresh_database, autocommit=True) as gate:
            gate.execute("SELECT pg_advisory_lock(%s)", (BATCH_LOCK,))
            try:
                sink.start()
                until("the first batch in flight", lambda: _waiting_on_the_batch_lock(fresh_database) or None, 120)
                # The loop goes on while the first batch waits: it receives (and decodes) the second.
                until("the next batch received", lambda: (_received(url) or 0) > BATCH or None)
                assert _terminate_sink_backends(fresh_database) >= 1
                until(
                    "the decoded batch dropped",
                    lambda: "consumed while the batch before failed" in sink.log_text() or None,
                )
                until("the first batch in flight again", lambda: _waiting_on_the_batch_lock(fresh_database) or None)
            finally:
                gate.execute("SELECT pg_advisory_unlock(%s)", (BATCH_LOCK,))
        assert_calendar_matches_rules(targets, timeout=180, sink=sink)
        ledgers = assert_ledger_clean(fresh_database, group)
        # Nothing skipped before the first range either: every partition was applied from its start.
        lows = _low_watermarks(targets, [(x.topic, x.partition) for x in ledgers])
        assert {(x.topic, x.partition): x.first_offset for x in ledgers} == lows
        log = sink.log_text()
        assert log.count("calendar database unavailable") == 1 and log.count("calendar database back after") == 1
        assert sink.stop() == 0
    finally:
        if sink.process is not None and sink.process.poll() is None:
            sink.process.kill()
            sink.process.wait(timeout=30)
        delete_topics(pipeline.kafka_bootstrap_servers, lambda topic: topic == dead_letters)
