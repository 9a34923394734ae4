"""The background load of the freshness runs and the backlog: a paced mix of changes across the three services.

The mix: 60% enrollment flips (active <-> dropped), 20% attendance-window changes (the window moves),
20% assignment changes (the due date moves). Each tick (every 20 ms) applies the changes due by then, one
transaction per service holding that tick's changes to it: at 10 changes/s nearly every change is a
transaction of its own, at 3,000/s a tick commits about 36 flips, 12 window and 12 assignment changes.

Enrollment slot 0 of every course is never flipped: a lecture the probe renames always has a reader.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from types import TracebackType

import psycopg

from cdcsync.pipeline.bench.dataset import LECTURES_PER_COURSE, USERS_PER_COURSE, Shape

TICK_S = 0.02
MIX = (("enrollment", 0.6), ("window", 0.2), ("assignment", 0.2))
_MAX_TICK_CHANGES = 2_000  # a late tick catches up in steps of this, not in one huge transaction


class ChangeMix:
    """Applies a given number of changes of the mix, as one transaction per service."""

    def __init__(self, urls: Mapping[str, str], shape: Shape, rng: random.Random) -> None:
        self._shape = shape
        self._rng = rng
        self._conns = {service: psycopg.connect(url, autocommit=True) for service, url in urls.items()}

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()

    def apply(self, count: int) -> int:
        """Apply ``count`` changes; returns how many rows changed (ids drawn twice in a tick count once)."""
        rng, shape = self._rng, self._shape
        kinds = rng.choices([kind for kind, _ in MIX], [weight for _, weight in MIX], k=count)
        flips = {
            (c, shape.user_of(c, rng.randrange(1, USERS_PER_COURSE)))
            for c in (rng.randrange(1, shape.courses + 1) for _ in range(kinds.count("enrollment")))
        }
        windows = sorted({rng.randrange(1, shape.lectures + 1) for _ in range(kinds.count("window"))})
        assignments = sorted({rng.randrange(1, shape.assignments + 1) for _ in range(kinds.count("assignment"))})
        changed = 0
        if flips:
            courses, users = zip(*sorted(flips), strict=True)
            changed += (
                self._conns["course"]
                .execute(
                    "UPDATE enrollments e SET status = CASE e.status WHEN 'active' THEN 'dropped' ELSE 'active' END,"
                    " updated_at = now() FROM unnest(%s::bigint[], %s::bigint[]) AS p(c, u)"
                    " WHERE e.course_id = p.c AND e.user_id = p.u",
                    (list(courses), list(users)),
                )
                .rowcount
            )
        if windows:
            changed += (
                self._conns["attendance"]
                .execute(
                    "UPDATE attendance_windows SET opens_at = opens_at + interval '5 minutes',"
                    " closes_at = closes_at + interval '5 minutes', updated_at = now() WHERE id = ANY(%s)",
                    (windows,),
                )
                .rowcount
            )
        if assignments:
            changed += (
                self._conns["assignment"]
                .execute(
                    "UPDATE assignments SET due_at = due_at + interval '1 hour', updated_at = now() WHERE id = ANY(%s)",
                    (assignments,),
                )
                .rowcount
            )
        return changed


class PacedLoad:
    """``ChangeMix`` at ``rate`` changes/s in a thread while the ``with`` block runs.

    ``applied`` counts the rows changed; ``achieved_rate`` is what the sources actually took (a machine
    too busy to keep the pace shows it here). An error that ended the thread is raised on leaving the block.
    """

    def __init__(self, urls: Mapping[str, str], shape: Shape, rate: float, seed: int) -> None:
        self._mix = ChangeMix(urls, shape, random.Random(seed))
        self._rate = rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)
        self._errors: list[BaseException] = []
        self._started = 0.0
        self._ended = 0.0
        self.applied = 0

    @property
    def achieved_rate(self) -> float:
        elapsed = (self._ended or time.monotonic()) - self._started
        return self.applied / elapsed if elapsed > 0 else 0.0

    def _run(self) -> None:
        due_total = 0
        try:
            while not self._stop.is_set():
                due = int(self._rate * (time.monotonic() - self._started)) - due_total
                if due > 0:
                    step = min(due, _MAX_TICK_CHANGES)
                    due_total += step
                    self.applied += self._mix.apply(step)
                self._stop.wait(TICK_S)
        except BaseException as exc:  # raised in the caller's thread on leaving the block
            self._errors.append(exc)

    def run_for(self, seconds: float) -> None:
        """Block while the load runs for ``seconds`` (less if it stopped on an error, raised on leaving)."""
        self._thread.join(timeout=seconds)

    def __enter__(self) -> PacedLoad:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._ended = time.monotonic()
        self._mix.close()
        if exc is None and self._errors:
            raise RuntimeError(f"the bench's load generator stopped: {self._errors[0]!r}") from self._errors[0]


def probe_lectures(shape: Shape, count: int = 400) -> list[int]:
    """Lectures the probe renames: the first lecture of each of the first ``count`` courses (at one probe per
    0.5 s, a lecture is renamed again 200 s later at the earliest: after its previous probe timed out)."""
    return [(course - 1) * LECTURES_PER_COURSE + 1 for course in range(1, min(count, shape.courses) + 1)]
