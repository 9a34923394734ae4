"""What the consumer loop tells the outside: metrics, heartbeats, liveness and readiness.

The loop calls ``received`` and ``turned`` once per turn, ``assigned`` when partitions (re)start
from their stored offsets, and ``applied`` once per committed batch (before the
``turned`` of the batch consumed while it applied: ``applied`` ends what was pending); none of
them does I/O beyond a non-blocking poll of the heartbeat topics. When an HTTP
address is set, ``start`` serves /metrics, /livez and /readyz until ``close``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from cdcsync.sink.calendar_writer import BatchResult
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.errors import CalendarDatabaseUnavailable, KafkaUnavailable, SchemaRegistryUnavailable
from cdcsync.sink.health import Verdict, liveness, readiness
from cdcsync.sink.heartbeats import HeartbeatReader
from cdcsync.sink.http_address import ListenAddress
from cdcsync.sink.http_server import HealthServer
from cdcsync.sink.lag import LagTracker
from cdcsync.sink.metrics import ScrapeState, SinkMetrics
from cdcsync.sink.reconnect import Outages

logger = logging.getLogger(__name__)

_DEPENDENCIES = (
    CalendarDatabaseUnavailable.dependency,
    KafkaUnavailable.dependency,
    SchemaRegistryUnavailable.dependency,
)
_NO_TIMESTAMP = 0  # confluent_kafka.TIMESTAMP_NOT_AVAILABLE


class SinkTelemetry:
    def __init__(
        self,
        outages: Outages,
        heartbeats: HeartbeatReader,
        http: ListenAddress | None,
        ready_max_lag_s: float,
    ) -> None:
        self._outages = outages
        self._heartbeats = heartbeats
        self._ready_max_lag_s = ready_max_lag_s
        self._started_at = time.monotonic()
        self._last_turn: float | None = None
        self._assigned: frozenset[tuple[str, int]] = frozenset()
        self.lag = LagTracker()
        self.metrics = SinkMetrics(self.lag, self._scrape_state)  # describes itself by collecting once
        self._server = None if http is None else HealthServer(http, self.metrics.registry, self.live, self.ready)

    def start(self) -> None:
        if self._server is not None:
            self._server.start()

    def close(self) -> None:
        self._heartbeats.close()
        if self._server is not None:
            self._server.close()

    def assigned(
        self, positions: Sequence[TopicPartition], newest_commits: Mapping[tuple[str, int], datetime] | None = None
    ) -> None:
        """Partitions (re)starting at their stored offsets (a negative, logical offset: none stored),
        and the newest source commit each had applied."""
        self.lag.assigned(
            {(p.topic, p.partition): (p.offset if p.offset >= 0 else None) for p in positions},
            {tp: committed.timestamp() for tp, committed in (newest_commits or {}).items()},
        )
        self._assigned = frozenset((p.topic, p.partition) for p in positions)

    def received(self, messages: Sequence[Message]) -> None:
        """Right after ``consume``, before the loop waits for the batch in flight: their way from Kafka."""
        self.metrics.received(_record_timestamps(messages), time.time())

    def turned(self, consumer: Consumer, messages: Sequence[Message], batch: ChangeBatch) -> None:
        """Once per loop turn, after ``received`` and after the batch applied meanwhile was reported:
        assignment, watermarks, pending messages, heartbeats.

        A pending message's time is its change's source commit, else (a tombstone, a dead letter) its Kafka time.
        """
        self._last_turn = time.monotonic()
        assignment = consumer.assignment()
        current = frozenset((p.topic, p.partition) for p in assignment)
        if current != self._assigned:  # a revocation, or an assignment not seen through ``assigned``
            self.lag.assigned({tp: None for tp in current})
            self._assigned = current
        marks = {}
        for p in assignment:
            try:
                marks[(p.topic, p.partition)] = consumer.get_watermark_offsets(p, cached=True)
            except KafkaException:
                continue
        self.lag.watermarks(marks)
        self.lag.consumed(_oldest_timestamps(messages))
        self.lag.consumed({tp: min(times).timestamp() for tp, times in batch.commit_times.items() if times})
        try:
            self.lag.heartbeats(self._heartbeats.poll())
        except KafkaException as exc:  # informational: the next turn tries again
            logger.debug("heartbeats: %s", exc)

    def applied(
        self, batch: ChangeBatch, result: BatchResult, dead_letters: int, seconds: float, committed_at: float
    ) -> None:
        """A batch committed at ``committed_at`` (epoch seconds) after ``seconds`` in its apply."""
        commit_times = batch.commit_times
        self.lag.applied(batch.next_offsets, {tp: dt.timestamp() for tp, dt in batch.newest_commit.items()})
        self.metrics.batch_applied(result, dead_letters, seconds, commit_times, applied_at=committed_at)

    def live(self) -> Verdict:
        latest = max([self._started_at, self._last_turn or 0.0, *self._outages.down().values()])
        return liveness(time.monotonic() - latest)

    def ready(self) -> Verdict:
        return readiness(
            started=self._last_turn is not None,
            assigned=len(self._assigned),
            down=self._outages.down(),
            lags=self.lag.lags(time.time()),
            max_lag_s=self._ready_max_lag_s,
        )

    def _scrape_state(self) -> ScrapeState:
        down = self._outages.down()
        return ScrapeState(
            assigned=len(self._assigned),
            dependencies_up={dependency: dependency not in down for dependency in _DEPENDENCIES},
            reconnects={dependency: self._outages.reconnects.get(dependency, 0) for dependency in _DEPENDENCIES},
            ready=self.ready().ok,
            loop_turn_age=None if self._last_turn is None else time.monotonic() - self._last_turn,
        )


def _record_timestamps(messages: Sequence[Message]) -> Iterator[float]:
    """The Kafka timestamps (seconds) of the messages that have one."""
    for message in messages:
        if message.error() is None:
            kind, ms = message.timestamp()
            if kind != _NO_TIMESTAMP:
                yield ms / 1000


def _oldest_timestamps(messages: Sequence[Message]) -> dict[tuple[str, int], float]:
    oldest: dict[tuple[str, int], float] = {}
    for message in messages:
        topic, partition = message.topic(), message.partition()
        if message.error() is not None or topic is None or partition is None:
            continue
        kind, ms = message.timestamp()
        if kind == _NO_TIMESTAMP:
            continue
        tp = (topic, partition)
        oldest[tp] = min(oldest.get(tp, ms / 1000), ms / 1000)
    return oldest
