"""Whether a connector's initial snapshot is complete, running, or interrupted: the decision, pure.

Why it is needed (Debezium 3.4, read in its source): when a connector starts with
no stored offset, the ``Initial Snapshot`` STARTED notification is sent through the
``sink`` channel as a Connect record whose source offset is *empty* (the snapshot
has no offset yet). If Connect commits that offset and the task stops before any
later record's offset is committed (the connector deleted, re-created or
rebalanced during its first seconds of snapshot), the next task loads ``{}`` as
``{ts_usec=0}``: no ``snapshot``/``snapshot_completed`` markers, which Debezium
reads as "snapshot done". It skips the snapshot (notification SKIPPED) and streams
from the slot, so the rows that existed before never reach Kafka. When a later
offset was committed instead (``snapshot=INITIAL, snapshot_completed=false``),
Debezium re-runs the snapshot: the good case.

The evidence used, in this order:

1. The ``Initial Snapshot`` notifications of the connector's logical name, in topic
   order. Each has a random id as its record key, so compaction keeps them all.
   An *attempt* starts at the first STARTED after the last COMPLETED; it is
   complete once a COMPLETED follows. It is interrupted when its last run was
   SKIPPED, or stopped (ABORTED, or no task runs it) with a stored offset Debezium
   will not resume from; every table without a successful TABLE_SCAN_COMPLETED in
   the attempt was never fully snapshotted.
2. A whole-table incremental snapshot (``cdcsync snapshot``) whose table scan
   SUCCEEDED (or was EMPTY) after the attempt started covers its table.
3. The stored offset (Connect's ``GET /connectors/{name}/offsets``), when the
   notifications cannot tell: an offset without ``lsn`` is the poisoned one above;
   ``snapshot_completed=false`` means Debezium redoes the snapshot when the task runs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.signals import is_whole_table_signal
from cdcsync.debezium.snapshot_notifications import (
    INCREMENTAL_SNAPSHOT,
    INITIAL_SNAPSHOT,
    NOTIFICATION_TOPIC_KEY,
    SnapshotNotification,
)

RECOVER_COMMAND = "cdcsync snapshot --incomplete"
_SCANNED = {"SUCCEEDED", "EMPTY"}
# Modes in which a connector without a stored offset snapshots its tables' rows (no_data and never do not).
_SNAPSHOTTING_MODES = {"initial", "initial_only", "always", "when_needed"}


class SnapshotKind(enum.Enum):
    COMPLETE = "complete"
    RUNNING = "running"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class SnapshotState:
    """A connector's initial snapshot. ``tables`` (``schema.table``): interrupted, those never fully
    snapshotted (the ones to re-snapshot); running, those not scanned yet."""

    connector: str
    kind: SnapshotKind
    tables: tuple[str, ...] = ()
    cause: str = ""

    @property
    def interrupted(self) -> bool:
        return self.kind is SnapshotKind.INTERRUPTED

    def summary(self) -> str:
        """The connector, the verdict, the tables and the cause."""
        tables = f" ({', '.join(self.tables)})" if self.tables else ""
        cause = f": {self.cause}" if self.cause else ""
        return f"{self.connector}: initial snapshot {self.kind.value}{tables}{cause}"

    def line(self) -> str:
        """The summary and, when interrupted, the command that recovers it."""
        return f"{self.summary()}. Fix: {RECOVER_COMMAND}" if self.interrupted else self.summary()


class StoredOffset(enum.Enum):
    """What the connector's stored source offset tells about its initial snapshot."""

    NONE = "none"  # nothing committed yet (or offsets not readable)
    NO_POSITION = "no position"  # no lsn and no snapshot markers: Debezium will skip the snapshot
    SNAPSHOT_UNFINISHED = "snapshot unfinished"  # Debezium re-runs the snapshot when the task starts
    POSITIONED = "positioned"  # an lsn and no unfinished snapshot: streaming, or snapshot done


def classify_offset(offsets: Iterable[Mapping[str, Any]], topic_prefix: str) -> StoredOffset:
    """The offset Connect stored for the partition ``{"server": topic_prefix}`` (GET .../offsets). Pure."""
    offset = next(
        (dict(o.get("offset") or {}) for o in offsets if (o.get("partition") or {}).get("server") == topic_prefix),
        None,
    )
    if offset is None:
        return StoredOffset.NONE
    snapshot = str(offset.get("snapshot", "")).upper()
    if (
        snapshot in ("INITIAL", "TRUE")
        and not offset.get("snapshot_completed")
        and not offset.get("last_snapshot_record")
    ):
        return StoredOffset.SNAPSHOT_UNFINISHED
    return StoredOffset.POSITIONED if offset.get("lsn") is not None else StoredOffset.NO_POSITION


def reports_initial_snapshot(spec: ConnectorSpec) -> bool:
    """True for a Debezium PostgreSQL connector that takes an initial snapshot of its data and sends its
    notifications to a topic: the ones judged. Pure."""
    channels = [c.strip() for c in spec.config.get("notification.enabled.channels", "").split(",")]
    return (
        spec.config.get("connector.class") == "io.debezium.connector.postgresql.PostgresConnector"
        and spec.config.get("snapshot.mode", "initial") in _SNAPSHOTTING_MODES
        and "sink" in channels
        and bool(spec.config.get(NOTIFICATION_TOPIC_KEY))
    )


def _table(identifier: str) -> str:
    """``schema.table`` of a notification's table identifier (which may carry the database in front)."""
    return ".".join(identifier.split(".")[-2:])


def decide(
    spec: ConnectorSpec, notifications: Iterable[SnapshotNotification], offset: StoredOffset, task_running: bool
) -> SnapshotState:
    """The initial snapshot of ``spec``'s connector. Pure.

    ``notifications`` are the notification topic's records in order (other connectors'
    are ignored); ``task_running`` whether the connector and its task are RUNNING now.
    """
    name, tables = spec.name, spec.tables
    own = [n for n in notifications if n.connector == spec.topic_prefix]
    initial = [(i, n) for i, n in enumerate(own) if n.aggregate == INITIAL_SNAPSHOT]
    last_completed = max((i for i, n in initial if n.type == "COMPLETED"), default=-1)
    started = [i for i, n in initial if n.type == "STARTED" and i > last_completed]
    if not started:
        if last_completed >= 0:
            return SnapshotState(name, SnapshotKind.COMPLETE, cause="Debezium reported it COMPLETED")
        return _from_offset(name, tables, offset)
    attempt = started[0]
    scanned = {
        _table(n.data.get("scanned_collection", ""))
        for i, n in initial
        if i > attempt and n.type == "TABLE_SCAN_COMPLETED" and n.data.get("status", "SUCCEEDED") == "SUCCEEDED"
    }
    recovered = {
        _table(n.data.get("scanned_collection", ""))
        for n in own[attempt:]
        if n.aggregate == INCREMENTAL_SNAPSHOT
        and n.type == "TABLE_SCAN_COMPLETED"
        and n.data.get("status") in _SCANNED
        and is_whole_table_signal(n.id)
    }
    missing = tuple(t for t in tables if t not in scanned and t not in recovered)
    last = own[max(i for i, _ in initial)]
    if last.type == "SKIPPED":
        how = (
            "the connector restarted and SKIPPED it, streaming from the slot (its stored offset had no "
            "snapshot markers)"
        )
    elif task_running and last.type != "ABORTED":
        return SnapshotState(name, SnapshotKind.RUNNING, missing, f"at {last.type}")
    elif offset in (StoredOffset.NONE, StoredOffset.SNAPSHOT_UNFINISHED):
        stopped = "ABORTED" if last.type == "ABORTED" else "stopped mid-snapshot"
        return SnapshotState(name, SnapshotKind.RUNNING, missing, f"{stopped}; Debezium redoes it when the task runs")
    else:
        how = (
            f"{'it was ABORTED' if last.type == 'ABORTED' else 'the task stopped during it'} and the stored offset "
            "has no snapshot markers, so Debezium will stream without snapshotting"
        )
    if not missing:
        return SnapshotState(name, SnapshotKind.COMPLETE, cause=f"{how}; whole-table snapshots covered every table")
    cause = f"the initial snapshot never completed: {how}; these tables' rows never reached Kafka"
    return SnapshotState(name, SnapshotKind.INTERRUPTED, missing, cause)


def _from_offset(name: str, tables: Sequence[str], offset: StoredOffset) -> SnapshotState:
    """No initial-snapshot notification since the last completion: only the stored offset can tell."""
    if offset is StoredOffset.NO_POSITION:
        # The empty offset is the one of a first task's STARTED notification; without that STARTED
        # (notifications lost) Debezium skips the snapshot at the next start: nothing was snapshotted.
        return SnapshotState(
            name,
            SnapshotKind.INTERRUPTED,
            tuple(tables),
            "the stored offset has no position and no snapshot markers (Debezium reads it as {ts_usec=0}): "
            "it streams without a snapshot",
        )
    if offset is StoredOffset.POSITIONED:
        return SnapshotState(name, SnapshotKind.COMPLETE, cause="no notification; the stored offset is past it")
    return SnapshotState(name, SnapshotKind.RUNNING, tuple(tables), "not started yet")
