"""Dead letters are durable before offsets move: a write Kafka does not acknowledge raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from sink.change_event import MessageRef
from sink.dead_letters import DeadLetter, DeadLetterTopic
from sink.errors import DeadLetterWriteFailed


class StandInProducer:
    """Acknowledges or refuses every message, like a broker that is up or cannot take writes."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.produced: list[dict[str, Any]] = []
        self._callbacks: list[Callable[[KafkaError | None, Any], None]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, **kwargs})
        self._callbacks.append(kwargs["on_delivery"])

    def flush(self, _timeout: float) -> int:
        for callback in self._callbacks:
            callback(KafkaError(KafkaError._MSG_TIMED_OUT) if self.refuse else None, None)
        self._callbacks.clear()
        return 0


LETTER = DeadLetter(
    ref=MessageRef("course.public.lectures", 0, 41),
    key=b'{"id": 1}',
    value=b"{broken",
    headers=(("__debezium.context.taskId", b"0"),),
    error_class="InvalidMessage",
    reason="message value is not valid JSON",
)


def _topic(producer: StandInProducer) -> DeadLetterTopic:
    return DeadLetterTopic("dlq", {}, {}, producer_factory=lambda _config: producer)  # type: ignore[arg-type,return-value]


def test_letter_keeps_the_message_and_says_why() -> None:
    producer = StandInProducer(refuse=False)
    _topic(producer).write([LETTER])
    (sent,) = producer.produced
    assert (sent["topic"], sent["key"], sent["value"]) == ("dlq", b'{"id": 1}', b"{broken")
    headers = dict(sent["headers"])
    assert headers["__debezium.context.taskId"] == b"0"
    assert headers["cdcsync.error.class"] == b"InvalidMessage"
    assert headers["cdcsync.error.message"] == b"message value is not valid JSON"
    assert (headers["cdcsync.original.topic"], headers["cdcsync.original.partition"]) == (
        b"course.public.lectures",
        b"0",
    )
    assert headers["cdcsync.original.offset"] == b"41"


def test_a_letter_kafka_does_not_take_stops_the_sink() -> None:
    with pytest.raises(DeadLetterWriteFailed, match="offsets not advanced"):
        _topic(StandInProducer(refuse=True)).write([LETTER])
