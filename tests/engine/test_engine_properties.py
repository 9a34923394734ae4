"""Property-based (hypothesis) suite of the projection engine against real PostgreSQL.

Input: random transactions across the three services (inserts, updates of any
column, deletes, primary-key changes, filter flips, moves between parents,
multi-row transactions, truncates). Delivery: any interleaving across topics
with each partition's order kept, re-sent ranges and replays of any offset
range, in any batch sizes. Properties: after every batch no replica row has
moved back to an older position; at the end the calendar equals the rules
applied to the final source state. Hypothesis shrinks a failure to a small case.
"""

from __future__ import annotations

import os
import random

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from cdcsync.pipeline.verification.compare import compare_calendars
from cdcsync.pipeline.verification.expected_calendar import expected_calendar
from cdcsync.pipeline.verification.source_reader import read_calendar
from cdcsync.sink.calendar_writer import CalendarWriter
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import MessageRef
from cdcsync.sink.consumer_loop import default_routing
from cdcsync.sink.decoding import decode_change
from cdcsync.sink.offset_store import OffsetStore
from cdcsync.sink.schema import migrate
from cdcsync.sink.source_tables import SOURCE_TABLES
from tests.engine.test_projection_engine import _deliveries
from tests.support.source_simulator import SimulatedMessage, SourceSimulator

pytestmark = pytest.mark.postgres

Positions = dict[tuple[str, tuple[object, ...]], tuple[int, int]]


def _replica_positions(conn: psycopg.Connection[tuple[object, ...]]) -> Positions:
    positions: Positions = {}
    for table in SOURCE_TABLES:
        keys = sql.SQL(", ").join(map(sql.Identifier, table.key_names))
        query = sql.SQL("SELECT {}, _commit_lsn, _change_lsn FROM {}").format(
            keys, sql.Identifier("cdcsync", table.name)
        )
        for row in conn.execute(query):
            *key, commit, change = row
            positions[(table.name, tuple(key))] = (int(str(commit)), int(str(change)))
    return positions


@settings(
    max_examples=int(os.environ.get("CDCSYNC_PROPERTY_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    workload=st.randoms(use_true_random=False),
    delivery=st.randoms(use_true_random=False),
    transactions=st.integers(min_value=1, max_value=80),
    batch_sizes=st.lists(st.integers(min_value=4, max_value=80), min_size=1, max_size=6),
)
def test_calendar_equals_rules_and_never_moves_back(
    fresh_database: str,
    workload: random.Random,
    delivery: random.Random,
    transactions: int,
    batch_sizes: list[int],
) -> None:
    source = SourceSimulator(workload)
    source.seed_base_state()
    for _ in range(transactions):
        source.random_transaction()
    routing = default_routing()

    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS calendar CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS cdcsync CASCADE")
        migrate(conn)
        writer = CalendarWriter(conn, OffsetStore("properties"))
        seen: Positions = {}
        pending: list[tuple[MessageRef, SimulatedMessage]] = []

        def apply() -> None:
            batch = ChangeBatch()
            for ref, message in pending:
                batch.add(ref, decode_change(routing[message.topic], message.value, message.headers))
            writer.apply(batch)
            pending.clear()
            now = _replica_positions(conn)
            moved_back = {row: (seen[row], now[row]) for row in seen.keys() & now.keys() if now[row] < seen[row]}
            assert not moved_back, f"replica rows moved back: {list(moved_back.items())[:3]}"
            seen.update(now)

        sizes = iter(batch_sizes * 10_000)
        target = next(sizes)
        for message in _deliveries(delivery, source.topics):
            pending.append(message)
            if len(pending) >= target:
                apply()
                target = next(sizes)
        apply()

    report = compare_calendars(expected_calendar(source.state()), read_calendar(fresh_database))
    assert report.clean, (
        report.missing[:3],
        report.extra[:3],
        [(w.expected, w.differing_columns) for w in report.wrong[:3]],
    )
