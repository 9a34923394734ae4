"""``cdcsync status``: the stack's parts, the connectors, and the sink's lag and freshness."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from debezium.commands import format_table, status_rows
from debezium.connect_client import ConnectClient
from debezium.connector_spec import load_connector_specs
from debezium.preflight_report import format_bytes, slot_lines
from debezium.source_preflight import slot_health, wal_warning_threshold
from pipeline.errors import CdcsyncError
from pipeline.settings import StackSettings
from pipeline.stack.local_stack import LocalStack
from pipeline.targets import Targets
from sink.background import BackgroundSink
from sink.progress import read_progress


def status_lines(settings: StackSettings, targets: Targets, group_id: str) -> list[str]:
    """Every section renders on its own; a part that is down says so instead of failing the rest."""
    parts = [*LocalStack(settings).status(), BackgroundSink(settings.home).status()]
    lines = [
        "stack:",
        format_table(("part", "state", "detail"), [(p.name, "up" if p.running else "down", p.detail) for p in parts]),
    ]
    lines.append("connectors:")
    try:
        with ConnectClient(targets.connect_url, attempts=1) as client:
            states = client.list_connectors().values()
        lines.append(format_table(("connector", "state", "task", "task state", "worker"), status_rows(states)))
    except CdcsyncError as exc:
        lines.append(f"  unavailable: {exc}")
    lines.extend(slot_health_section())
    lines.append("sink progress (per topic partition):")
    try:
        progress = read_progress(targets.sink_db_url, targets.kafka_bootstrap_servers, group_id)
    except Exception as exc:
        lines.append(f"  unavailable: {exc}")
        return lines
    now = datetime.now(UTC)
    rows = []
    for p in progress:
        fresh = p.freshness_s(now)
        rows.append(
            (
                f"{p.topic}[{p.partition}]",
                str(p.next_offset),
                "?" if p.lag is None else str(p.lag),
                "-" if p.newest_source_commit is None else p.newest_source_commit.isoformat(timespec="milliseconds"),
                "-" if fresh is None else f"{fresh:.1f}s",
                p.applied_at.isoformat(timespec="seconds"),
            )
        )
    lines.append(
        format_table(("partition", "next offset", "lag", "newest source commit", "age", "last applied"), rows)
        if rows
        else "  no batch applied yet"
    )
    return lines


def slot_health_section() -> list[str]:
    """Replication slots of the connectors' servers (the preflight's query, as the connectors' role)."""
    try:
        threshold = wal_warning_threshold()
        slots = slot_health(load_connector_specs())
    except (CdcsyncError, psycopg.Error) as exc:
        first_line = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
        return ["replication slots:", f"  unavailable: {first_line}"]
    return [f"replication slots (! = retains at least {format_bytes(threshold)}):", *slot_lines(slots, threshold)]
