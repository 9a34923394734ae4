"""The sink's Prometheus metrics, in a registry of its own (one per daemon run).

Counters and histograms are updated by the consumer loop as batches apply.
Lag, ages and dependency states are computed at scrape time from ``LagTracker``
and ``Outages``, so they are as fresh as the scrape. ``METRIC_NAMES`` lists every
series name a scrape can show (the alert rules and the dashboard use only these).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from cdcsync.sink.calendar_writer import BatchResult
from cdcsync.sink.lag import LagTracker

PARTITION_LABELS = ("topic", "partition")
# Seconds from a source commit to its calendar row: 50 ms to 30 min.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Seconds from a message's Kafka append to the sink receiving it: 1 ms to 5 min (the bench's stage breakdown).
RECEIVE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

LAG_MESSAGES = "cdcsync_sink_lag_messages"
LAG_SECONDS = "cdcsync_sink_lag_seconds"
COMMIT_AGE = "cdcsync_sink_newest_applied_commit_age_seconds"
LATENCY = "cdcsync_sink_commit_to_apply_latency_seconds"
HEARTBEAT_AGE = "cdcsync_source_heartbeat_age_seconds"
HEARTBEAT_DELAY = "cdcsync_source_heartbeat_delivery_seconds"
ASSIGNED = "cdcsync_sink_assigned_partitions"
DEPENDENCY_UP = "cdcsync_sink_dependency_up"
RECONNECTS = "cdcsync_sink_reconnects_total"
READY = "cdcsync_sink_ready"
LOOP_AGE = "cdcsync_sink_loop_turn_age_seconds"
MESSAGES = "cdcsync_sink_messages_total"
CALENDAR_UPSERTS = "cdcsync_sink_calendar_rows_upserted_total"
CALENDAR_DELETES = "cdcsync_sink_calendar_rows_deleted_total"

_COUNTERS = {
    "batches": ("cdcsync_sink_batches_total", "Batches applied (one calendar transaction each)."),
    "messages": (MESSAGES, "Kafka messages applied, dead letters included."),
    "changes": ("cdcsync_sink_changes_total", "Row changes applied to the replica, after collapsing."),
    "upserts": (CALENDAR_UPSERTS, "Calendar rows inserted or updated."),
    "deletes": (CALENDAR_DELETES, "Calendar rows deleted."),
    "dead_letters": ("cdcsync_sink_dead_letters_total", "Messages written to the dead-letter topic."),
}
BATCH_APPLY = "cdcsync_sink_batch_apply_duration_seconds"
RECEIVE_DELAY = "cdcsync_sink_append_to_receive_seconds"

# Series names as Prometheus shows them (histograms: _bucket, _sum, _count).
METRIC_NAMES: frozenset[str] = frozenset(
    {LAG_MESSAGES, LAG_SECONDS, COMMIT_AGE, HEARTBEAT_AGE, HEARTBEAT_DELAY, ASSIGNED, DEPENDENCY_UP, READY, LOOP_AGE}
    | {RECONNECTS}
    | {name for name, _ in _COUNTERS.values()}
    | {f"{h}{suffix}" for h in (LATENCY, BATCH_APPLY, RECEIVE_DELAY) for suffix in ("_bucket", "_sum", "_count")}
)
PROCESS_METRIC_PREFIXES = ("process_", "python_")


class SinkMetrics:
    """What one daemon run exposes. ``scrape_state`` supplies what is computed at scrape time."""

    def __init__(self, lag: LagTracker, scrape_state: Callable[[], ScrapeState]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag = lag
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self._counters = {
            key: Counter(name.removesuffix("_total"), text, registry=self.registry)
            for key, (name, text) in _COUNTERS.items()
        }
        self._latency = Histogram(
            LATENCY,
            "Seconds from a change's source commit to the commit of the batch that applied it.",
            PARTITION_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batch_apply = Histogram(
            BATCH_APPLY,
            "Seconds to apply one batch (dead letters, replica, calendar rows, offsets).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._receive_delay = Histogram(
            RECEIVE_DELAY,
            "Seconds from a message's Kafka record timestamp to the sink receiving it.",
            buckets=RECEIVE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ScrapeTimeCollector(lag, scrape_state))

    def received(self, record_timestamps: Iterable[float], received_at: float) -> None:
        """Called once per consumed batch with its messages' Kafka timestamps (seconds since the epoch)."""
        for appended_at in record_timestamps:
            self._receive_delay.observe(max(0.0, received_at - appended_at))

    def batch_applied(
        self,
        result: BatchResult,
        dead_letters: int,
        seconds: float,
        commit_times: Mapping[tuple[str, int], list[datetime]],
        applied_at: float | None = None,
    ) -> None:
        """Called once per applied batch, after its transaction committed."""
        applied_at = time.time() if applied_at is None else applied_at
        counts = {
            "batches": 1,
            "messages": result.messages,
            "changes": result.changes,
            "upserts": result.calendar_upserts,
            "deletes": result.calendar_deletes,
            "dead_letters": dead_letters,
        }
        for key, amount in counts.items():
            self._counters[key].inc(amount)
        self._batch_apply.observe(seconds)
        for (topic, partition), times in commit_times.items():
            child = self._latency.labels(topic, str(partition))
            for committed_at in times:
                child.observe(max(0.0, applied_at - committed_at.timestamp()))


class ScrapeState:
    """What the daemon is doing now, as a scrape needs it."""

    def __init__(
        self,
        assigned: int,
        dependencies_up: Mapping[str, bool],
        reconnects: Mapping[str, int],
        ready: bool,
        loop_turn_age: float | None,
    ) -> None:
        self.assigned = assigned
        self.dependencies_up = dependencies_up
        self.reconnects = reconnects
        self.ready = ready
        self.loop_turn_age = loop_turn_age


class _ScrapeTimeCollector(Collector):
    def __init__(self, lag: LagTracker, scrape_state: Callable[[], ScrapeState]) -> None:
        self._lag = lag
        self._scrape_state = scrape_state

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        messages = GaugeMetricFamily(
            LAG_MESSAGES, "Messages in Kafka the sink has not applied yet.", labels=PARTITION_LABELS
        )
        seconds = GaugeMetricFamily(
            LAG_SECONDS,
            "How long ago the oldest change not in the calendar yet was written (near 0 when caught up"
            " and the source's heartbeats are recent).",
            labels=PARTITION_LABELS,
        )
        age = GaugeMetricFamily(
            COMMIT_AGE, "Seconds since the source commit of the newest change applied.", labels=PARTITION_LABELS
        )
        for lag in self._lag.lags(now):
            labels = [lag.topic, str(lag.partition)]
            if lag.messages is not None:
                messages.add_metric(labels, lag.messages)
            if lag.seconds is not None:
                seconds.add_metric(labels, lag.seconds)
            if lag.newest_applied_commit_age is not None:
                age.add_metric(labels, lag.newest_applied_commit_age)
        yield from (messages, seconds, age)
        beat_age = GaugeMetricFamily(
            HEARTBEAT_AGE, "Seconds since the source's latest Debezium heartbeat was emitted.", labels=["source"]
        )
        beat_delay = GaugeMetricFamily(
            HEARTBEAT_DELAY,
            "Seconds from the latest heartbeat's emission by Debezium to its write into Kafka.",
            labels=["source"],
        )
        for source, beat in sorted(self._lag.latest_heartbeats().items()):
            beat_age.add_metric([source], max(0.0, now - beat.emitted_at))
            beat_delay.add_metric([source], max(0.0, beat.written_at - beat.emitted_at))
        yield from (beat_age, beat_delay)
        yield from self._daemon_state()

    def _daemon_state(self) -> Iterator[Metric]:
        state = self._scrape_state()
        yield GaugeMetricFamily(ASSIGNED, "Change-topic partitions assigned to this sink.", value=state.assigned)
        up = GaugeMetricFamily(
            DEPENDENCY_UP, "1 while the dependency is reachable, 0 during an outage.", labels=["dependency"]
        )
        for dependency, is_up in sorted(state.dependencies_up.items()):
            up.add_metric([dependency], 1.0 if is_up else 0.0)
        yield up
        reconnects = CounterMetricFamily(
            RECONNECTS.removesuffix("_total"),
            "Outages of a dependency that ended in a reconnect.",
            labels=["dependency"],
        )
        for dependency, count in sorted(state.reconnects.items()):
            reconnects.add_metric([dependency], count)
        yield reconnects
        yield GaugeMetricFamily(READY, "1 while /readyz answers 200.", value=1.0 if state.ready else 0.0)
        if state.loop_turn_age is not None:
            yield GaugeMetricFamily(LOOP_AGE, "Seconds since the consumer loop last turned.", value=state.loop_turn_age)
