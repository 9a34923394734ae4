"""How a batch's apply time grows with the calendar: the same batches of the change mix on calendars of
different sizes.

For each size a database of its own gets a synthetic replica of the bench's shape (21 users a course,
8 lectures with a window each, 4 assignments: 420 calendar rows a course), its calendar projected by the
sink's own code, then ``VACUUM ANALYZE`` and a checkpoint. A few batches warm the session; then each
measured batch of the mix (60% enrollment flips, 20% window moves, 20% assignment retitles) goes through
``CalendarWriter.apply``, in one transaction, as in the daemon. Reported per size: the batch's wall time
and, when the server's process can be read (the local stack), the CPU time of its backend.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cdcsync.pipeline.bench.dataset import ASSIGNMENTS_PER_COURSE, LECTURES_PER_COURSE, USERS_PER_COURSE
from cdcsync.pipeline.bench.freshness import percentile
from cdcsync.pipeline.bench.synthetic_calendar import CalendarShape, fill_replica, mixed_batch, project_everything
from cdcsync.sink.calendar_writer import CalendarWriter
from cdcsync.sink.offset_store import OffsetStore
from cdcsync.sink.schema import migrate

Say = Callable[[str], None]
_WARM_BATCHES = 2
_CLOCK_TICKS = 100  # /proc/<pid>/stat counts CPU time in ticks of 1/100 s on Linux


def shape_for(calendar_rows: int) -> CalendarShape:
    courses = max(1, round(calendar_rows / (USERS_PER_COURSE * (2 * LECTURES_PER_COURSE + ASSIGNMENTS_PER_COURSE))))
    return CalendarShape(
        courses=courses, users=USERS_PER_COURSE, lectures=LECTURES_PER_COURSE, assignments=ASSIGNMENTS_PER_COURSE
    )


def measure_apply_scaling(
    admin_url: str, sizes: Sequence[int], batch_changes: int, batches: int, say: Say
) -> dict[str, Any]:
    """One entry per size, in the order given."""
    return {
        "batch_changes": batch_changes,
        "batches": batches,
        "sizes": [_measure_size(admin_url, shape_for(size), batch_changes, batches, say) for size in sizes],
    }


def _measure_size(admin_url: str, shape: CalendarShape, batch_changes: int, batches: int, say: Say) -> dict[str, Any]:
    name = f"bench_apply_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_conninfo("", **{**conninfo_to_dict(admin_url), "dbname": name})
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.monotonic()
            migrate(conn)
            with conn.transaction(), conn.cursor() as cur:
                fill_replica(cur, shape)
            with conn.transaction(), conn.cursor() as cur:
                project_everything(cur, shape)
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT count(*) FROM calendar.calendar_entries").fetchone()
            rows = int(str(row[0])) if row else 0
            say(f"apply scaling: a {rows:,}-row calendar built in {time.monotonic() - started:.0f}s")
            return {"calendar_rows": rows, **_time_batches(conn, shape, batch_changes, batches)}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _time_batches(
    conn: psycopg.Connection[tuple[object, ...]], shape: CalendarShape, batch_changes: int, batches: int
) -> dict[str, Any]:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    backend = Path(f"/proc/{row[0] if row else 0}/stat")
    writer = CalendarWriter(conn, OffsetStore("bench-apply-scaling"))
    rng = random.Random(1)
    walls: list[float] = []
    cpus: list[float] = []
    written = 0
    for n in range(_WARM_BATCHES + batches):
        batch = mixed_batch(shape, rng, batch_changes, 10_000_000 * (n + 2))
        cpu_before = _cpu_s(backend)
        started = time.perf_counter()
        result = writer.apply(batch)
        wall = time.perf_counter() - started
        cpu_after = _cpu_s(backend)
        if n < _WARM_BATCHES:
            continue
        walls.append(wall)
        written += result.calendar_upserts + result.calendar_deletes
        if cpu_before is not None and cpu_after is not None:
            cpus.append(cpu_after - cpu_before)
    return {
        "apply_s": {"p50": statistics.median(walls), "p95": percentile(walls, 95), "max": max(walls)},
        "server_cpu_s_p50": statistics.median(cpus) if cpus else None,
        "calendar_rows_written_per_batch": written / batches,
    }


def _cpu_s(stat: Path) -> float | None:
    """The process's user + system CPU seconds; None where it cannot be read (a remote server)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def render_apply_scaling(result: dict[str, Any]) -> str:
    lines = [
        f"| calendar rows | batch apply p50 / p95 / max ms, {result['batch_changes']:,} changes"
        " | server CPU p50 ms | calendar rows written a batch | p50 vs the first size |",
        "|---|---|---|---|---|",
    ]
    first = result["sizes"][0]["apply_s"]["p50"] if result["sizes"] else None
    for size in result["sizes"]:
        apply_s = size["apply_s"]
        cpu = size["server_cpu_s_p50"]
        lines.append(
            f"| {size['calendar_rows']:,} | {apply_s['p50'] * 1000:,.0f} / {apply_s['p95'] * 1000:,.0f} /"
            f" {apply_s['max'] * 1000:,.0f} | {'-' if cpu is None else f'{cpu * 1000:,.0f}'}"
            f" | {size['calendar_rows_written_per_batch']:,.0f} | {apply_s['p50'] / first:.2f}x |"
        )
    return "\n".join(lines)
