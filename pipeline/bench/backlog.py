"""Backlog: N source changes written while the sink is stopped, then timed as the sink catches up; beside it,
the raw ceilings for writing the same calendar rows in the same database.

The sink's time runs from its partitions being assigned (its /metrics shows them; process start-up and the
group join are not counted) to its stored offsets reaching the topics' ends. Its calendar rows are the rows
it upserted and deleted (its own counters). Peak RSS is sampled every 0.2 s from start to caught up.

The ceilings write the rows the sink upserted (``synced_at`` after the sink resumed) into
``calendar.bench_ceiling``, a full copy of ``calendar_entries`` (same indexes, same size), two ways:
server-side ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` from a staged table, and from a client,
``COPY`` into a temporary table then the same upsert. Staging and the copy are not timed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from cdcsync.pipeline.bench.cdcsync_peer import CdcsyncPeer
from cdcsync.pipeline.bench.dataset import Shape
from cdcsync.pipeline.bench.process_memory import PeakSampler
from cdcsync.pipeline.bench.sources import BenchSources
from cdcsync.pipeline.bench.workload import ChangeMix
from cdcsync.pipeline.stack.processes import wait_until
from cdcsync.sink.calendar_columns import CALENDAR_COLUMNS, KEY_COLUMN_NAMES, column_list
from cdcsync.sink.metrics import ASSIGNED, CALENDAR_DELETES, CALENDAR_UPSERTS, MESSAGES

Say = Callable[[str], None]
_CATCH_UP_S = 300.0  # to finish what the freshness runs left, before the backlog starts
_CHUNK = 1_000  # changes per source transaction while writing the backlog
_STAGED = sql.Identifier("calendar", "bench_backlog_rows")
_CEILING = sql.Identifier("calendar", "bench_ceiling")
_ENTRIES = sql.Identifier("calendar", "calendar_entries")


def measure_backlog(
    peer: CdcsyncPeer, sources: BenchSources, shape: Shape, *, changes: int, timeout: float, say: Say
) -> dict[str, Any]:
    wait_until(lambda: peer.caught_up(sources.end_offsets()), _CATCH_UP_S, "the sink to catch up before the backlog")
    peer.pause()
    started = time.monotonic()
    mix = ChangeMix(sources.urls, shape, random.Random(20))
    written = 0
    try:
        for done in range(0, changes, _CHUNK):
            written += mix.apply(min(_CHUNK, changes - done))
    finally:
        mix.close()
    write_s = time.monotonic() - started
    ends = sources.wait_captured(timeout)
    say(f"  backlog: {written:,} source rows changed in {write_s:.1f}s and captured; resuming the sink")
    with psycopg.connect(peer.ctx.target_url, autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    resumed_at = row[0] if row else None
    stored = peer.stored_offsets() or {}
    backlog_messages = sum(end - stored.get(topic, 0) for topic, end in ends.items())
    peer.resume()
    with PeakSampler(peer.rss_bytes, interval=0.2) as rss:
        wait_until(lambda: _assigned(peer), timeout, "the sink to be assigned its partitions", interval=0.02)
        assigned = time.monotonic()
        wait_until(lambda: peer.caught_up(ends), timeout, "the sink to apply the backlog", interval=0.05)
        apply_s = time.monotonic() - assigned
    # The sink counts a batch once its loop takes the commit (while it reads the next one): wait for the count.
    wait_until(
        lambda: peer.metrics().get(MESSAGES, 0) >= backlog_messages, 30.0, "the sink's metrics to count the backlog"
    )
    metrics = peer.metrics()
    upserts = int(metrics.get(CALENDAR_UPSERTS, 0))
    deletes = int(metrics.get(CALENDAR_DELETES, 0))
    rows_per_s = (upserts + deletes) / apply_s if apply_s > 0 else None
    ceilings = _ceilings(peer.ctx.target_url, resumed_at)
    result: dict[str, Any] = {
        "source_changes": written,
        "kafka_messages": sum(ends.values()),
        "apply_s": round(apply_s, 3),
        "calendar_rows_upserted": upserts,
        "calendar_rows_deleted": deletes,
        "calendar_rows_per_s": rows_per_s,
        "sink_peak_rss_bytes": rss.peak,
        "sink_rss_first_last_bytes": [rss.samples[0], rss.samples[-1]] if rss.samples else None,
        "ceilings": ceilings,
    }
    for ceiling in ceilings.values():
        if rows_per_s and ceiling.get("rows_per_s"):
            ceiling["sink_ratio"] = round(rows_per_s / ceiling["rows_per_s"], 3)
    say(
        f"  backlog: {upserts + deletes:,} calendar rows in {apply_s:.2f}s = {rows_per_s or 0:,.0f} rows/s, "
        f"peak RSS {(rss.peak or 0) / 2**20:.0f} MiB; ceilings: "
        + ", ".join(f"{n} {c.get('rows_per_s') or 0:,.0f} rows/s" for n, c in ceilings.items())
    )
    return result


def _assigned(peer: CdcsyncPeer) -> bool:
    peer.check_alive()
    try:
        return float(peer.metrics().get(ASSIGNED, 0)) > 0
    except OSError:  # requests' connection errors: the endpoint is not up yet
        return False


def _copy_indexes(conn: psycopg.Connection[Any]) -> None:
    """The calendar's indexes (primary key included, as a unique index) on its copy, built after the copy's rows
    went in: faster than maintaining them row by row, and the same indexes in the end."""
    definitions = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'calendar' AND tablename = 'calendar_entries'"
    ).fetchall()
    for (definition,) in definitions:
        copied = str(definition).replace(" ON calendar.calendar_entries ", " ON calendar.bench_ceiling ", 1)
        copied = copied.replace("INDEX calendar_entries", "INDEX bench_ceiling", 1)
        conn.execute(sql.SQL(copied))  # PostgreSQL's own definition, with the names swapped


def _ceilings(target_url: str, since: object) -> dict[str, dict[str, Any]]:
    columns = column_list(CALENDAR_COLUMNS)
    keys = sql.SQL(", ").join(sql.Identifier(name) for name in KEY_COLUMN_NAMES)
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(c.identifier) for c in CALENDAR_COLUMNS if c.name not in KEY_COLUMN_NAMES
    )
    upsert = sql.SQL(
        "INSERT INTO {target} ({columns}) SELECT {columns} FROM {source} ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )
    with psycopg.connect(target_url, autocommit=True) as conn:
        for table in (_STAGED, _CEILING):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT * FROM {} WHERE synced_at >= %s").format(_STAGED, _ENTRIES), (since,)
        )
        conn.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(_CEILING, _ENTRIES))
        _copy_indexes(conn)
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(_CEILING))  # no autovacuum during the timing
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(_STAGED))
        staged = conn.execute(sql.SQL("SELECT {} FROM {}").format(columns, _STAGED)).fetchall()

        started = time.monotonic()
        with conn.transaction():
            conn.execute(upsert.format(target=_CEILING, columns=columns, source=_STAGED, keys=keys, updates=updates))
        server_s = time.monotonic() - started

        started = time.monotonic()
        with conn.transaction():
            conn.execute(sql.SQL("CREATE TEMPORARY TABLE bench_copy_in (LIKE {}) ON COMMIT DROP").format(_ENTRIES))
            with conn.cursor().copy(sql.SQL("COPY bench_copy_in ({}) FROM STDIN").format(columns)) as copy:
                for record in staged:
                    copy.write_row(record)
            conn.execute(
                upsert.format(
                    target=_CEILING, columns=columns, source=sql.Identifier("bench_copy_in"), keys=keys, updates=updates
                )
            )
        client_s = time.monotonic() - started
        for table in (_STAGED, _CEILING):
            conn.execute(sql.SQL("DROP TABLE {}").format(table))
    rows = len(staged)
    return {
        "server_insert_select": {
            "rows": rows,
            "seconds": round(server_s, 3),
            "rows_per_s": rows / server_s if server_s else None,
        },
        "client_copy_upsert": {
            "rows": rows,
            "seconds": round(client_s, 3),
            "rows_per_s": rows / client_s if client_s else None,
        },
    }
