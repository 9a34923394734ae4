"""Dead letters: messages the sink cannot apply, written to a Kafka topic with the reason.

A dead letter keeps the original key, value and headers, and adds headers that
say why: ``cdcsync.error.class``, ``cdcsync.error.message``,
``cdcsync.original.topic``, ``cdcsync.original.partition`` and
``cdcsync.original.offset``. ``write`` returns only once Kafka has
acknowledged every letter (acks=all); otherwise it raises, and the caller must
not advance its offsets: ``DeadLettersUnacknowledged`` while the broker is
briefly down (send the pending ones again), ``DeadLetterWriteFailed`` if Kafka
refuses a letter for good (the sink stops).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from sink.change_event import MessageRef
from sink.errors import DeadLetterWriteFailed, KafkaUnavailable, kafka_failure
from sink.kafka_clients import message_headers

logger = logging.getLogger(__name__)

ERROR_CLASS_HEADER = "cdcsync.error.class"
ERROR_MESSAGE_HEADER = "cdcsync.error.message"
ORIGINAL_TOPIC_HEADER = "cdcsync.original.topic"
ORIGINAL_PARTITION_HEADER = "cdcsync.original.partition"
ORIGINAL_OFFSET_HEADER = "cdcsync.original.offset"


class DeadLettersUnacknowledged(KafkaUnavailable):
    """Kafka is briefly unable to take dead letters; ``pending`` are the ones to send again."""

    def __init__(self, message: str, pending: tuple[DeadLetter, ...]) -> None:
        super().__init__(message)
        self.pending = pending


@dataclass(frozen=True)
class DeadLetter:
    ref: MessageRef
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, str | bytes | None], ...]
    error_class: str
    reason: str

    def kafka_headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            *self.headers,
            (ERROR_CLASS_HEADER, self.error_class.encode()),
            (ERROR_MESSAGE_HEADER, self.reason.encode()),
            (ORIGINAL_TOPIC_HEADER, self.ref.topic.encode()),
            (ORIGINAL_PARTITION_HEADER, str(self.ref.partition).encode()),
            (ORIGINAL_OFFSET_HEADER, str(self.ref.offset).encode()),
        ]


class DeadLetterTopic:
    """Writes dead letters durably. The producer is created on first use."""

    def __init__(
        self,
        topic: str,
        producer_config: dict[str, Any],
        admin_config: dict[str, Any],
        flush_timeout_s: float = 30.0,
        producer_factory: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self.topic = topic
        self._producer_config = producer_config
        self._admin_config = admin_config
        self._flush_timeout_s = flush_timeout_s
        self._producer_factory = producer_factory
        self._producer: Producer | None = None

    def ensure_topic(self) -> None:
        """Create the dead-letter topic if it does not exist (idempotent).

        Raises ``KafkaUnavailable`` while the broker cannot answer.
        """
        admin = AdminClient(self._admin_config)
        futures = admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=-1)])
        for future in futures.values():
            try:
                future.result(timeout=30)
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                decision = kafka_failure(error)
                if decision is None:
                    raise
                raise decision from exc

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Returns once Kafka acknowledged every letter.

        Raises ``DeadLettersUnacknowledged`` (with the letters to send again) if the
        broker is briefly unable to take them, and ``DeadLetterWriteFailed`` if Kafka
        refuses one for good. Either way the caller must not advance its offsets.
        """
        if not letters:
            return
        if self._producer is None:
            self._producer = self._producer_factory(self._producer_config)
        failures: list[KafkaError] = []
        acknowledged: set[int] = set()

        def delivered(index: int) -> Callable[[KafkaError | None, Message], None]:
            def report(err: KafkaError | None, _msg: Message) -> None:
                if err is None:
                    acknowledged.add(index)
                else:
                    failures.append(err)

            return report

        for index, letter in enumerate(letters):
            self._producer.produce(
                self.topic,
                key=letter.key,
                value=letter.value,
                headers=letter.kafka_headers(),
                on_delivery=delivered(index),
            )
            logger.warning(
                "dead letter %s[%d]@%d: %s: %s",
                letter.ref.topic,
                letter.ref.partition,
                letter.ref.offset,
                letter.error_class,
                letter.reason,
            )
        remaining = self._producer.flush(self._flush_timeout_s)
        if len(acknowledged) == len(letters):
            return
        errors = [f"{err.name()}: {err.str()}" for err in failures[:3]]
        summary = (
            f"{len(letters)} dead letters not acknowledged by {self.topic} ({remaining} pending, errors: {errors})"
        )
        refused = next((err for err in failures if not isinstance(kafka_failure(err), KafkaUnavailable)), None)
        if refused is not None:
            raise DeadLetterWriteFailed(f"{summary}; offsets not advanced")
        # A producer that gave up on messages is replaced: the next attempt starts clean.
        self._producer.purge()
        self._producer = None
        raise DeadLettersUnacknowledged(
            summary, tuple(letter for index, letter in enumerate(letters) if index not in acknowledged)
        )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._flush_timeout_s)
            self._producer = None


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as read back from the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    def header(self, name: str) -> str:
        for key, raw in self.headers:
            if key == name and raw is not None:
                return raw.decode("utf-8", errors="replace")
        return ""

    @property
    def original(self) -> MessageRef:
        return MessageRef(
            self.header(ORIGINAL_TOPIC_HEADER),
            int(self.header(ORIGINAL_PARTITION_HEADER) or -1),
            int(self.header(ORIGINAL_OFFSET_HEADER) or -1),
        )

    @property
    def original_headers(self) -> list[tuple[str, str | bytes | None]]:
        """The headers the message had before it became a dead letter."""
        return [(k, v) for k, v in self.headers if not k.startswith(_OWN_HEADER_PREFIX)]


_OWN_HEADER_PREFIX = "cdcsync."
REPLAYED_FROM_HEADER = "cdcsync.replayed.from"


def read_dead_letters(consumer_config: dict[str, Any], topic: str, timeout_s: float = 30.0) -> list[StoredDeadLetter]:
    """Every dead letter in ``topic``, read from the beginning up to the end as of now."""
    consumer = Consumer({**consumer_config, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(metadata.partitions)]
        watermarks = {p.partition: consumer.get_watermark_offsets(p, timeout=10) for p in partitions}
        ends = {partition: high for partition, (_, high) in watermarks.items()}
        consumer.assign(partitions)
        letters: list[StoredDeadLetter] = []
        done = {partition for partition, (low, high) in watermarks.items() if high <= low}
        deadline = time.monotonic() + timeout_s
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                partition, offset = message.partition(), message.offset()
                if message.error() is not None or partition is None or offset is None:
                    continue
                letters.append(
                    StoredDeadLetter(partition, offset, message.key(), message.value(), message_headers(message))
                )
                if offset + 1 >= ends[partition]:
                    done.add(partition)
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        consumer.close()


def replay_dead_letters(
    producer_config: dict[str, Any], letters: Sequence[StoredDeadLetter]
) -> list[tuple[StoredDeadLetter, int]]:
    """Send each letter back to its original topic (after a fix); returns (letter, new offset).

    Safe to repeat: the sink's per-row position guard ignores a change older
    than what it already applied.
    """
    producer = Producer(producer_config)
    results: list[tuple[StoredDeadLetter, int]] = []
    failures: list[str] = []

    def delivered(letter: StoredDeadLetter) -> Callable[[KafkaError | None, Message], None]:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(f"{letter.offset}: {err}")
            else:
                results.append((letter, msg.offset() or 0))

        return report

    for letter in letters:
        # Back into its original partition, next to the key's other changes (the Java and
        # librdkafka default partitioners differ, so the key alone would not land there).
        producer.produce(
            letter.original.topic,
            partition=letter.original.partition,
            key=letter.key,
            value=letter.value,
            headers=[*letter.original_headers, (REPLAYED_FROM_HEADER, f"{letter.partition}:{letter.offset}".encode())],
            on_delivery=delivered(letter),
        )
    if producer.flush(30) or failures:
        raise DeadLetterWriteFailed(f"replay not acknowledged: {failures[:3]}")
    return sorted(results, key=lambda r: (r[0].partition, r[0].offset))
