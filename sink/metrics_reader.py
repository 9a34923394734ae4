"""Reads a running sink's /metrics and /readyz, for ``cdcsync status`` (the numbers Prometheus sees)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import requests
from prometheus_client.parser import text_string_to_metric_families

from cdcsync.sink import metrics as m


@dataclass(frozen=True)
class PartitionReading:
    topic: str
    partition: str
    lag_messages: float | None = None
    lag_seconds: float | None = None
    newest_commit_age: float | None = None
    latency_count: float | None = None
    latency_sum: float | None = None

    @property
    def mean_latency(self) -> float | None:
        if not self.latency_count or self.latency_sum is None:
            return None
        return self.latency_sum / self.latency_count


@dataclass(frozen=True)
class SinkReading:
    url: str
    ready: bool
    readiness: str  # /readyz's body
    partitions: list[PartitionReading]
    heartbeat_ages: dict[str, float]  # per source
    totals: dict[str, float] = field(default_factory=dict)  # counters without labels, by name
    reconnects: dict[str, float] = field(default_factory=dict)


_PARTITION_SERIES = {
    m.LAG_MESSAGES: "lag_messages",
    m.LAG_SECONDS: "lag_seconds",
    m.COMMIT_AGE: "newest_commit_age",
    f"{m.LATENCY}_count": "latency_count",
    f"{m.LATENCY}_sum": "latency_sum",
}


def read_sink_metrics(url: str, timeout: float = 3.0) -> SinkReading:
    """``url`` is the sink's base URL (``http://127.0.0.1:18090``). Raises ``requests.RequestException``."""
    response = requests.get(f"{url}/metrics", timeout=timeout)
    response.raise_for_status()
    ready = requests.get(f"{url}/readyz", timeout=timeout)
    per_partition: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    heartbeats: dict[str, float] = {}
    totals: dict[str, float] = {}
    reconnects: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name in _PARTITION_SERIES:
                per_partition[(labels["topic"], labels["partition"])][_PARTITION_SERIES[sample.name]] = sample.value
            elif sample.name == m.HEARTBEAT_AGE:
                heartbeats[labels["source"]] = sample.value
            elif sample.name == m.RECONNECTS:
                reconnects[labels["dependency"]] = sample.value
            elif sample.name.startswith("cdcsync_") and sample.name.endswith("_total") and not labels:
                totals[sample.name] = sample.value
    partitions = [
        PartitionReading(
            topic,
            partition,
            lag_messages=values.get("lag_messages"),
            lag_seconds=values.get("lag_seconds"),
            newest_commit_age=values.get("newest_commit_age"),
            latency_count=values.get("latency_count"),
            latency_sum=values.get("latency_sum"),
        )
        for (topic, partition), values in sorted(per_partition.items())
    ]
    return SinkReading(url, ready.status_code == 200, ready.text.strip(), partitions, heartbeats, totals, reconnects)
