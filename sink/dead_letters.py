"""Dead letters: messages the sink cannot apply, written to a Kafka topic with the reason.

A dead letter keeps the original key, value and headers, and adds headers that
say why: ``cdcsync.error.class``, ``cdcsync.error.message``,
``cdcsync.original.topic``, ``cdcsync.original.partition`` and
``cdcsync.original.offset``. ``write`` returns only once Kafka has
acknowledged every letter (acks=all); otherwise it raises
``DeadLetterWriteFailed`` and the caller must not advance its offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from sink.change_event import MessageRef
from sink.errors import DeadLetterWriteFailed

logger = logging.getLogger(__name__)

ERROR_CLASS_HEADER = "cdcsync.error.class"
ERROR_MESSAGE_HEADER = "cdcsync.error.message"
ORIGINAL_TOPIC_HEADER = "cdcsync.original.topic"
ORIGINAL_PARTITION_HEADER = "cdcsync.original.partition"
ORIGINAL_OFFSET_HEADER = "cdcsync.original.offset"


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
        """Create the dead-letter topic if it does not exist (idempotent)."""
        admin = AdminClient(self._admin_config)
        futures = admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=-1)])
        for future in futures.values():
            try:
                future.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def write(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        if self._producer is None:
            self._producer = self._producer_factory(self._producer_config)
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(str(err))

        for letter in letters:
            self._producer.produce(
                self.topic, key=letter.key, value=letter.value, headers=letter.kafka_headers(), on_delivery=delivered
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
        if remaining or failures:
            raise DeadLetterWriteFailed(
                f"{len(letters)} dead letters not acknowledged by {self.topic} "
                f"({remaining} pending, errors: {failures[:3]}); offsets not advanced"
            )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._flush_timeout_s)
            self._producer = None
