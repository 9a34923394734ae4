"""A message the sink cannot apply goes to the dead-letter topic with the reason, and the pipeline continues."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # public names the stubs do not re-export
    AdminClient,
    ConfigResource,
    ResourceType,
)

from cdcsync.pipeline.cli import cli
from cdcsync.sink.kafka_clients import message_headers
from tests.integration.conftest import SinkProcess, Sources, assert_calendar_matches_rules, until

pytestmark = pytest.mark.integration

DLQ = "cdcsync.calendar.dlq"


def _dead_letters(bootstrap: str) -> list[dict[str, bytes | None]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-dlq-{uuid.uuid4()}"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(DLQ, 0), timeout=10)
        consumer.assign([TopicPartition(DLQ, 0, OFFSET_BEGINNING)])
        letters: list[dict[str, bytes | None]] = []
        while len(letters) < high:
            for message in consumer.consume(100, timeout=2.0):
                if message.error() is None:
                    letters.append({**dict(message_headers(message)), "value": message.value()})
        return letters
    finally:
        consumer.close()


def test_malformed_message_is_dead_lettered_and_the_pipeline_continues(sink: SinkProcess, sources: Sources) -> None:
    marker = f"not json {uuid.uuid4()}".encode()
    producer = Producer({"bootstrap.servers": sink.targets.kafka_bootstrap_servers})
    producer.produce("course.public.lectures", key=b'{"id": -1}', value=marker)
    assert producer.flush(30) == 0

    letter = until(
        "the dead letter",
        lambda: next((x for x in _dead_letters(sink.targets.kafka_bootstrap_servers) if x["value"] == marker), None),
    )
    assert letter["cdcsync.error.class"] == b"InvalidMessage"
    assert b"neither Confluent-framed Avro (magic byte 0) nor valid JSON" in (letter["cdcsync.error.message"] or b"")
    assert letter["cdcsync.original.topic"] == b"course.public.lectures"
    assert letter["cdcsync.original.partition"] == b"0"
    assert int(letter["cdcsync.original.offset"] or b"-1") >= 0

    # The sink moved past it: a change committed afterwards reaches the calendar.
    user, course, lecture = sources.new_id(), sources.new_id(), sources.new_id()
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    sources.execute(
        "course",
        ("INSERT INTO courses (id, title) VALUES (%s, 'After the dead letter')", (course,)),
        ("INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (course, user)),
        (
            "INSERT INTO lectures (id, course_id, title, starts_at, ends_at) VALUES (%s, %s, 'L', %s, %s)",
            (lecture, course, start, start + timedelta(hours=1)),
        ),
    )
    until("the next change", lambda: sources.calendar_rows("course_id = %s", (course,)) or None)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_dlq_list_show_and_replay(sink: SinkProcess, sources: Sources) -> None:
    bootstrap = sink.targets.kafka_bootstrap_servers
    producer = Producer({"bootstrap.servers": bootstrap})
    marker = f"still not json {uuid.uuid4()}".encode()
    producer.produce("course.public.courses", key=b'{"id": -2}', value=marker)
    assert producer.flush(30) == 0
    letter = until("the dead letter", lambda: next((x for x in _dead_letters(bootstrap) if x["value"] == marker), None))
    listed = [json.loads(line) for line in _cli("dlq", "list", "--json").splitlines()]
    entry = next(x for x in listed if x["original_offset"] == int(letter["cdcsync.original.offset"] or b"-1"))
    assert entry["original_topic"] == "course.public.courses"
    assert entry["error_class"] == "InvalidMessage"
    shown = _cli("dlq", "show", entry["dead_letter"])
    assert marker.decode() in shown and "cdcsync.error.message" in shown

    # Replayed, it goes back to its topic; the sink still cannot apply it, so it is dead-lettered again.
    before = sum(1 for x in _dead_letters(bootstrap) if x["value"] == marker)
    replayed = _cli("dlq", "replay", entry["dead_letter"])
    assert f"replayed {entry['dead_letter']} to course.public.courses" in replayed
    until(
        "the replayed letter to come back",
        lambda: sum(1 for x in _dead_letters(bootstrap) if x["value"] == marker) > before or None,
    )
    again = [x for x in _dead_letters(bootstrap) if x["value"] == marker][-1]
    assert again["cdcsync.replayed.from"] == entry["dead_letter"].encode()
    assert_calendar_matches_rules(sink.targets)


def test_the_dead_letter_topic_is_a_log_kept_forever(sink: SinkProcess) -> None:
    admin = AdminClient({"bootstrap.servers": sink.targets.kafka_bootstrap_servers})
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, DLQ)]).values()
    configs = future.result(timeout=30)
    assert (configs["cleanup.policy"].value, configs["retention.ms"].value) == ("delete", "-1")
