"""The apply pipeline: one batch applies on the worker while the caller goes on; outcomes in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cdcsync.sink.apply_pipeline import ApplyPipeline
from cdcsync.sink.calendar_writer import BatchResult
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.errors import CalendarDatabaseUnavailable

WAIT_S = 10.0  # a bound for a thread handshake, never a sleep


class GatedApply:
    """An apply that says when it started and finishes only when released; it fails when told to."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []
        self.applied: list[ChangeBatch] = []
        self.fail_next = False

    def __call__(self, batch: ChangeBatch) -> BatchResult:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        assert self.release.wait(WAIT_S), "never released"
        if self.fail_next:
            self.fail_next = False
            raise CalendarDatabaseUnavailable("the connection is closed")
        self.applied.append(batch)
        return BatchResult(
            messages=batch.message_count, changes=1, replica_rows=1, calendar_upserts=2, calendar_deletes=0
        )


@pytest.fixture
def gated() -> GatedApply:
    return GatedApply()


@pytest.fixture
def pipeline(gated: GatedApply) -> Iterator[ApplyPipeline]:
    pipeline = ApplyPipeline(gated)
    yield pipeline
    gated.release.set()
    pipeline.close()


def test_the_caller_goes_on_while_a_batch_applies(pipeline: ApplyPipeline, gated: GatedApply) -> None:
    batch = ChangeBatch()
    pipeline.submit(batch, dead_letters=3)
    assert gated.started.wait(WAIT_S)
    assert pipeline.in_flight == 1 and not gated.applied  # submit returned while the apply still runs
    gated.release.set()
    applied = pipeline.take()
    assert applied is not None
    assert applied.batch is batch and applied.dead_letters == 3 and applied.result.calendar_upserts == 2
    assert applied.seconds >= 0 and applied.committed_at > 0
    assert pipeline.in_flight == 0 and pipeline.take() is None
    assert gated.threads and all(name.startswith("cdcsync-apply") for name in gated.threads)


def test_one_batch_at_most_is_in_flight(pipeline: ApplyPipeline, gated: GatedApply) -> None:
    pipeline.submit(ChangeBatch(), dead_letters=0)
    with pytest.raises(RuntimeError, match="still in flight"):
        pipeline.submit(ChangeBatch(), dead_letters=0)
    gated.release.set()
    assert pipeline.take() is not None
    pipeline.submit(ChangeBatch(), dead_letters=0)
    assert pipeline.take() is not None and len(gated.applied) == 2


def test_join_waits_and_leaves_the_outcome_to_take(pipeline: ApplyPipeline, gated: GatedApply) -> None:
    pipeline.join()  # nothing in flight: returns at once
    pipeline.submit(ChangeBatch(), dead_letters=0)
    gated.release.set()
    pipeline.join()
    assert len(gated.applied) == 1 and pipeline.in_flight == 1
    assert pipeline.take() is not None and pipeline.in_flight == 0


def test_a_failed_apply_is_raised_by_take_and_the_next_batch_still_applies(
    pipeline: ApplyPipeline, gated: GatedApply
) -> None:
    gated.fail_next = True
    gated.release.set()
    pipeline.submit(ChangeBatch(), dead_letters=0)
    with pytest.raises(CalendarDatabaseUnavailable):
        pipeline.take()
    assert pipeline.in_flight == 0 and not gated.applied
    pipeline.submit(ChangeBatch(), dead_letters=0)
    assert pipeline.take() is not None and len(gated.applied) == 1


def test_close_waits_for_the_batch_in_flight(gated: GatedApply) -> None:
    pipeline = ApplyPipeline(gated)
    pipeline.submit(ChangeBatch(), dead_letters=0)
    assert gated.started.wait(WAIT_S)
    closer = threading.Thread(target=pipeline.close)
    closer.start()
    closer.join(0.05)
    assert closer.is_alive()  # still waiting for the apply
    gated.release.set()
    closer.join(WAIT_S)
    assert not closer.is_alive() and len(gated.applied) == 1
