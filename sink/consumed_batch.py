"""A consumed batch of Kafka messages, decoded: changes, dead letters, and the consumer's errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaError, Message

from cdcsync.sink.avro_changes import AvroChanges
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import MessageRef
from cdcsync.sink.dead_letters import DeadLetter
from cdcsync.sink.decoding import decode_change
from cdcsync.sink.errors import InvalidMessage, SinkCannotContinue
from cdcsync.sink.kafka_clients import message_headers
from cdcsync.sink.source_tables import SourceTable

logger = logging.getLogger(__name__)

# Errors a consumer reports while a topic does not exist yet (before the
# connector's snapshot created it); the subscription picks it up later.
_TRANSIENT_CONSUMER_ERRORS = frozenset({KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART})


def collect_batch(
    messages: Sequence[Message], routing: Mapping[str, SourceTable], avro: AvroChanges | None = None
) -> tuple[ChangeBatch, list[DeadLetter], list[KafkaError]]:
    """Decode a consumed batch, and the consumer's errors in it; ``avro`` reads the Avro messages.

    Raises, before anything is applied: ``SchemaRegistryUnavailable`` (read the batch again once the registry
    is back), ``SinkCannotContinue`` (an Avro message with no registry, an unknown schema id, refused
    credentials; the message names where it was read).
    """
    batch = ChangeBatch()
    letters: list[DeadLetter] = []
    errors: list[KafkaError] = []
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() in _TRANSIENT_CONSUMER_ERRORS:
                logger.debug("consumer: %s", error)
            else:
                errors.append(error)
            continue
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            continue
        ref = MessageRef(topic, partition, offset)
        table = routing.get(topic)
        headers = message_headers(message)
        try:
            if table is None:
                raise InvalidMessage(f"no source table is routed from topic {topic!r}")
            event = decode_change(table, message.value(), headers, avro)
        except SinkCannotContinue as exc:
            raise type(exc)(f"{topic}[{partition}] offset {offset}: {exc}") from exc
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
    return batch, letters, errors
