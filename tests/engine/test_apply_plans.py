"""Every statement of the incremental apply path is index-driven, whatever the calendar's size.

A batch of the benchmark's mix is applied to a large calendar with fresh statistics; each
statement is EXPLAINed with its own parameters at the instant it runs, in the batch's
transaction. A sequential scan of the calendar or of a replica table (or an index scan with no
condition) would make every batch cost a pass over the read model.
"""

from __future__ import annotations

import random

import psycopg
import pytest

from cdcsync.pipeline.bench.synthetic_calendar import CalendarShape, fill_replica, mixed_batch, project_everything
from cdcsync.sink.calendar_writer import CalendarWriter
from cdcsync.sink.offset_store import OffsetStore
from cdcsync.sink.schema import migrate
from cdcsync.sink.source_replica import REPLICA_SCHEMA
from cdcsync.sink.source_tables import SOURCE_TABLES
from tests.support.plan_capture import capture_plans

pytestmark = pytest.mark.postgres

_WATCHED = {("calendar", "calendar_entries")} | {(REPLICA_SCHEMA, table.name) for table in SOURCE_TABLES}
# Many small courses: a scope of a few dozen keys is then far cheaper to probe than any table to scan.
_SHAPE = CalendarShape(courses=20_000, users=2, lectures=2, assignments=1)  # 200k calendar rows


@pytest.mark.slow
@pytest.mark.parametrize("changes", [1, 40])
def test_no_statement_of_a_batch_reads_a_whole_table(fresh_database: str, changes: int) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        migrate(conn)
        writer = CalendarWriter(conn, OffsetStore("plan-test"))
        with conn.transaction(), conn.cursor() as cur:
            fill_replica(cur, _SHAPE)
            project_everything(cur, _SHAPE)
        assert conn.execute("SELECT count(*) FROM calendar.calendar_entries").fetchone() == (_SHAPE.calendar_rows,)

        rng = random.Random(changes)
        writer.apply(mixed_batch(_SHAPE, rng, changes, 10_000_000))  # a warm session, as in the daemon
        with capture_plans(conn) as captured:
            writer.apply(mixed_batch(_SHAPE, rng, changes, 20_000_000))

    assert len(captured.plans) >= 5, "the apply path ran no statement through the capturing cursor"
    scans = captured.full_scans(_WATCHED)
    assert not scans, "\n".join(scans)
