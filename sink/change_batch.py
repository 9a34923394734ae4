"""A consumed batch: its messages' offsets, and its changes collapsed to the last per row. Pure, no I/O.

Collapsing needs to know which changes the replica already reflects: a change
that is not newer than its row's replica position (a re-send or a replay) is
dropped *before* collapsing, so that the values the batch fills placeholders
from are always newer than the replica's. The writer reads those positions in
one query per table and passes them to ``ChangeBatch.collapse``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from cdcsync.sink.change_event import (
    ChangeEvent,
    Key,
    MessageRef,
    Operation,
    SourceCommitPosition,
    TableTruncated,
    Value,
)
from cdcsync.sink.source_tables import SourceTable

TopicPartition = tuple[str, int]
Row = tuple[SourceTable, Key]


@dataclass(frozen=True)
class CollapsedChanges:
    """The newest change per row that the replica does not reflect yet, and the batch's truncates."""

    changes_by_table: dict[SourceTable, list[ChangeEvent]]
    truncations: list[TableTruncated]

    @property
    def change_count(self) -> int:
        return sum(len(events) for events in self.changes_by_table.values())


class ChangeBatch:
    """Offsets and events of one consumed batch, in consumption order."""

    def __init__(self) -> None:
        self._events: list[ChangeEvent | TableTruncated] = []
        self._first_offsets: dict[TopicPartition, int] = {}
        self._next_offsets: dict[TopicPartition, int] = {}
        self._dead_letters: dict[TopicPartition, int] = {}
        self._newest_commit: dict[TopicPartition, datetime] = {}
        self._commit_times: dict[TopicPartition, list[datetime]] = defaultdict(list)
        self.message_count = 0

    def add(self, ref: MessageRef, event: ChangeEvent | TableTruncated | None) -> None:
        """Record a consumed message; ``event`` is None for tombstones."""
        self.message_count += 1
        partition = (ref.topic, ref.partition)
        self._next_offsets[partition] = max(self._next_offsets.get(partition, 0), ref.offset + 1)
        self._first_offsets[partition] = min(self._first_offsets.get(partition, ref.offset), ref.offset)
        if event is None:
            return
        newest = self._newest_commit.get(partition)
        if newest is None or event.committed_at > newest:
            self._newest_commit[partition] = event.committed_at
        self._commit_times[partition].append(event.committed_at)
        self._events.append(event)

    def add_dead_letter(self, ref: MessageRef) -> None:
        """Record a message that went to the dead-letter topic: its offset moves, nothing is applied."""
        self.add(ref, None)
        partition = (ref.topic, ref.partition)
        self._dead_letters[partition] = self._dead_letters.get(partition, 0) + 1

    def rows_by_table(self) -> dict[SourceTable, set[Key]]:
        """Every row the batch's changes name (their keys and previous keys)."""
        rows: dict[SourceTable, set[Key]] = defaultdict(set)
        for event in self._events:
            if isinstance(event, ChangeEvent):
                rows[event.table].add(event.key)
                if event.previous_key is not None:
                    rows[event.table].add(event.previous_key)
        return dict(rows)

    def collapse(
        self,
        applied: Mapping[Row, SourceCommitPosition] | None = None,
        truncated: Mapping[SourceTable, SourceCommitPosition] | None = None,
    ) -> CollapsedChanges:
        """The last change per row among those newer than what the replica reflects.

        ``applied`` is the replica position of rows the batch names; ``truncated``
        the position of the last truncate the replica applied, per table.
        """
        collapser = _Collapser(applied or {}, truncated or {})
        for event in self._events:
            collapser.add(event)
        return collapser.result()

    @property
    def offset_ranges(self) -> dict[TopicPartition, tuple[int, int]]:
        """Per partition, [first consumed offset, offset to resume from)."""
        return {tp: (self._first_offsets[tp], nxt) for tp, nxt in self._next_offsets.items()}

    @property
    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to resume from once this batch is applied."""
        return dict(self._next_offsets)

    @property
    def dead_letters(self) -> dict[TopicPartition, int]:
        return dict(self._dead_letters)

    @property
    def commit_times(self) -> dict[TopicPartition, list[datetime]]:
        """Per partition, the source commit time of each change consumed (for the latency histogram)."""
        return dict(self._commit_times)

    @property
    def newest_commit(self) -> dict[TopicPartition, datetime]:
        """Per partition, the newest source commit time among the batch's changes."""
        return dict(self._newest_commit)


class _Collapser:
    """Keeps the newest change per row, filling placeholders from the batch's newer knowledge.

    A placeholder for an unchanged TOASTed value is filled from an earlier change
    of the same row in the batch, or of the row's previous key when the change
    moved it; what remains is read from the replica (of the key a chain of moves
    started from).
    """

    def __init__(
        self, applied: Mapping[Row, SourceCommitPosition], truncated: Mapping[SourceTable, SourceCommitPosition]
    ) -> None:
        self._applied = dict(applied)
        self._truncated = dict(truncated)
        self._changes: dict[Row, ChangeEvent] = {}
        self._known_values: dict[Row, dict[str, Value]] = {}
        # Row -> the replica key its still-unavailable columns are to be read from.
        self._origins: dict[Row, Key] = {}
        self._truncations: dict[SourceTable, TableTruncated] = {}

    def _is_stale(self, event: ChangeEvent) -> bool:
        row = (event.table, event.key)
        newest = max(
            (p for p in (self._applied.get(row), self._truncated.get(event.table)) if p is not None), default=None
        )
        current = self._changes.get(row)
        if current is not None and (newest is None or current.position > newest):
            newest = current.position
        return newest is not None and event.position <= newest

    def add(self, event: ChangeEvent | TableTruncated) -> None:
        if isinstance(event, TableTruncated):
            self._truncate(event)
            return
        if self._is_stale(event):
            return
        row = (event.table, event.key)
        moved = event.previous_key is not None
        if event.unavailable:
            event = self._fill_unavailable(event)
        else:
            self._origins.pop(row, None)
        self._changes[row] = event
        if event.operation is Operation.UPSERT:
            if moved:  # a moved row starts from its previous key's state, not its own earlier life
                self._known_values[row] = dict(event.values)
            else:
                self._known_values.setdefault(row, {}).update(event.values)

    def _truncate(self, event: TableTruncated) -> None:
        """Changes of the table older than the truncate are void; newer ones apply after it."""
        current = self._truncated.get(event.table)
        if current is not None and current >= event.position:
            return
        self._truncated[event.table] = event.position
        self._truncations[event.table] = event
        table = event.table
        self._changes = {r: e for r, e in self._changes.items() if r[0] is not table or e.position > event.position}
        self._known_values = {r: v for r, v in self._known_values.items() if r[0] is not table or r in self._changes}
        self._origins = {r: k for r, k in self._origins.items() if r[0] is not table or r in self._changes}

    def _fill_unavailable(self, event: ChangeEvent) -> ChangeEvent:
        row = (event.table, event.key)
        if event.previous_key is not None:
            previous = (event.table, event.previous_key)
            known = self._known_values.get(previous, {})
            origin: Key | None = self._origins.get(previous, event.previous_key)
        else:
            known = self._known_values.get(row, {})
            origin = self._origins.get(row)
        values = dict(event.values)
        missing = set()
        for column in event.unavailable:
            if column in known:
                values[column] = known[column]
            else:
                missing.add(column)
        if missing and origin is not None:
            self._origins[row] = origin
        else:
            self._origins.pop(row, None)
            origin = None
        return replace(event, values=values, unavailable=frozenset(missing), previous_key=origin)

    def result(self) -> CollapsedChanges:
        grouped: dict[SourceTable, list[ChangeEvent]] = defaultdict(list)
        for (table, _), event in self._changes.items():
            grouped[table].append(event)
        return CollapsedChanges(dict(grouped), list(self._truncations.values()))
