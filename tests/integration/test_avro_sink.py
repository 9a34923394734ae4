"""The sink reads Confluent-framed Avro through the real schema registry (Apicurio, Confluent-compatible API).

Schemas shaped like Apicurio's AvroConverter output are registered through the ccompat API
under ``<topic>-value`` / ``<topic>-key``; framed messages go to a topic of the test's own.
The sink daemon runs in-process on a fresh calendar database with its own group and
dead-letter topic, so nothing shared is touched. It uses the session stack's registry.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.own_connectors import delete_topics
from cdcsync.sink.avro_changes import AvroChanges
from cdcsync.sink.change_event import ChangeEvent, TableTruncated
from cdcsync.sink.consumed_batch import collect_batch
from cdcsync.sink.consumer_loop import SinkDaemon
from cdcsync.sink.decoding import OLD_KEY_HEADER, UNAVAILABLE_VALUE_PLACEHOLDER, decode_change
from cdcsync.sink.errors import SchemaRegistryUnavailable, UnknownSchemaId
from cdcsync.sink.kafka_clients import message_headers
from cdcsync.sink.reconnect import RetryPolicy
from cdcsync.sink.settings import SchemaRegistrySettings, SinkSettings
from cdcsync.sink.sink_state import read_state
from cdcsync.sink.source_tables import ASSIGNMENTS
from tests.conftest import _TestStack
from tests.integration.conftest import assert_ledger_clean, until
from tests.support import avro_envelopes as av
from tests.support.tcp_forwarder import TcpForwarder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JSON_TYPE = "application/vnd.schemaregistry.v1+json"
ROW = {
    "id": 1,
    "course_id": 3,
    "title": "Essay",
    "description": "first draft",
    "max_score": Decimal("87.50"),
    "opens_at": "2026-03-01T08:00:00.000001Z",
    "due_at": "2026-03-08T23:59:59.999999+02:00",
    "published": True,
    "updated_at": "2026-03-01T08:00:00Z",
}


@pytest.fixture(scope="module")
def stack(test_stack: _TestStack) -> StackSettings:
    """The session stack, its schema registry included."""
    return test_stack.everything()


@pytest.fixture
def topic(stack: StackSettings) -> Iterator[str]:
    """A change topic of the test's own, and a dead-letter topic named after it; both deleted afterwards."""
    name = f"avro{uuid.uuid4().hex[:10]}.public.assignments"
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30).values():
        future.result()
    yield name
    delete_topics(stack.kafka_bootstrap, lambda t: t in (name, f"{name}.dlq"))


def register(url: str, subject: str, schema: dict[str, Any]) -> int:
    body = {"schemaType": "AVRO", "schema": json.dumps(schema)}
    answer = requests.post(
        f"{url}/subjects/{subject}/versions", json=body, headers={"Content-Type": JSON_TYPE}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    schema_id = answer.json()["id"]
    assert isinstance(schema_id, int)
    return schema_id


def produce(bootstrap: str, topic: str, values: list[tuple[bytes, list[tuple[str, str | bytes | None]]]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value, headers in values:
        producer.produce(topic, value=value, headers=headers)
    assert producer.flush(30) == 0


def consume_all(bootstrap: str, topic: str, count: int) -> list[Message]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    read: list[Message] = []

    def all_read() -> bool | None:
        read.extend(m for m in consumer.consume(count, 1.0) if m.error() is None)
        return True if len(read) >= count else None

    try:
        until(f"{count} messages on {topic}", all_read)
    finally:
        consumer.close()
    return read


def change(
    op: str, lsn: int, after: dict[str, Any] | None = None, before: dict[str, Any] | None = None
) -> dict[str, Any]:
    return av.change(op, after, before, lsn=lsn, sequence=f'["{lsn - 50}","{lsn}"]')


def test_avro_changes_decode_through_the_registry_and_an_unknown_id_stops(stack: StackSettings, topic: str) -> None:
    url = stack.registry_url
    schema = av.envelope_schema(topic, av.ASSIGNMENT_COLUMNS)
    key = av.key_schema(topic)
    value_id = register(url, f"{topic}-value", schema)
    key_id = register(url, f"{topic}-key", key)
    served = requests.get(f"{url}/schemas/ids/{value_id}", timeout=30).json()
    assert json.loads(served["schema"]) == schema  # the connect.* properties survive the registry

    moved = {**ROW, "id": 2, "description": UNAVAILABLE_VALUE_PLACEHOLDER}
    json_row = {**ROW, "id": 3, "max_score": "12.00"}
    json_change = {"op": "c", "after": json_row, "before": None, "source": {"lsn": 1400, "ts_us": 1}}
    produce(
        stack.kafka_bootstrap,
        topic,
        [
            (av.framed(value_id, schema, change("c", 1100, ROW)), []),
            (
                av.framed(value_id, schema, change("c", 1200, moved)),
                [(OLD_KEY_HEADER, av.framed(key_id, key, {"id": 1}))],
            ),
            (av.framed(value_id, schema, change("t", 1300)), []),
            (json.dumps(json_change).encode(), []),
            (av.framed(value_id + 100_000, schema, change("c", 1500, ROW)), []),
        ],
    )
    messages = consume_all(stack.kafka_bootstrap, topic, 5)
    avro = AvroChanges(SchemaRegistrySettings(url))
    try:
        batch, letters, errors = collect_batch(messages[:4], {topic: ASSIGNMENTS}, avro)
        assert (letters, errors, batch.next_offsets) == ([], [], {(topic, 0): 4})
        events = [decode_change(ASSIGNMENTS, m.value(), message_headers(m), avro) for m in messages[:4]]
        created, moved_event, truncated, from_json = events
        assert isinstance(created, ChangeEvent) and isinstance(moved_event, ChangeEvent)
        assert created.values["max_score"] == Decimal("87.50")
        assert (moved_event.key, moved_event.previous_key, moved_event.unavailable) == (
            (2,),
            (1,),
            frozenset({"description"}),
        )
        assert isinstance(truncated, TableTruncated)
        assert isinstance(from_json, ChangeEvent) and str(from_json.values["max_score"]) == "12.00"

        with pytest.raises(UnknownSchemaId) as stop:
            collect_batch(messages[4:], {topic: ASSIGNMENTS}, avro)
        assert f"{topic}[0] offset 4" in str(stop.value)
        assert str(value_id + 100_000) in str(stop.value) and url in str(stop.value)
    finally:
        avro.close()


def _daemon(stack: StackSettings, topic: str, database: str, registry_url: str, state: Path) -> SinkDaemon:
    settings = SinkSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
            "CDCSYNC_SINK_DB_URL": database,
            "CDCSYNC_SINK_GROUP": f"{topic}-sink",
            "CDCSYNC_DLQ_TOPIC": f"{topic}.dlq",
            "SCHEMA_REGISTRY_URL": registry_url,
        }
    )
    return SinkDaemon(settings, {topic: ASSIGNMENTS}, state_file=state, policy=RetryPolicy(0.2, 1.0, 0.1))


def _in_thread(run: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # the test's thread looks at it
            failures.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, failures


def _dead_letters(bootstrap: str, dlq: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"dlq-{uuid.uuid4().hex}"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(dlq, 0), timeout=10)
        return int(high - low)
    finally:
        consumer.close()


def _replica(database: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        try:
            return conn.execute("SELECT id, title, max_score FROM cdcsync.assignments ORDER BY id").fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def test_a_registry_outage_is_waited_out_and_applies_exactly_once(
    stack: StackSettings, topic: str, fresh_database: str, tmp_path: Path
) -> None:
    url = stack.registry_url
    schema = av.envelope_schema(topic, av.ASSIGNMENT_COLUMNS)
    value_id = register(url, f"{topic}-value", schema)
    produce(
        stack.kafka_bootstrap,
        topic,
        [
            (av.framed(value_id, schema, change("c", 1100, ROW)), []),
            (av.framed(value_id, schema, change("u", 1200, {**ROW, "title": "Essay, revised"})), []),
            (av.framed(value_id, schema, change("c", 1300, {**ROW, "id": 2, "max_score": Decimal("5.25")})), []),
        ],
    )
    registry = urlsplit(url)
    assert registry.hostname is not None and registry.port is not None
    forwarder = TcpForwarder(TcpForwarder.free_port(), (registry.hostname, registry.port))
    state = tmp_path / "sink-state.json"
    daemon = _daemon(stack, topic, fresh_database, f"http://127.0.0.1:{forwarder.port}{registry.path}", state)
    stop = threading.Event()
    thread, failures = _in_thread(lambda: daemon.run(stop))
    try:

        def registry_lost() -> bool | None:
            assert not failures, failures
            current = read_state(state)
            lost = [] if current is None else [d.dependency for d in current.lost]
            return True if lost == [SchemaRegistryUnavailable.dependency] else None

        until("the sink to report the registry lost", registry_lost, timeout=120)
        assert _replica(fresh_database) == []
        assert _dead_letters(stack.kafka_bootstrap, f"{topic}.dlq") == 0

        forwarder.open()
        expected = [(1, "Essay, revised", Decimal("87.50")), (2, "Essay", Decimal("5.25"))]
        until(
            "the batch applied once the registry is back",
            lambda: True if _replica(fresh_database) == expected else None,
            timeout=120,
        )
        assert not failures, failures
        current = read_state(state)
        assert current is not None and current.state == "running" and current.lost == ()
        assert _dead_letters(stack.kafka_bootstrap, f"{topic}.dlq") == 0
        ledgers = assert_ledger_clean(fresh_database, f"{topic}-sink")
        assert [(x.topic, x.partition) for x in ledgers] == [(topic, 0)]
        with psycopg.connect(fresh_database) as conn:
            stored = conn.execute(
                "SELECT next_offset FROM cdcsync.consumer_offsets WHERE topic = %s", (topic,)
            ).fetchall()
        assert stored == [(3,)]
    finally:
        stop.set()
        thread.join(timeout=60)
        forwarder.close()


def test_an_unknown_schema_id_stops_the_daemon_with_nothing_moved(
    stack: StackSettings, topic: str, fresh_database: str, tmp_path: Path
) -> None:
    schema = av.envelope_schema(topic, av.ASSIGNMENT_COLUMNS)
    produce(stack.kafka_bootstrap, topic, [(av.framed(2**31 - 1, schema, change("c", 1100, ROW)), [])])
    daemon = _daemon(stack, topic, fresh_database, stack.registry_url, tmp_path / "sink-state.json")
    stop = threading.Event()
    thread, failures = _in_thread(lambda: daemon.run(stop))
    try:
        until("the sink to stop", lambda: failures or None, timeout=120)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(failures) == 1 and isinstance(failures[0], UnknownSchemaId), failures
    assert failures[0].exit_code == 24
    assert f"{topic}[0] offset 0" in str(failures[0])
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT count(*) FROM cdcsync.consumer_offsets").fetchone() == (0,)
    assert _dead_letters(stack.kafka_bootstrap, f"{topic}.dlq") == 0
