"""The Avro overlay on a real connector: Confluent framing with ids the registry's Confluent-compatible API
serves, and a switch JSON -> Avro -> JSON in place that keeps the offsets (no re-snapshot, nothing lost or
sent twice), with the notification readers following across both formats.

A connector of the test's own on a database of its own, through the test stack's schema registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from cdcsync.debezium.apply import ApplyOutcome, apply_connector
from cdcsync.debezium.change_format import ChangeFormat, with_format
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.initial_snapshot import SnapshotKind
from cdcsync.debezium.record_values import RecordDecoder, frame_schema_id, is_avro_framed
from cdcsync.debezium.snapshot_states import snapshot_states
from cdcsync.debezium.waiting import wait_for_state
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import Targets
from tests.conftest import _TestStack
from tests.integration.conftest import until
from tests.support.own_connector import OwnConnectors

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def registry(test_stack: _TestStack) -> StackSettings:
    """The session stack, whose schema registry the Connect worker's ``${env:CDCSYNC_REGISTRY_URL}`` names."""
    return test_stack.everything()


def _records(targets: Targets, topic: str) -> list[Message]:
    """Every record of ``topic`` up to its end now; none before the topic exists."""
    consumer = Consumer(
        {
            "bootstrap.servers": targets.kafka_bootstrap_servers,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.partition.eof": True,
        }
    )
    try:
        if topic not in consumer.list_topics(timeout=10).topics:
            return []
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        found: list[Message] = []
        while len(found) < end:
            batch = consumer.consume(500, timeout=5)
            assert batch, f"{topic}: {len(found)} of {end} records read"
            found.extend(m for m in batch if m.error() is None)
        return found
    finally:
        consumer.close()


def _changes(targets: Targets, registry_url: str, topic: str) -> list[tuple[str, str, int]]:
    """(format, op, course id) of every non-tombstone record, in order."""
    decoder = RecordDecoder(registry_url)
    changes = []
    for message in _records(targets, topic):
        value = message.value()
        if value is None:
            continue
        document = decoder.document(topic, value)
        row = document["after"] or document["before"]
        changes.append(("avro" if is_avro_framed(value) else "json", str(document["op"]), int(row["id"])))
    return changes


def _probe(seen: Callable[[int, str], bool | None], course_id: int, change_format: str) -> Callable[[], bool | None]:
    return lambda: seen(course_id, change_format)


def _heartbeat_probe(targets: Targets, topic: str, change_format: ChangeFormat) -> Callable[[], bool | None]:
    def newest_in_format() -> bool | None:
        values = [m.value() for m in _records(targets, topic) if m.value()]
        if not values:
            return None
        avro = is_avro_framed(values[-1] or b"")
        return True if avro == (change_format is ChangeFormat.AVRO) else None

    return newest_in_format


def test_switching_formats_reconfigures_in_place(
    pipeline: Targets, own_connectors: OwnConnectors, registry: StackSettings
) -> None:
    own = own_connectors.make("course", notification_topic=f"cdcsync_own_{uuid.uuid4().hex[:10]}.notifications")
    topic = own.topic("courses")
    heartbeats = f"__debezium-heartbeat.{own.spec.topic_prefix}"
    registry_url = registry.registry_url

    def insert(course_id: int) -> None:
        own.execute(("INSERT INTO courses (id, title) VALUES (%s, %s)", (course_id, f"course {course_id}")))

    def seen(course_id: int, change_format: str) -> bool | None:
        hits = [c for c in _changes(pipeline, registry_url, topic) if c[2] == course_id]
        return True if hits and hits[-1][0] == change_format else None

    insert(1)
    with ConnectClient(pipeline.connect_url) as client:
        assert apply_connector(client, own.spec) is ApplyOutcome.CREATED
        wait_for_state(client, [own.name], "RUNNING", timeout=120)
        until("the snapshot of course 1", lambda: seen(1, "json"), timeout=120)
        insert(2)
        until("course 2 in JSON", lambda: seen(2, "json"))

        for step, (change_format, course_id) in enumerate(((ChangeFormat.AVRO, 3), (ChangeFormat.JSON, 4))):
            before = client.get_offsets(own.name)
            assert apply_connector(client, with_format(own.spec, change_format)) is ApplyOutcome.UPDATED
            wait_for_state(client, [own.name], "RUNNING", timeout=120)
            # The old task may still write a while: once a heartbeat is in the new format, everything after is.
            until(f"a heartbeat in {change_format}", _heartbeat_probe(pipeline, heartbeats, change_format), 90)
            insert(course_id)
            until(f"course {course_id} in {change_format}", _probe(seen, course_id, change_format.value))
            after = client.get_offsets(own.name)
            assert after[0]["partition"] == before[0]["partition"], step
            assert int(after[0]["offset"]["lsn"]) >= int(before[0]["offset"]["lsn"]), "the stored position went back"

        states = snapshot_states(client, pipeline.kafka_bootstrap_servers, [own.spec], registry_url=registry_url)
    assert states[own.name].kind is SnapshotKind.COMPLETE, states[own.name].summary()

    # One snapshot read, then each insert exactly once, each in the format of its time.
    assert _changes(pipeline, registry_url, topic) == [
        ("json", "r", 1),
        ("json", "c", 2),
        ("avro", "c", 3),
        ("json", "c", 4),
    ]
    avro = next(m.value() for m in _records(pipeline, topic) if m.value() and is_avro_framed(m.value() or b""))
    assert avro is not None and avro[0] == 0
    served = requests.get(f"{registry_url}/schemas/ids/{frame_schema_id(avro)}", timeout=10)
    assert served.status_code == 200, served.text
    assert json.loads(served.json()["schema"])["name"] == "Envelope"
