"""A batch of the benchmark's change mix against a ``large_calendar`` replica.

60% enrollment flips (active <-> dropped), 20% attendance-window moves, 20% assignment
retitles, each a full-row upsert at a position newer than anything in the replica.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import ChangeEvent, MessageRef, Operation, SourceCommitPosition
from cdcsync.sink.source_tables import ASSIGNMENTS, ATTENDANCE_WINDOWS, ENROLLMENTS
from tests.support.large_calendar import CalendarShape

_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def mixed_batch(shape: CalendarShape, rng: random.Random, size: int, first_lsn: int) -> ChangeBatch:
    """``size`` changes of the mix, at commit positions from ``first_lsn`` on (one per change)."""
    batch = ChangeBatch()
    now = datetime.now(UTC)
    for n in range(size):
        position = SourceCommitPosition(first_lsn + n, first_lsn + n)
        draw = rng.random()
        if draw < 0.6:
            course = rng.randint(1, shape.courses)
            user = (course * 7 + rng.randrange(shape.users)) % shape.user_pool
            event = ChangeEvent(
                ENROLLMENTS,
                Operation.UPSERT,
                (course, user),
                {"status": rng.choice(("active", "dropped"))},
                frozenset(),
                position,
                now,
            )
        elif draw < 0.8:
            window = rng.randint(1, shape.courses * shape.lectures)
            opens = _START + timedelta(hours=window, minutes=rng.randrange(30))
            event = ChangeEvent(
                ATTENDANCE_WINDOWS,
                Operation.UPSERT,
                (window,),
                {"lecture_id": window, "opens_at": opens, "closes_at": opens + timedelta(minutes=15)},
                frozenset(),
                position,
                now,
            )
        else:
            assignment = rng.randint(1, shape.courses * shape.assignments)
            event = ChangeEvent(
                ASSIGNMENTS,
                Operation.UPSERT,
                (assignment,),
                {
                    "course_id": (assignment - 1) // shape.assignments + 1,
                    "title": f"assignment {assignment} v{first_lsn + n}",
                    "description": None,
                    "max_score": Decimal("10.00"),
                    "opens_at": _START + timedelta(days=assignment),
                    "due_at": _START + timedelta(days=assignment + 7),
                    "published": True,
                },
                frozenset(),
                position,
                now,
            )
        batch.add(MessageRef(event.table.default_topic(), 0, first_lsn + n), event)
    return batch
