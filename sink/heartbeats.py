"""Debezium's heartbeat records: how the sink knows its sources are live while nothing changes.

Every ``heartbeat.interval.ms`` each connector writes a record to
``__debezium-heartbeat.<topic.prefix>`` whose value carries ``ts_ms``, the time
Debezium emitted it. Debezium emits it from its streaming loop, behind every
change it had read by then. So when the sink holds all of a connector's change
topics up to Kafka's high watermark and that connector's latest heartbeat is
recent, the sink is current with the source, even if the last change is hours old.

Heartbeats are read by their own consumer (``assign``, no group, no stored
offsets, starting at each partition's last record): they never enter a
``ChangeBatch``, the offset ledger or the dead-letter topic, and every sink
instance of a group sees every source's heartbeats.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from cdcsync.sink.avro_changes import MAGIC_BYTE, AvroChanges
from cdcsync.sink.errors import DependencyUnavailable, InvalidMessage, SinkCannotContinue

logger = logging.getLogger(__name__)

HEARTBEAT_TOPIC_PREFIX = "__debezium-heartbeat."
# librdkafka's logical offset "n records before the end" is OFFSET_TAIL_BASE - n.
_OFFSET_TAIL_BASE = -2000
_DISCOVER_EVERY_S = 5.0
_NO_TIMESTAMP = 0  # confluent_kafka.TIMESTAMP_NOT_AVAILABLE


def source_of_topic(topic: str) -> str:
    """The connector's ``topic.prefix`` of a change topic ``<prefix>.<schema>.<table>``."""
    parts = topic.rsplit(".", 2)
    return parts[0] if len(parts) == 3 else topic


def heartbeat_topic(source: str) -> str:
    return f"{HEARTBEAT_TOPIC_PREFIX}{source}"


@dataclass(frozen=True)
class Heartbeat:
    source: str  # the connector's topic.prefix
    emitted_at: float  # epoch seconds, the record's ts_ms (Debezium's clock)
    written_at: float  # epoch seconds, the record's Kafka timestamp (when Connect produced it)


def decode_heartbeat(
    topic: str, value: bytes | None, written_at: float, avro: AvroChanges | None = None
) -> Heartbeat | None:
    """A heartbeat record's value (JSON, with or without a schema envelope, or Confluent-framed Avro read
    through ``avro``); None if it is not one or cannot be read now (heartbeats are informational)."""
    if not topic.startswith(HEARTBEAT_TOPIC_PREFIX) or value is None:
        return None
    try:
        document: Any = (
            avro.record(value, f"heartbeat on {topic}")
            if avro is not None and value[:1] == bytes([MAGIC_BYTE])
            else json.loads(value)
        )
    except (ValueError, InvalidMessage, DependencyUnavailable, SinkCannotContinue) as exc:
        logger.debug("heartbeat on %s not read: %s", topic, exc)
        return None
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        document = document["payload"]
    ts_ms = document.get("ts_ms") if isinstance(document, dict) else None
    if not isinstance(ts_ms, int) or isinstance(ts_ms, bool):
        return None
    return Heartbeat(topic.removeprefix(HEARTBEAT_TOPIC_PREFIX), ts_ms / 1000, written_at)


class HeartbeatReader:
    """Reads the heartbeat topics of ``sources``. Nothing connects in the constructor.

    ``poll`` never blocks for long and never raises for Kafka being away: the
    consumer loop calls it once per turn, and heartbeats are informational.
    """

    def __init__(self, config: dict[str, Any], sources: Iterable[str], avro: AvroChanges | None = None) -> None:
        self._config = config
        self._avro = avro
        self._topics = sorted({heartbeat_topic(source) for source in sources})
        self._consumer: Consumer | None = None
        self._assigned: set[str] = set()
        self._last_discovery = 0.0

    def poll(self) -> list[Heartbeat]:
        if not self._topics:
            return []
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        if len(self._assigned) < len(self._topics):
            self._discover(self._consumer)
        if not self._assigned:
            return []
        beats = []
        for message in self._consumer.consume(500, 0):
            beat = _heartbeat_of(message, self._avro)
            if beat is not None:
                beats.append(beat)
        return beats

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self._consumer = None

    def _discover(self, consumer: Consumer) -> None:
        """Assign the heartbeat topics that exist by now (a connector creates its topic with its first beat)."""
        if time.monotonic() - self._last_discovery < _DISCOVER_EVERY_S:
            return
        self._last_discovery = time.monotonic()
        try:
            metadata = consumer.list_topics(timeout=0.5)
        except KafkaException as exc:
            logger.debug("heartbeat topics: %s", exc)
            return
        found = [t for t in self._topics if t not in self._assigned and t in metadata.topics]
        partitions = [
            TopicPartition(topic, partition, _OFFSET_TAIL_BASE - 1)
            for topic in found
            for partition in metadata.topics[topic].partitions
        ]
        if partitions:
            consumer.incremental_assign(partitions)
            self._assigned.update(found)
            logger.info("reading heartbeats of %s", ", ".join(found))


def _heartbeat_of(message: Message, avro: AvroChanges | None) -> Heartbeat | None:
    if message.error() is not None:
        logger.debug("heartbeat consumer: %s", message.error())
        return None
    topic = message.topic()
    value = message.value()
    if topic is None or not isinstance(value, bytes | None):
        return None
    kind, ms = message.timestamp()
    return decode_heartbeat(topic, value, ms / 1000 if kind != _NO_TIMESTAMP else time.time(), avro)
