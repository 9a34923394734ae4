"""Collapsing a batch to the last change per row, and the offsets it must store."""

from __future__ import annotations

from datetime import UTC, datetime

from sink.change_batch import ChangeBatch
from sink.change_event import ChangeEvent, MessageRef, Operation, SourceCommitPosition
from sink.source_tables import ASSIGNMENTS, LECTURES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def change(
    key: int,
    commit: int,
    values: dict[str, object] | None = None,
    unavailable: frozenset[str] = frozenset(),
    previous_key: int | None = None,
    operation: Operation = Operation.UPSERT,
) -> ChangeEvent:
    return ChangeEvent(
        table=ASSIGNMENTS,
        operation=operation,
        key=(key,),
        values=values or {},  # type: ignore[arg-type]
        unavailable=unavailable,
        position=SourceCommitPosition(commit, commit),
        committed_at=T0.replace(second=commit % 60),
        previous_key=(previous_key,) if previous_key is not None else None,
    )


def ref(offset: int, topic: str = "assignment.public.assignments") -> MessageRef:
    return MessageRef(topic, 0, offset)


def test_keeps_only_the_newest_change_per_row() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "a"}))
    batch.add(ref(1), change(1, 20, {"title": "b"}))
    batch.add(ref(2), change(2, 15, {"title": "c"}))
    events = batch.changes_by_table()[ASSIGNMENTS]
    assert {e.key: e.values["title"] for e in events} == {(1,): "b", (2,): "c"}
    assert batch.change_count == 2
    assert batch.message_count == 3


def test_an_older_duplicate_never_replaces_a_newer_change() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 20, {"title": "new"}))
    batch.add(ref(1), change(1, 10, {"title": "old"}))  # re-sent after a Connect restart
    assert batch.changes_by_table()[ASSIGNMENTS][0].values["title"] == "new"


def test_placeholder_takes_the_value_of_an_earlier_change_in_the_batch() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "t", "description": "long text"}))
    batch.add(ref(1), change(1, 20, {"title": "t2"}, unavailable=frozenset({"description"})))
    event = batch.changes_by_table()[ASSIGNMENTS][0]
    assert event.values["description"] == "long text"
    assert event.unavailable == frozenset()


def test_a_moved_row_takes_unchanged_values_from_its_previous_key() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"description": "long text"}))
    all_columns = frozenset(ASSIGNMENTS.column_names)
    batch.add(ref(1), change(1, 20, operation=Operation.DELETE, unavailable=all_columns))
    batch.add(ref(2), None)  # tombstone
    batch.add(ref(3), change(2, 20, {"title": "t"}, unavailable=frozenset({"description"}), previous_key=1))
    by_key = {e.key: e for e in batch.changes_by_table()[ASSIGNMENTS]}
    assert by_key[(2,)].values["description"] == "long text"
    # The delete keeps what the batch knew, for a move in a later batch to read.
    assert by_key[(1,)].values["description"] == "long text"
    assert "description" not in by_key[(1,)].unavailable


def test_unresolved_placeholder_is_left_for_the_replica() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "t"}, unavailable=frozenset({"description"})))
    assert batch.changes_by_table()[ASSIGNMENTS][0].unavailable == {"description"}


def test_offsets_cover_every_message_including_tombstones_and_dead_letters() -> None:
    batch = ChangeBatch()
    batch.add(ref(5), change(1, 10))
    batch.add(ref(6), None)
    batch.add(MessageRef("course.public.lectures", 2, 41), None)
    assert batch.next_offsets == {("assignment.public.assignments", 0): 7, ("course.public.lectures", 2): 42}
    assert batch.newest_commit == {("assignment.public.assignments", 0): T0.replace(second=10)}


def test_changes_are_grouped_by_table() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10))
    lecture = ChangeEvent(LECTURES, Operation.DELETE, (3,), {}, frozenset(), SourceCommitPosition(1, 1), T0)
    batch.add(ref(0, "course.public.lectures"), lecture)
    assert set(batch.changes_by_table()) == {ASSIGNMENTS, LECTURES}
