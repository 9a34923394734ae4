"""When an incremental snapshot is done: Debezium's notifications, read from Kafka.

The connectors enable Debezium's ``sink`` notification channel
(``notification.enabled.channels=sink``), which writes a record to
``notification.sink.topic.name`` when an incremental snapshot starts, after each
chunk (IN_PROGRESS), when a table's scan completes (TABLE_SCAN_COMPLETED, with
its row count and status) and when the snapshot completes or is aborted. The
record's ``id`` is the id of the signal that started the snapshot
(``IncrementalSnapshotNotificationService`` uses the context's correlation id),
so a waiter recognises its own snapshot without JMX.

One caveat, from Debezium: a signal that arrives while a snapshot runs joins it,
and the notifications from then on carry the newest signal's id. Run one
snapshot at a time per connector (resync does) and wait for each.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.record_values import RecordDecoder
from cdcsync.errors import CdcsyncError

NOTIFICATION_TOPIC_KEY = "notification.sink.topic.name"
INCREMENTAL_SNAPSHOT = "Incremental Snapshot"
INITIAL_SNAPSHOT = "Initial Snapshot"


class SnapshotNotFinished(CdcsyncError):
    """The snapshot did not finish in time, or was aborted, or skipped the table."""

    exit_code = 1


@dataclass(frozen=True)
class SnapshotNotification:
    """One Debezium notification about an incremental or the initial snapshot."""

    id: str
    # STARTED | PAUSED | RESUMED | IN_PROGRESS | TABLE_SCAN_COMPLETED | COMPLETED | ABORTED, and SKIPPED (initial)
    type: str
    connector: str  # the logical name (topic.prefix) in additional_data.connector_name
    data: Mapping[str, str] = field(default_factory=dict)
    aggregate: str = INCREMENTAL_SNAPSHOT  # aggregate_type: INCREMENTAL_SNAPSHOT or INITIAL_SNAPSHOT

    @property
    def scanned_table(self) -> str | None:
        return self.data.get("scanned_collection")

    @property
    def rows_scanned(self) -> int | None:
        raw = self.data.get("total_rows_scanned")
        return int(raw) if raw is not None and raw.isdigit() else None


def parse_notification(
    value: bytes | None, decoder: RecordDecoder | None = None, topic: str = ""
) -> SnapshotNotification | None:
    """A notification record's value -> the notification, or None if not an incremental snapshot's.

    JSON values decode without ``decoder`` (pure); Avro-framed ones need a decoder with a registry.
    """
    notification = parse_any_notification(value, decoder, topic)
    return notification if notification is not None and notification.aggregate == INCREMENTAL_SNAPSHOT else None


def parse_any_notification(
    value: bytes | None, decoder: RecordDecoder | None = None, topic: str = ""
) -> SnapshotNotification | None:
    """A notification record's value (JSON with or without the schema wrapper, or Confluent-framed Avro)
    -> an incremental or the initial snapshot's notification, or None."""
    document = (decoder or RecordDecoder()).document(topic, value)
    if isinstance(document, dict) and "payload" in document and "schema" in document:
        document = document["payload"]
    if not isinstance(document, dict) or document.get("aggregate_type") not in (INCREMENTAL_SNAPSHOT, INITIAL_SNAPSHOT):
        return None
    data = document.get("additional_data") or {}
    return SnapshotNotification(
        id=str(document.get("id")),
        type=str(document.get("type")),
        connector=str(data.get("connector_name", "")),
        data={str(k): str(v) for k, v in data.items()},
        aggregate=str(document["aggregate_type"]),
    )


def snapshot_outcome(notification: SnapshotNotification, spec: ConnectorSpec, signal_id: str, table: str) -> bool:
    """True when ``notification`` says the snapshot ``signal_id`` asked for has finished ``table``. Pure.

    Raises ``SnapshotNotFinished`` when it was aborted, or the scan ended without
    reading the table (no primary key, unknown schema, an SQL error in ``--where``...).
    """
    if notification.id != signal_id or notification.connector != spec.topic_prefix:
        return False
    if notification.type == "ABORTED":
        raise SnapshotNotFinished(f"the incremental snapshot {signal_id} of {table} was aborted")
    if notification.type == "TABLE_SCAN_COMPLETED" and notification.scanned_table == table:
        status = notification.data.get("status", "SUCCEEDED")
        if status not in ("SUCCEEDED", "EMPTY"):
            raise SnapshotNotFinished(f"the incremental snapshot {signal_id} of {table} ended with status {status}")
        return True
    return notification.type == "COMPLETED"


def wait_for_snapshot(
    bootstrap_servers: str,
    spec: ConnectorSpec,
    signal_id: str,
    table: str,
    *,
    timeout: float,
    on_progress: Callable[[SnapshotNotification], None] | None = None,
    registry_url: str | None = None,
) -> SnapshotNotification:
    """Block until the snapshot ``signal_id`` of ``table`` is done; the notification that said so.

    Reads the notification topic from its start (it is small and compacted per
    signal id), so calling it after the signal was sent misses nothing. ``registry_url``
    (the Confluent-compatible API) decodes notifications an Avro connector wrote.
    """
    topic = spec.config.get(NOTIFICATION_TOPIC_KEY)
    if not topic:
        raise SnapshotNotFinished(f"{spec.name} has no {NOTIFICATION_TOPIC_KEY}: its snapshots cannot be followed")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"cdcsync-snapshot-wait-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 2_000,
        }
    )
    deadline = time.monotonic() + timeout
    decoder = RecordDecoder(registry_url)
    try:
        # The topic appears with the connector's first notification; until then, retry the assignment.
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                        continue
                    raise SnapshotNotFinished(f"reading {topic}: {error}")
                notification = parse_notification(message.value(), decoder, topic)
                if notification is None:
                    continue
                if notification.id == signal_id and on_progress is not None:
                    on_progress(notification)
                if snapshot_outcome(notification, spec, signal_id, table):
                    return notification
    finally:
        consumer.close()
    raise SnapshotNotFinished(f"the incremental snapshot {signal_id} of {table} did not finish within {timeout:g}s")
