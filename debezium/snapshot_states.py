"""The initial snapshot of each connector, read from Kafka Connect and the notification topic.

``snapshot_states`` is the public entry point (``cdcsync connectors apply --wait``,
``up``, ``status``, and the test suite's session guard call it); the verdict itself
is ``initial_snapshot.decide``, pure.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectorNotFound, ConnectTimeout
from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.initial_snapshot import (
    RECOVER_COMMAND,
    SnapshotKind,
    SnapshotState,
    StoredOffset,
    classify_offset,
    decide,
    reports_initial_snapshot,
)
from cdcsync.debezium.record_values import RecordDecoder
from cdcsync.debezium.snapshot_notifications import (
    NOTIFICATION_TOPIC_KEY,
    SnapshotNotFinished,
    SnapshotNotification,
    parse_any_notification,
)


class InitialSnapshotInterrupted(SnapshotNotFinished):
    """A connector's initial snapshot was interrupted and Debezium will not redo it: rows are missing from Kafka."""

    exit_code = 12

    def __init__(self, states: Sequence[SnapshotState]) -> None:
        super().__init__("; ".join(state.summary() for state in states) + f". Fix: {RECOVER_COMMAND}")
        self.states = tuple(states)


def snapshot_states(
    client: ConnectClient,
    bootstrap_servers: str,
    specs: Sequence[ConnectorSpec],
    *,
    timeout: float = 30.0,
    registry_url: str | None = None,
) -> dict[str, SnapshotState]:
    """Connector name -> the verdict on its initial snapshot (complete, running, interrupted with the tables).

    Reads each spec's notification topic once, whole (it is small), and the
    connector's status and stored offset from Connect. A connector that does not
    exist is judged from its notifications and offsets as any stopped one. Specs
    that are not Debezium PostgreSQL connectors with the ``sink`` notification
    channel are left out of the result. ``registry_url`` (the Confluent-compatible API)
    decodes the notifications Avro connectors wrote.
    """
    specs = [spec for spec in specs if reports_initial_snapshot(spec)]
    # Offsets and states first: Connect commits an offset only once its record (a notification
    # among them) is in Kafka, so notifications read afterwards explain every offset read before.
    seen = {spec.name: (_stored_offset(client, spec), _task_running(client, spec.name)) for spec in specs}
    topics = {spec.config.get(NOTIFICATION_TOPIC_KEY, "") for spec in specs} - {""}
    notifications = {
        topic: read_notifications(bootstrap_servers, topic, timeout, registry_url) for topic in sorted(topics)
    }
    states = {}
    for spec in specs:
        offset, running = seen[spec.name]
        states[spec.name] = decide(
            spec, notifications.get(spec.config.get(NOTIFICATION_TOPIC_KEY, ""), []), offset, running
        )
    return states


def wait_for_snapshots(
    client: ConnectClient,
    bootstrap_servers: str,
    specs: Sequence[ConnectorSpec],
    timeout: float,
    *,
    poll_s: float = 1.0,
    on_running: Callable[[SnapshotState], None] | None = None,
    registry_url: str | None = None,
) -> dict[str, SnapshotState]:
    """Block until no initial snapshot of ``specs`` is running; their states (complete or interrupted).

    Raises ``ConnectTimeout`` naming the snapshots still running at the deadline.
    """
    deadline = time.monotonic() + timeout
    reported: set[tuple[str, tuple[str, ...]]] = set()
    while True:
        states = snapshot_states(client, bootstrap_servers, specs, registry_url=registry_url)
        running = [s for s in states.values() if s.kind is SnapshotKind.RUNNING]
        if not running:
            return states
        for state in running:
            if on_running is not None and (state.connector, state.tables) not in reported:
                reported.add((state.connector, state.tables))
                on_running(state)
        if time.monotonic() >= deadline:
            raise ConnectTimeout(
                f"initial snapshot still running after {timeout:g}s: {'; '.join(s.line() for s in running)}"
            )
        time.sleep(poll_s)


def read_notifications(
    bootstrap_servers: str, topic: str, timeout: float = 30.0, registry_url: str | None = None
) -> list[SnapshotNotification]:
    """Every snapshot notification in ``topic``, in order, up to its end now; none when the topic does not exist."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"cdcsync-snapshot-states-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return []
        ends = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high > low:
                ends[partition] = high
        if not ends:
            return []
        # The notification topic has one partition (topic.creation.default.partitions=1); with more, the
        # order between partitions is lost, and this reads them one after another.
        found: list[SnapshotNotification] = []
        decoder = RecordDecoder(registry_url)
        for partition, end in sorted(ends.items()):
            deadline = time.monotonic() + timeout
            found.extend(_read_partition(consumer, topic, partition, end, deadline=deadline, decoder=decoder))
        return found
    except KafkaException as exc:
        raise SnapshotNotFinished(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()


def _read_partition(
    consumer: Consumer, topic: str, partition: int, end: int, *, deadline: float, decoder: RecordDecoder
) -> list[SnapshotNotification]:
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    found = []
    next_offset = 0
    while next_offset < end:
        if time.monotonic() > deadline:
            raise SnapshotNotFinished(f"reading {topic}[{partition}]: not at offset {end} in time (at {next_offset})")
        for message in consumer.consume(500, timeout=0.5):
            error, offset = message.error(), message.offset() or 0
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                next_offset = max(next_offset, offset)  # offsets may have gaps (compaction)
            elif error is not None:
                raise SnapshotNotFinished(f"reading {topic}[{partition}]: {error}")
            elif offset < end:
                next_offset = offset + 1
                notification = parse_any_notification(message.value(), decoder, topic)
                if notification is not None:
                    found.append(notification)
    return found


def _stored_offset(client: ConnectClient, spec: ConnectorSpec) -> StoredOffset:
    try:
        return classify_offset(client.get_offsets(spec.name), spec.topic_prefix)
    except ConnectorNotFound:
        # Gone (Connect keeps its offsets, but serves them only for an existing connector), or a
        # Connect older than 3.6 without the offsets API: the notifications must tell.
        return StoredOffset.NONE


def _task_running(client: ConnectClient, name: str) -> bool:
    try:
        return client.connector_status(name).running
    except ConnectorNotFound:
        return False
