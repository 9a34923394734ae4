"""``cdcsync demo``: the pipeline end to end with a live view of changes and freshness.

Freshness of a calendar row is ``synced_at - source_committed_at``: how long
after its source commit the sink committed that version of the row.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from cdcsync.pipeline.sources.workload import ChangeWorkload
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.compare import VerifyReport
from cdcsync.pipeline.verification.reports import verify_until_clean

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoSummary:
    changes_written: int
    duration_s: float
    calendar_rows: int
    rows_synced_during_demo: int
    freshness_p50_s: float | None
    freshness_p99_s: float | None
    verify: VerifyReport

    def lines(self) -> list[str]:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}s"

        return [
            "demo summary:",
            f"  changes written      {self.changes_written} in {self.duration_s:.1f}s",
            f"  calendar rows        {self.calendar_rows}",
            f"  rows synced in demo  {self.rows_synced_during_demo}",
            f"  freshness p50 / p99  {seconds(self.freshness_p50_s)} / {seconds(self.freshness_p99_s)}",
            f"  verify               {'OK' if self.verify.clean else 'DIFFERENCES'}",
        ]


def _live_line(calendar: psycopg.Connection[tuple[object, ...]], elapsed: float, changes: int, last: str) -> str:
    rows, newest_applied = calendar.execute(
        "SELECT (SELECT count(*) FROM calendar.calendar_entries),"
        " (SELECT max(newest_source_commit) FROM cdcsync.consumer_offsets)"
    ).fetchone() or (0, None)
    age = (
        f"{(datetime.now(UTC) - newest_applied).total_seconds():5.2f}s"
        if isinstance(newest_applied, datetime)
        else "  n/a"
    )
    return (
        f"t+{elapsed:5.1f}s  changes {changes:5d}  calendar rows {rows!s:>7}  newest commit applied {age} ago  | {last}"
    )


def _freshness(
    calendar: psycopg.Connection[tuple[object, ...]], since: datetime
) -> tuple[int, float | None, float | None]:
    row = calendar.execute(
        "SELECT count(*),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM synced_at - source_committed_at)),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM synced_at - source_committed_at))"
        " FROM calendar.calendar_entries WHERE source_committed_at >= %s",
        (since,),
    ).fetchone()
    if row is None:
        return 0, None, None
    count, p50, p99 = row
    return int(str(count)), None if p50 is None else float(str(p50)), None if p99 is None else float(str(p99))


def run_demo(targets: Targets, duration_s: float, rate_per_s: float, seed: int, echo: Echo) -> DemoSummary:
    """Write realistic changes for ``duration_s`` seconds while showing the calendar follow."""
    started_wall = datetime.now(UTC) - timedelta(milliseconds=1)
    started = time.monotonic()
    changes = 0
    last = "starting"
    with (
        ChangeWorkload(targets.source_urls, random.Random(seed)) as workload,
        psycopg.connect(targets.sink_db_url, autocommit=True) as calendar,
    ):
        next_view = started
        while (elapsed := time.monotonic() - started) < duration_s:
            last = str(workload.apply_next())
            changes += 1
            if time.monotonic() >= next_view:
                echo(_live_line(calendar, elapsed, changes, last))
                next_view += 1.0
            # Pace the writes: sleep until the next change is due.
            due = started + changes / rate_per_s
            time.sleep(max(0.0, due - time.monotonic()))
        duration = time.monotonic() - started
        echo("waiting for the calendar to catch up ...")
        report = verify_until_clean(targets, 120.0)
        echo(_live_line(calendar, time.monotonic() - started, changes, "caught up"))
        total = calendar.execute("SELECT count(*) FROM calendar.calendar_entries").fetchone()
        synced, p50, p99 = _freshness(calendar, started_wall)
    return DemoSummary(changes, duration, int(str(total[0])) if total else 0, synced, p50, p99, report)
