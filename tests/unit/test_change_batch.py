"""Collapsing a batch to the last change per row, and the offsets it must store."""

from __future__ import annotations

from datetime import UTC, datetime

from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import ChangeEvent, MessageRef, Operation, SourceCommitPosition, TableTruncated
from cdcsync.sink.source_tables import ASSIGNMENTS, LECTURES

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
    events = batch.collapse().changes_by_table[ASSIGNMENTS]
    assert {e.key: e.values["title"] for e in events} == {(1,): "b", (2,): "c"}
    assert batch.collapse().change_count == 2
    assert batch.message_count == 3


def test_an_older_duplicate_never_replaces_a_newer_change() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 20, {"title": "new"}))
    batch.add(ref(1), change(1, 10, {"title": "old"}))  # re-sent after a Connect restart
    assert batch.collapse().changes_by_table[ASSIGNMENTS][0].values["title"] == "new"


def test_placeholder_takes_the_value_of_an_earlier_change_in_the_batch() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "t", "description": "long text"}))
    batch.add(ref(1), change(1, 20, {"title": "t2"}, unavailable=frozenset({"description"})))
    event = batch.collapse().changes_by_table[ASSIGNMENTS][0]
    assert event.values["description"] == "long text"
    assert event.unavailable == frozenset()


def test_a_moved_row_takes_unchanged_values_from_its_previous_key() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"description": "long text"}))
    all_columns = frozenset(ASSIGNMENTS.column_names)
    batch.add(ref(1), change(1, 20, operation=Operation.DELETE, unavailable=all_columns))
    batch.add(ref(2), None)  # tombstone
    batch.add(ref(3), change(2, 20, {"title": "t"}, unavailable=frozenset({"description"}), previous_key=1))
    by_key = {e.key: e for e in batch.collapse().changes_by_table[ASSIGNMENTS]}
    assert by_key[(2,)].values["description"] == "long text"
    # The delete keeps what the batch knew, for a move in a later batch to read.
    assert by_key[(1,)].values["description"] == "long text"
    assert "description" not in by_key[(1,)].unavailable


def test_unresolved_placeholder_is_left_for_the_replica() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "t"}, unavailable=frozenset({"description"})))
    assert batch.collapse().changes_by_table[ASSIGNMENTS][0].unavailable == {"description"}


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
    assert set(batch.collapse().changes_by_table) == {ASSIGNMENTS, LECTURES}


def test_changes_the_replica_already_reflects_are_dropped_before_collapsing() -> None:
    """A re-sent older change must not lend its values to a newer change's placeholder."""
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 30, {"title": "resent, older than the replica"}))
    batch.add(ref(1), change(1, 60, {"published": True}, unavailable=frozenset({"title"})))
    collapsed = batch.collapse(applied={(ASSIGNMENTS, (1,)): SourceCommitPosition(50, 50)})
    event = collapsed.changes_by_table[ASSIGNMENTS][0]
    assert event.position == SourceCommitPosition(60, 60)
    assert event.unavailable == {"title"}  # read from the replica, which is newer than the re-sent change
    assert batch.collapse(applied={(ASSIGNMENTS, (1,)): SourceCommitPosition(60, 60)}).change_count == 0


def test_changes_older_than_an_applied_truncate_are_void() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "before the truncate"}))
    batch.add(ref(1), change(2, 90, {"title": "after"}))
    collapsed = batch.collapse(truncated={ASSIGNMENTS: SourceCommitPosition(50, 50)})
    assert [e.key for e in collapsed.changes_by_table[ASSIGNMENTS]] == [(2,)]


def test_a_truncate_in_the_batch_voids_older_changes_and_keeps_newer_knowledge() -> None:
    batch = ChangeBatch()
    batch.add(ref(0), change(1, 10, {"title": "gone"}))
    batch.add(ref(1), change(2, 60, {"title": "t2", "description": "kept"}))
    truncate = TableTruncated(ASSIGNMENTS, SourceCommitPosition(50, 50), T0)
    batch.add(ref(2), truncate)  # a re-sent truncate, after a newer change
    batch.add(ref(3), change(2, 70, {"title": "t3"}, unavailable=frozenset({"description"})))
    collapsed = batch.collapse()
    assert collapsed.truncations == [truncate]
    assert [(e.key, e.values.get("description")) for e in collapsed.changes_by_table[ASSIGNMENTS]] == [((2,), "kept")]
