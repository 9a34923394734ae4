"""``cdcsync status``: the stack's parts, the connectors, and the sink's lag and freshness."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import requests
from confluent_kafka import KafkaException

from cdcsync.debezium.change_format import ChangeFormat, format_of
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.debezium.preflight_report import format_bytes, slot_lines
from cdcsync.debezium.snapshot_states import snapshot_states
from cdcsync.debezium.source_preflight import slot_health, wal_warning_threshold
from cdcsync.pipeline.connectors_commands import format_table, status_rows
from cdcsync.pipeline.errors import CdcsyncError
from cdcsync.pipeline.stack.background_sink import BackgroundSink
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.http_address import ListenAddress
from cdcsync.sink.metrics_reader import SinkReading, read_sink_metrics
from cdcsync.sink.progress import PartitionProgress, read_progress


def status_lines(targets: Targets, group_id: str, sink_http: ListenAddress | None = None) -> list[str]:
    """Every section renders on its own; a part that is down says so instead of failing the rest.

    ``sink_http``: the sink whose /metrics to read; on the local stack, its background sink by default.
    """
    lines = []
    if targets.local is not None:
        parts = [*LocalStack(targets.local).status(), BackgroundSink(targets.local.home).status()]
        lines += [
            "stack:",
            format_table(
                ("part", "state", "detail"), [(p.name, "up" if p.running else "down", p.detail) for p in parts]
            ),
        ]
    lines.append("connectors:")
    try:
        with ConnectClient(targets.connect_url, attempts=1) as client:
            states = client.list_connectors().values()
            formats = {state.name: format_of(client.get_connector_config(state.name)) for state in states}
        lines.append(format_table(("connector", "state", "task", "task state", "worker"), status_rows(states)))
        if formats:
            lines.append(
                "  change format: " + ", ".join(f"{name} {_format_name(f)}" for name, f in sorted(formats.items()))
            )
    except CdcsyncError as exc:
        lines.append(f"  unavailable: {exc}")
    lines.extend(initial_snapshot_section(targets))
    lines.extend(slot_health_section(targets))
    if sink_http is None and targets.local is not None:
        sink_http = targets.local.sink_http
    lines.extend(
        sink_metrics_section(sink_http.url)
        if sink_http is not None
        else ["sink metrics:", "  not read: set CDCSYNC_SINK_HTTP (or --sink-http) to the sink's host:port"]
    )
    lines.extend(sink_progress_section(targets, group_id))
    return lines


def _format_name(change_format: ChangeFormat | None) -> str:
    if change_format is ChangeFormat.AVRO:
        return "avro (schema registry)"
    return "other converters" if change_format is None else change_format.value


def sink_metrics_section(url: str) -> list[str]:
    """The running sink's own numbers, as Prometheus scrapes them (lag in seconds uses Debezium's heartbeats)."""
    try:
        reading = read_sink_metrics(url)
    except requests.RequestException as exc:
        return [f"sink metrics ({url}/metrics):", f"  unavailable: {type(exc).__name__}"]
    return render_sink_reading(reading)


def render_sink_reading(reading: SinkReading) -> list[str]:
    def number(value: float | None, unit: str = "", digits: int = 0) -> str:
        return "-" if value is None else f"{value:.{digits}f}{unit}"

    rows = [
        (
            f"{p.topic}[{p.partition}]",
            number(p.lag_messages),
            number(p.lag_seconds, "s", 2),
            number(p.newest_commit_age, "s", 1),
            number(p.latency_count),
            number(p.mean_latency, "s", 2),
        )
        for p in reading.partitions
    ]
    beats = ", ".join(f"{source} {age:.1f}s ago" for source, age in sorted(reading.heartbeat_ages.items()))
    totals = ", ".join(
        f"{name.removeprefix('cdcsync_sink_').removesuffix('_total')} {value:.0f}"
        for name, value in sorted(reading.totals.items())
    )
    reconnects = ", ".join(f"{dependency} {count:.0f}" for dependency, count in sorted(reading.reconnects.items()))
    return [
        f"sink metrics ({reading.url}/metrics; {reading.readiness}):",
        format_table(
            ("partition", "lag", "lag (s)", "newest commit age", "changes applied", "mean commit-to-apply"), rows
        ),
        f"  source heartbeats: {beats or 'none read yet'}",
        f"  totals: {totals}; reconnects: {reconnects}",
    ]


def sink_progress_section(targets: Targets, group_id: str) -> list[str]:
    """Per service and per topic partition, from the stored offsets: lag, age of the newest source commit applied."""
    try:
        progress = read_progress(targets.sink_db_url, targets.kafka_bootstrap_servers, group_id)
    except (CdcsyncError, psycopg.Error, KafkaException) as exc:
        return ["sink:", f"  unavailable: {next(iter(str(exc).splitlines()), type(exc).__name__)}"]
    if not progress:
        return ["sink:", "  no batch applied yet"]
    now = datetime.now(UTC)

    def lag(items: list[PartitionProgress]) -> str:
        return "?" if any(p.lag is None for p in items) else str(sum(p.lag or 0 for p in items))

    def age(items: list[PartitionProgress]) -> str:
        newest = max((p.newest_source_commit for p in items if p.newest_source_commit), default=None)
        return "-" if newest is None else f"{(now - newest).total_seconds():.1f}s"

    services = sorted({p.service for p in progress})
    per_service = [
        (
            service,
            lag(items := [p for p in progress if p.service == service]),
            age(items),
            str(sum(p.dead_letters for p in items)),
        )
        for service in services
    ]
    per_partition = [
        (
            f"{p.topic}[{p.partition}]",
            str(p.next_offset),
            lag([p]),
            "-" if p.newest_source_commit is None else p.newest_source_commit.isoformat(timespec="milliseconds"),
            age([p]),
            str(p.dead_letters),
            p.applied_at.isoformat(timespec="seconds"),
        )
        for p in progress
    ]
    return [
        "sink offsets stored, per service (newest commit age: not lag, it grows while a source is quiet):",
        format_table(("service", "lag", "newest commit age", "dead letters"), per_service),
        "sink offsets stored, per topic partition:",
        format_table(
            (
                "partition",
                "next offset",
                "lag",
                "newest source commit",
                "newest commit age",
                "dead letters",
                "last applied",
            ),
            per_partition,
        ),
    ]


def initial_snapshot_section(targets: Targets) -> list[str]:
    """Each shipped connector that exists: its initial snapshot complete, running, or interrupted (with the fix)."""
    try:
        with ConnectClient(targets.connect_url, attempts=1) as client:
            existing = client.list_connectors()
            specs = [spec for spec in load_connector_specs() if spec.name in existing]
            states = snapshot_states(
                client,
                targets.kafka_bootstrap_servers,
                specs,
                timeout=10.0,
                registry_url=targets.schema_registry_url,
            )
    except CdcsyncError as exc:
        return ["initial snapshots:", f"  unavailable: {next(iter(str(exc).splitlines()), type(exc).__name__)}"]
    return ["initial snapshots:", *(f"  {state.line()}" for state in states.values())] if states else []


def slot_health_section(targets: Targets) -> list[str]:
    """Replication slots of the connectors' servers (the preflight's query, as the connectors' role)."""
    try:
        threshold = wal_warning_threshold()
        slots = slot_health(load_connector_specs(), targets.placeholder_env())
    except (CdcsyncError, psycopg.Error) as exc:
        first_line = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
        return ["replication slots:", f"  unavailable: {first_line}"]
    return [f"replication slots (! = retains at least {format_bytes(threshold)}):", *slot_lines(slots, threshold)]
