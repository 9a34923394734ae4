"""The sink daemon's loop. It only orchestrates: consume a batch, decode, write dead
letters durably, apply the batch in one transaction, then tell Kafka the offsets.

Order of effects per batch, which is what makes a crash at any instant safe:
1. dead letters are acknowledged by Kafka (or the loop stops, offsets unmoved);
2. replica, calendar rows and offsets commit in one PostgreSQL transaction;
3. the same offsets are committed to Kafka, for lag tools only.
On (re)assignment, partitions resume from the offsets stored in PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from pipeline.settings import SinkSettings
from sink.calendar_writer import CalendarWriter
from sink.change_batch import ChangeBatch
from sink.change_event import MessageRef
from sink.dead_letters import DeadLetter, DeadLetterTopic
from sink.decoding import decode_change
from sink.errors import InvalidMessage
from sink.kafka_clients import admin_config, consumer_config, message_headers, producer_config
from sink.offset_store import OffsetStore
from sink.schema import migrate
from sink.source_tables import SOURCE_TABLES, SourceTable

logger = logging.getLogger(__name__)

# Errors a consumer reports while a topic does not exist yet (before the
# connector's snapshot created it); the subscription picks it up later.
_TRANSIENT_CONSUMER_ERRORS = frozenset({KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART})


def default_routing() -> dict[str, SourceTable]:
    return {table.default_topic(): table for table in SOURCE_TABLES}


@dataclass
class SinkRunStats:
    batches: int = 0
    messages: int = 0
    changes: int = 0
    dead_letters: int = 0
    calendar_upserts: int = 0
    calendar_deletes: int = 0


def _collect(messages: Sequence[Message], routing: Mapping[str, SourceTable]) -> tuple[ChangeBatch, list[DeadLetter]]:
    """Decode a consumed batch. Pure apart from reading the messages."""
    batch = ChangeBatch()
    letters: list[DeadLetter] = []
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() in _TRANSIENT_CONSUMER_ERRORS:
                logger.debug("consumer: %s", error)
                continue
            raise KafkaException(error)
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            continue
        ref = MessageRef(topic, partition, offset)
        table = routing.get(topic)
        headers = message_headers(message)
        try:
            if table is None:
                raise InvalidMessage(f"no source table is routed from topic {topic!r}")
            event = decode_change(table, message.value(), headers)
        except InvalidMessage as exc:
            key = message.key()
            value = message.value()
            letters.append(
                DeadLetter(
                    ref=ref,
                    key=key if isinstance(key, bytes) else None,
                    value=value if isinstance(value, bytes) else None,
                    headers=headers,
                    error_class=type(exc).__name__,
                    reason=exc.reason,
                )
            )
            batch.add_dead_letter(ref)
            continue
        batch.add(ref, event)
    return batch, letters


class SinkDaemon:
    """Consumes the source topics and keeps ``calendar.calendar_entries`` equal to the rules.

    Nothing connects in the constructor. ``run`` returns when ``stop`` is set,
    or after ``max_batches`` batches (for tests), and always leaves the group.
    """

    def __init__(self, settings: SinkSettings, routing: Mapping[str, SourceTable] | None = None) -> None:
        self._settings = settings
        self._routing = dict(routing or default_routing())
        self._offsets = OffsetStore(settings.group_id)

    def run(self, stop: threading.Event, max_batches: int | None = None) -> SinkRunStats:
        settings = self._settings
        stats = SinkRunStats()
        with psycopg.connect(settings.calendar_db_url, autocommit=True, application_name="cdcsync-sink") as conn:
            migrate(conn)
            writer = CalendarWriter(conn, self._offsets)
            dead_letters = DeadLetterTopic(
                settings.dead_letter_topic, producer_config(settings), admin_config(settings)
            )
            dead_letters.ensure_topic()
            consumer = Consumer(consumer_config(settings))

            def on_assign(client: Consumer, partitions: list[TopicPartition]) -> None:
                stored = self._offsets.load(conn, [(p.topic, p.partition) for p in partitions])
                for p in partitions:
                    p.offset = stored.get((p.topic, p.partition), OFFSET_BEGINNING)
                logger.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions))
                client.assign(partitions)

            consumer.subscribe(sorted(self._routing), on_assign=on_assign)
            try:
                while not stop.is_set() and (max_batches is None or stats.batches < max_batches):
                    messages = consumer.consume(settings.batch_max_messages, settings.batch_max_wait_ms / 1000)
                    if not messages:
                        continue
                    batch, letters = _collect(messages, self._routing)
                    dead_letters.write(letters)
                    result = writer.apply(batch)
                    consumer.commit(
                        offsets=[TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()],
                        asynchronous=True,
                    )
                    stats.batches += 1
                    stats.messages += result.messages
                    stats.changes += result.changes
                    stats.dead_letters += len(letters)
                    stats.calendar_upserts += result.calendar_upserts
                    stats.calendar_deletes += result.calendar_deletes
                    logger.info(
                        "applied batch: %d messages, %d changes, %d dead letters, %d calendar rows written, %d removed",
                        result.messages,
                        result.changes,
                        len(letters),
                        result.calendar_upserts,
                        result.calendar_deletes,
                    )
            finally:
                consumer.close()
                dead_letters.close()
        return stats
