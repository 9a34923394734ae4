"""Dead letters are durable before offsets move: a write Kafka does not acknowledge raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from sink.change_event import MessageRef
from sink.dead_letters import DeadLetter, DeadLettersUnacknowledged, DeadLetterTopic
from sink.errors import DeadLetterWriteFailed


class StandInProducer:
    """Acknowledges every message, or fails each with ``error``: a broker that is up, down, or refusing."""

    def __init__(self, error: int | None = None) -> None:
        self.error = error
        self.produced: list[dict[str, Any]] = []
        self._callbacks: list[Callable[[KafkaError | None, Any], None]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, **kwargs})
        self._callbacks.append(kwargs["on_delivery"])

    def flush(self, _timeout: float) -> int:
        for callback in self._callbacks:
            callback(None if self.error is None else KafkaError(self.error), None)
        self._callbacks.clear()
        return 0

    def purge(self) -> None:
        self._callbacks.clear()


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
    producer = StandInProducer()
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


@pytest.mark.parametrize("refusal", [KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.TOPIC_AUTHORIZATION_FAILED])
def test_a_letter_kafka_refuses_for_good_stops_the_sink(refusal: int) -> None:
    with pytest.raises(DeadLetterWriteFailed, match="offsets not advanced"):
        _topic(StandInProducer(refusal)).write([LETTER])


@pytest.mark.parametrize("outage", [KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError.NOT_ENOUGH_REPLICAS])
def test_a_letter_a_broker_down_did_not_take_is_pending_for_a_retry(outage: int) -> None:
    producer = StandInProducer(outage)
    topic = _topic(producer)
    with pytest.raises(DeadLettersUnacknowledged) as raised:
        topic.write([LETTER])
    assert raised.value.pending == (LETTER,)
    producer.error = None  # the broker is back: the retry goes through
    topic.write(raised.value.pending)
    assert len(producer.produced) == 2
