"""The sink engine (decoding, batching, replica, projection) against real PostgreSQL.

Random transactions across the three services are delivered in random
cross-topic interleavings, in random batch sizes, with duplicated and replayed
ranges; the calendar must end equal to the rules applied to the final source
state, and a replay must never move a calendar row back.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import psycopg
import pytest

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
from tests.support.source_simulator import SimulatedMessage, SourceSimulator

pytestmark = pytest.mark.postgres


def _deliveries(
    rng: random.Random, topics: dict[str, list[SimulatedMessage]]
) -> Iterator[tuple[MessageRef, SimulatedMessage]]:
    """Interleave topics at random, keeping each partition's order; re-send ranges
    as Connect does after a restart (at new offsets) and replay old offsets."""
    logs = {topic: list(messages) for topic, messages in topics.items()}
    for log in logs.values():
        for _ in range(rng.randint(0, 3)):
            if log:
                start = rng.randrange(len(log))
                resend = log[start : start + rng.randint(1, 8)]
                insert_at = rng.randint(start + len(resend), len(log))
                log[insert_at:insert_at] = resend
    cursors = dict.fromkeys(logs, 0)
    while any(cursors[t] < len(logs[t]) for t in logs):
        topic = rng.choice([t for t in logs if cursors[t] < len(logs[t])])
        offset = cursors[topic]
        yield MessageRef(topic, 0, offset), logs[topic][offset]
        cursors[topic] += 1
        if rng.random() < 0.02:  # replay an already-applied range of this partition
            back = rng.randint(0, offset)
            for replay in range(back, offset + 1):
                yield MessageRef(topic, 0, replay), logs[topic][replay]


def _apply(writer: CalendarWriter, messages: list[tuple[MessageRef, SimulatedMessage]]) -> None:
    routing = default_routing()
    batch = ChangeBatch()
    for ref, message in messages:
        batch.add(ref, decode_change(routing[message.topic], message.value, message.headers))
    writer.apply(batch)


@pytest.mark.parametrize("seed", range(int(os.environ.get("CDCSYNC_ENGINE_SEEDS", "8"))))
def test_calendar_equals_rules_under_any_delivery(fresh_database: str, seed: int) -> None:
    rng = random.Random(seed)
    source = SourceSimulator(rng)
    source.seed_base_state()
    for _ in range(rng.randint(60, 160)):
        source.random_transaction()

    with psycopg.connect(fresh_database, autocommit=True) as conn:
        migrate(conn)
        writer = CalendarWriter(conn, OffsetStore("engine-test"))
        pending: list[tuple[MessageRef, SimulatedMessage]] = []
        for delivery in _deliveries(rng, source.topics):
            pending.append(delivery)
            if len(pending) >= rng.choice((1, 3, 17, 60)):
                _apply(writer, pending)
                pending = []
        _apply(writer, pending)

    report = compare_calendars(expected_calendar(source.state()), read_calendar(fresh_database))
    assert report.clean, (
        report.missing[:3],
        report.extra[:3],
        [(w.expected, w.differing_columns) for w in report.wrong[:3]],
    )
