"""Applies a batch on a worker thread while the consumer loop reads and decodes the next one.

psycopg releases the GIL while it waits on PostgreSQL, so the loop's Python (consuming,
decoding) runs while the batch before commits. At most one batch is in flight, so at most
two decoded batches exist: the one applying and the one being built.

While a batch is in flight the worker owns the calendar database's connection: anything
else that needs it (a rebalance callback, a recovery, an idle check) first waits with
``join``. The caller takes each outcome with ``take`` before it submits the next batch, so
batches apply one after the other, in the order they were consumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from cdcsync.sink.calendar_writer import BatchResult
from cdcsync.sink.change_batch import ChangeBatch


@dataclass(frozen=True)
class AppliedBatch:
    """A batch whose transaction committed."""

    batch: ChangeBatch
    result: BatchResult
    dead_letters: int
    seconds: float  # time in the apply, the commit included
    committed_at: float  # wall clock (epoch seconds) right after the commit


class ApplyPipeline:
    """One worker thread, at most one batch in flight. Nothing starts before the first ``submit``."""

    def __init__(self, apply: Callable[[ChangeBatch], BatchResult]) -> None:
        self._apply = apply
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdcsync-apply")
        self._in_flight: Future[AppliedBatch] | None = None

    @property
    def in_flight(self) -> int:
        """Batches submitted and not taken yet: 0 or 1."""
        return 0 if self._in_flight is None else 1

    def submit(self, batch: ChangeBatch, dead_letters: int) -> None:
        """Start applying ``batch``; the outcome of the one before must have been taken."""
        if self._in_flight is not None:
            raise RuntimeError("a batch is still in flight: take its outcome before submitting the next")
        self._in_flight = self._executor.submit(self._run, batch, dead_letters)

    def join(self) -> None:
        """Wait until the batch in flight, if any, has finished; its outcome stays there for ``take``."""
        if self._in_flight is not None:
            wait([self._in_flight])

    def take(self) -> AppliedBatch | None:
        """Wait for the batch in flight and hand it over (None if there is none), or raise what its apply raised."""
        future, self._in_flight = self._in_flight, None
        return None if future is None else future.result()

    def close(self) -> None:
        """Wait for the batch in flight (its outcome is dropped: the offsets that count are stored with it)."""
        self._in_flight = None
        self._executor.shutdown(wait=True)

    def _run(self, batch: ChangeBatch, dead_letters: int) -> AppliedBatch:
        started = time.monotonic()
        result = self._apply(batch)
        return AppliedBatch(batch, result, dead_letters, time.monotonic() - started, time.time())
