"""A consumed batch collapsed to the last change per source row. Pure, no I/O."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from sink.change_event import ChangeEvent, Key, MessageRef, Operation, Value
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
        self._next_offsets: dict[TopicPartition, int] = {}
        self._newest_commit: dict[TopicPartition, datetime] = {}
        self.message_count = 0

    def add(self, ref: MessageRef, event: ChangeEvent | None) -> None:
        """Record a consumed message; ``event`` is None for tombstones and dead letters."""
        self.message_count += 1
        partition = (ref.topic, ref.partition)
        self._next_offsets[partition] = max(self._next_offsets.get(partition, 0), ref.offset + 1)
        if event is None:
            return
        newest = self._newest_commit.get(partition)
        if newest is None or event.committed_at > newest:
            self._newest_commit[partition] = event.committed_at
        row = (event.table, event.key)
        current = self._changes.get(row)
        if current is not None and current.position > event.position:
            return
        if event.unavailable:
            event = self._fill_unavailable(event)
        self._changes[row] = event
        if event.operation is Operation.UPSERT:
            self._known_values.setdefault(row, {}).update(event.values)

    def _fill_unavailable(self, event: ChangeEvent) -> ChangeEvent:
        sources = [self._known_values.get((event.table, event.key), {})]
        if event.previous_key is not None:
            sources.append(self._known_values.get((event.table, event.previous_key), {}))
        values = dict(event.values)
        still_unavailable = set()
        for column in event.unavailable:
            for known in sources:
                if column in known:
                    values[column] = known[column]
                    break
            else:
                still_unavailable.add(column)
        return replace(event, values=values, unavailable=frozenset(still_unavailable))

    def changes_by_table(self) -> dict[SourceTable, list[ChangeEvent]]:
        grouped: dict[SourceTable, list[ChangeEvent]] = defaultdict(list)
        for (table, _), event in self._changes.items():
            grouped[table].append(event)
        return dict(grouped)

    @property
    def change_count(self) -> int:
        return len(self._changes)

    @property
    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to resume from once this batch is applied."""
        return dict(self._next_offsets)

    @property
    def newest_commit(self) -> dict[TopicPartition, datetime]:
        """Per partition, the newest source commit time among the batch's changes."""
        return dict(self._newest_commit)
