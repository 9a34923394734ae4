"""consume_batch: no wait while data is there, top-ups only under load, capped by count and by time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import Consumer

from cdcsync.sink.batch_consumer import consume_batch
from cdcsync.sink.settings import SinkSettings


class _Scripted:
    """A consumer whose ``poll`` and ``consume`` answers are given in advance; records each call."""

    def __init__(self, first: object | None, answers: Callable[[int, int], list[object]]) -> None:
        self._first = first
        self._answers = answers
        self.polls: list[float] = []
        self.consumes: list[tuple[int, float]] = []

    def poll(self, timeout: float) -> object | None:
        self.polls.append(timeout)
        return self._first

    def consume(self, num_messages: int, timeout: float) -> list[object]:
        self.consumes.append((num_messages, timeout))
        return self._answers(len(self.consumes), num_messages)


def _settings(batch_max: int = 100, wait_ms: int = 50, linger_ms: int = 2) -> SinkSettings:
    return SinkSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k:1",
            "CDCSYNC_SINK_DB_URL": "postgresql://x/calendar",
            "CDCSYNC_SINK_BATCH_MAX": str(batch_max),
            "CDCSYNC_SINK_BATCH_WAIT_MS": str(wait_ms),
            "CDCSYNC_SINK_LINGER_MS": str(linger_ms),
        }
    )


def _run(consumer: _Scripted, settings: SinkSettings) -> list[Any]:
    return list(consume_batch(cast(Consumer, consumer), settings, idle_wait_s=0.2))


def test_nothing_there_waits_only_the_idle_wait() -> None:
    consumer = _Scripted(None, lambda call, n: [])
    assert _run(consumer, _settings()) == []
    assert consumer.polls == [0.2]
    assert consumer.consumes == []


def test_a_lone_message_returns_at_once_without_lingering() -> None:
    consumer = _Scripted("m0", lambda call, n: [])
    assert _run(consumer, _settings()) == ["m0"]
    assert consumer.consumes == [(99, 0)]  # only what was fetched already, no wait


def test_under_load_tops_up_while_messages_keep_coming() -> None:
    script = {1: ["m1", "m2"], 2: ["m3"], 3: ["m4", "m5"]}
    consumer = _Scripted("m0", lambda call, n: list(script.get(call, [])))
    assert _run(consumer, _settings(linger_ms=3)) == ["m0", "m1", "m2", "m3", "m4", "m5"]
    assert len(consumer.consumes) == 4  # the drain, two top-ups, and the empty one that closed the batch
    assert all(0 < timeout <= 0.003 for _, timeout in consumer.consumes[1:])


def test_a_batch_never_exceeds_its_count() -> None:
    consumer = _Scripted("m0", lambda call, n: [f"m{call}.{i}" for i in range(n)])
    messages = _run(consumer, _settings(batch_max=7))
    assert len(messages) == 7
    assert consumer.consumes == [(6, 0)]


def test_a_steady_flow_closes_the_batch_at_its_time_cap() -> None:
    def trickle(call: int, n: int) -> list[object]:
        time.sleep(0.001)
        return [f"m{call}"]

    consumer = _Scripted("m0", trickle)
    started = time.monotonic()
    messages = _run(consumer, _settings(batch_max=100_000, wait_ms=30))
    elapsed = time.monotonic() - started
    assert 0.03 <= elapsed < 0.2
    assert 2 < len(messages) < 100_000
