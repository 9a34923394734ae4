"""A consumed batch collapsed to the last change per source row. Pure, no I/O."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from sink.change_event import ChangeEvent, Key, MessageRef, Operation, TableTruncated, Value
from sink.source_tables import SourceTable

TopicPartition = tuple[str, int]


class ChangeBatch:
    """Keeps only the newest change per (table, key) and the offsets to store.

    Changes are compared by ``SourceCommitPosition``, so an older duplicate
    (Debezium re-sending after a Connect restart) never replaces a newer change.
    A placeholder for an unchanged TOASTed value is filled from an earlier
    change of the same row in this batch, or of the row's previous key when the
    change moved it; what remains is resolved against the sink's replica.
    """

    def __init__(self) -> None:
        self._changes: dict[tuple[SourceTable, Key], ChangeEvent] = {}
        self._known_values: dict[tuple[SourceTable, Key], dict[str, Value]] = {}
        # Row -> the replica key its still-unavailable columns are to be read from.
        self._origins: dict[tuple[SourceTable, Key], Key] = {}
        self._first_offsets: dict[TopicPartition, int] = {}
        self._next_offsets: dict[TopicPartition, int] = {}
        self._dead_letters: dict[TopicPartition, int] = {}
        self._newest_commit: dict[TopicPartition, datetime] = {}
        self._truncations: dict[SourceTable, TableTruncated] = {}
        self.message_count = 0

    def add(self, ref: MessageRef, event: ChangeEvent | TableTruncated | None) -> None:
        """Record a consumed message; ``event`` is None for tombstones and dead letters."""
        self.message_count += 1
        partition = (ref.topic, ref.partition)
        self._next_offsets[partition] = max(self._next_offsets.get(partition, 0), ref.offset + 1)
        self._first_offsets[partition] = min(self._first_offsets.get(partition, ref.offset), ref.offset)
        if event is None:
            return
        newest = self._newest_commit.get(partition)
        if newest is None or event.committed_at > newest:
            self._newest_commit[partition] = event.committed_at
        if isinstance(event, TableTruncated):
            self._truncate(event)
            return
        truncated = self._truncations.get(event.table)
        if truncated is not None and event.position < truncated.position:
            return
        row = (event.table, event.key)
        current = self._changes.get(row)
        if current is not None and current.position > event.position:
            return
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
        current = self._truncations.get(event.table)
        if current is not None and current.position >= event.position:
            return
        self._truncations[event.table] = event
        table = event.table
        self._changes = {r: e for r, e in self._changes.items() if r[0] is not table or e.position > event.position}
        self._known_values = {r: v for r, v in self._known_values.items() if r[0] is not table}
        self._origins = {r: k for r, k in self._origins.items() if r[0] is not table}

    @property
    def truncations(self) -> list[TableTruncated]:
        return list(self._truncations.values())

    def _fill_unavailable(self, event: ChangeEvent) -> ChangeEvent:
        """Fill unavailable columns from what the batch knows of the row's latest state.

        A moved row's latest state is its previous key's (never its new key's
        earlier life). Columns the batch never saw since a move stay unavailable
        and are read from the replica row of the key the move came from, followed
        through chains of moves within the batch.
        """
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

    def changes_by_table(self) -> dict[SourceTable, list[ChangeEvent]]:
        grouped: dict[SourceTable, list[ChangeEvent]] = defaultdict(list)
        for (table, _), event in self._changes.items():
            grouped[table].append(event)
        return dict(grouped)

    @property
    def change_count(self) -> int:
        return len(self._changes)

    def add_dead_letter(self, ref: MessageRef) -> None:
        """Record a message that went to the dead-letter topic: its offset moves, nothing is applied."""
        self.add(ref, None)
        partition = (ref.topic, ref.partition)
        self._dead_letters[partition] = self._dead_letters.get(partition, 0) + 1

    @property
    def dead_letters(self) -> dict[TopicPartition, int]:
        return dict(self._dead_letters)

    @property
    def offset_ranges(self) -> dict[TopicPartition, tuple[int, int]]:
        """Per partition, [first consumed offset, offset to resume from)."""
        return {tp: (self._first_offsets[tp], nxt) for tp, nxt in self._next_offsets.items()}

    @property
    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to resume from once this batch is applied."""
        return dict(self._next_offsets)

    @property
    def newest_commit(self) -> dict[TopicPartition, datetime]:
        """Per partition, the newest source commit time among the batch's changes."""
        return dict(self._newest_commit)
