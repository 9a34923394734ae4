"""Re-sync: Debezium re-reads source rows (an incremental snapshot through the signal table)
and the sink absorbs them idempotently; ``verify --repair`` re-syncs exactly the source rows
behind the differences verify found.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.signals import find_captured_table, trigger_incremental_snapshot
from cdcsync.debezium.snapshot_notifications import wait_for_snapshot
from cdcsync.pipeline.errors import CdcsyncError
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.compare import VerifyReport
from cdcsync.pipeline.verification.expected_calendar import CalendarRow
from cdcsync.sink.progress import read_progress

Progress = Callable[[str], None]
T = TypeVar("T")
# Keys per signal: a signal's JSON must fit the signal table's 2048-character data column.
_KEYS_PER_SIGNAL = 120
_TABLE_OF_KIND = {
    "lecture": "course.lectures",
    "attendance": "attendance.attendance_windows",
    "assignment": "assignment.assignments",
}


@dataclass(frozen=True)
class ResyncRequest:
    table: str  # SERVICE.TABLE, e.g. course.lectures
    where: str | None = None


def repair_requests(report: VerifyReport, window_lectures: dict[int, int]) -> list[ResyncRequest]:
    """The source rows behind every difference: the entry's item (and a window's lecture),
    its course, and the user's enrollment in it. Pure."""
    rows: list[CalendarRow] = [*report.missing, *report.extra, *(w.expected for w in report.wrong)]
    ids: dict[str, set[int]] = defaultdict(set)
    enrollments: set[tuple[int, int]] = set()
    for row in rows:
        kind, _, item = row.entry_key.partition(":")
        ids[_TABLE_OF_KIND[kind]].add(int(item))
        if kind == "attendance" and int(item) in window_lectures:
            ids["course.lectures"].add(window_lectures[int(item)])
        ids["course.courses"].add(row.course_id)
        enrollments.add((row.course_id, row.user_id))
    requests = [
        ResyncRequest(table, f"id IN ({', '.join(map(str, chunk))})")
        for table, keys in sorted(ids.items())
        for chunk in _chunks(sorted(keys))
    ]
    requests += [
        ResyncRequest(
            "course.enrollments", "(course_id, user_id) IN (" + ", ".join(f"({c}, {u})" for c, u in chunk) + ")"
        )
        for chunk in _chunks(sorted(enrollments))
    ]
    return requests


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), _KEYS_PER_SIGNAL):
        yield items[start : start + _KEYS_PER_SIGNAL]


def window_lectures(targets: Targets, report: VerifyReport) -> dict[int, int]:
    """The lecture of each attendance window among the differences, read from the attendance service."""
    windows = {
        int(r.entry_key.partition(":")[2])
        for r in [*report.missing, *report.extra, *(w.expected for w in report.wrong)]
        if r.entry_key.startswith("attendance:")
    }
    if not windows:
        return {}
    with psycopg.connect(targets.attendance_db_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT id, lecture_id FROM public.attendance_windows WHERE id = ANY(%s)", (sorted(windows),)
        ).fetchall()
    return {int(w): int(lecture) for w, lecture in rows}


def resync(
    targets: Targets,
    requests: Sequence[ResyncRequest],
    signal_url: Callable[[ConnectorSpec], str],
    group_id: str,
    *,
    timeout: float = 600.0,
    progress: Progress | None = None,
) -> None:
    """Run each incremental snapshot in turn (one at a time per connector, as Debezium needs),
    then wait until the sink has consumed everything they re-sent."""
    say = progress or (lambda _line: None)
    specs = load_connector_specs()
    for request in requests:
        spec, table = find_captured_table(specs, request.table)
        signal_id = trigger_incremental_snapshot(signal_url(spec), spec, table, request.where)
        which = "" if request.where is None else f" where {request.where[:60]}"
        say(f"resync {request.table}{which}: signal {signal_id}")
        done = wait_for_snapshot(
            targets.kafka_bootstrap_servers,
            spec,
            signal_id,
            table,
            timeout=timeout,
            registry_url=targets.schema_registry_url,
        )
        say(f"  {done.rows_scanned if done.rows_scanned is not None else '?'} rows re-sent")
    wait_for_sink(targets, group_id, timeout, say)


def wait_for_sink(targets: Targets, group_id: str, timeout: float, say: Progress) -> None:
    """Block until the sink's stored offsets reach the end of every partition it reads."""
    deadline = time.monotonic() + timeout
    while True:
        progress = read_progress(targets.sink_db_url, targets.kafka_bootstrap_servers, group_id)
        behind = sum(p.lag or 0 for p in progress)
        if progress and behind == 0 and all(p.lag is not None for p in progress):
            say("sink caught up")
            return
        if time.monotonic() > deadline:
            raise CdcsyncError(f"the sink is still {behind} messages behind after {timeout:.0f}s: is it running?")
        time.sleep(0.5)
