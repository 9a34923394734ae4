"""Lag per topic partition, in messages and in seconds. Pure: the loop feeds it, a scrape reads it.

Definitions (``now`` is the scrape's wall clock):

- **lag in messages**: Kafka's high watermark minus the next offset the sink has
  applied (stored in the calendar database, in the batch's transaction).
- **lag in seconds**: how long ago the oldest change the calendar does not show
  yet was written.
  - Messages pending: ``now`` minus the source commit time of the oldest consumed,
    unapplied message (its Kafka time if it carries no change); before the sink
    has fetched it, ``now`` minus the newest source time the partition is known
    complete up to (an upper bound).
  - Caught up, and the source's latest heartbeat is recent: that heartbeat's way
    from Debezium into Kafka (its Kafka time minus its ``ts_ms``), the delay every
    change also has; near 0 on a live, idle pipeline. Debezium emits heartbeats
    behind the changes it has read, so nothing older is missing.
  - Caught up, no recent heartbeat (the connector stalled, or heartbeats are off):
    ``now`` minus the newest source time known complete, growing, since the sink
    cannot vouch for the source.
- **newest applied commit age**: ``now`` minus the source commit time of the newest
  change applied. It grows while the sources are quiet; it is not lag.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cdcsync.sink.heartbeats import Heartbeat, source_of_topic

TopicPartition = tuple[str, int]

# Three of the shipped connectors' heartbeat intervals (heartbeat.interval.ms = 10 s).
HEARTBEAT_STALE_AFTER_S = 30.0


@dataclass
class _Partition:
    applied_next: int | None = None  # next offset applied; None: nothing stored yet (starts at the low watermark)
    low: int | None = None
    high: int | None = None
    newest_applied_commit: float | None = None  # epoch seconds
    complete_as_of: float | None = None  # every change written up to this time is applied
    pending_since: float | None = None  # time of the oldest consumed, unapplied message


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    messages: int | None
    seconds: float | None
    newest_applied_commit_age: float | None

    @property
    def source(self) -> str:
        return source_of_topic(self.topic)


class LagTracker:
    """Per assigned topic partition: applied offsets, watermarks and source times.

    The consumer loop writes, the HTTP thread reads ``lags``: every method takes one lock.
    """

    def __init__(self, heartbeat_stale_after_s: float = HEARTBEAT_STALE_AFTER_S) -> None:
        self._stale_after = heartbeat_stale_after_s
        self._lock = threading.Lock()
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._heartbeats: dict[str, Heartbeat] = {}

    def assigned(
        self,
        positions: Mapping[TopicPartition, int | None],
        newest_commits: Mapping[TopicPartition, float] | None = None,
    ) -> None:
        """The assignment, where each partition resumes (its stored offset; None if none), and the newest
        source commit it had applied (stored with the offsets)."""
        with self._lock:
            self._partitions = {
                tp: self._partitions.get(tp) or _Partition(applied_next=offset) for tp, offset in positions.items()
            }
            for tp, offset in positions.items():
                if offset is not None:
                    self._partitions[tp].applied_next = offset
            for tp, committed in (newest_commits or {}).items():
                state = self._partitions.get(tp)
                if state is not None and state.newest_applied_commit is None:
                    state.newest_applied_commit = committed
                    state.complete_as_of = max(committed, state.complete_as_of or committed)

    def watermarks(self, marks: Mapping[TopicPartition, tuple[int, int]]) -> None:
        with self._lock:
            for tp, (low, high) in marks.items():
                if tp in self._partitions:
                    self._partitions[tp].low, self._partitions[tp].high = low, high

    def consumed(self, oldest: Mapping[TopicPartition, float]) -> None:
        """The time of the oldest message of each partition in a consumed batch, not applied yet."""
        with self._lock:
            for tp, written_at in oldest.items():
                state = self._partitions.get(tp)
                if state is not None:
                    state.pending_since = min(written_at, state.pending_since or written_at)

    def applied(
        self, next_offsets: Mapping[TopicPartition, int], newest_commit: Mapping[TopicPartition, float]
    ) -> None:
        """A batch committed: its partitions' offsets moved and every message consumed so far is applied."""
        with self._lock:
            for tp, offset in next_offsets.items():
                state = self._partitions.setdefault(tp, _Partition())
                state.applied_next = max(offset, state.applied_next or 0)
                state.pending_since = None
                commit = newest_commit.get(tp)
                if commit is not None:
                    state.newest_applied_commit = max(commit, state.newest_applied_commit or commit)
                    state.complete_as_of = max(commit, state.complete_as_of or commit)

    def heartbeats(self, beats: Iterable[Heartbeat]) -> None:
        """A source's heartbeat: its partitions that are caught up are complete up to its emission."""
        with self._lock:
            for beat in beats:
                latest = self._heartbeats.get(beat.source)
                if latest is None or beat.emitted_at >= latest.emitted_at:
                    self._heartbeats[beat.source] = beat
                for (topic, _), state in self._partitions.items():
                    if source_of_topic(topic) == beat.source and _messages(state) == 0:
                        state.complete_as_of = max(beat.emitted_at, state.complete_as_of or beat.emitted_at)

    def latest_heartbeats(self) -> dict[str, Heartbeat]:
        with self._lock:
            return dict(self._heartbeats)

    def lags(self, now: float) -> list[PartitionLag]:
        with self._lock:
            return [
                PartitionLag(
                    topic,
                    partition,
                    _messages(state),
                    self._seconds(source_of_topic(topic), state, now),
                    None if state.newest_applied_commit is None else max(0.0, now - state.newest_applied_commit),
                )
                for (topic, partition), state in sorted(self._partitions.items())
            ]

    def _seconds(self, source: str, state: _Partition, now: float) -> float | None:
        messages = _messages(state)
        if messages is None:
            return None
        if messages > 0:
            since = state.pending_since if state.pending_since is not None else state.complete_as_of
            return None if since is None else max(0.0, now - since)
        beat = self._heartbeats.get(source)
        if beat is not None and now - beat.emitted_at <= self._stale_after:
            return max(0.0, beat.written_at - beat.emitted_at)
        return None if state.complete_as_of is None else max(0.0, now - state.complete_as_of)


def _messages(state: _Partition) -> int | None:
    if state.high is None or state.high < 0:
        return None
    start = state.applied_next if state.applied_next is not None else state.low
    if start is None or start < 0:
        return None
    return max(0, state.high - start)
