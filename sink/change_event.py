"""The typed change event the decoder produces and the rest of the sink consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

from cdcsync.sink.source_tables import SourceTable

Value = int | str | bool | datetime | Decimal | None
Key = tuple[int, ...]


class Operation(Enum):
    UPSERT = "upsert"  # Debezium create, update or snapshot read
    DELETE = "delete"


@dataclass(frozen=True, order=True)
class SourceCommitPosition:
    """Where a change sits in its source database's commit order.

    PostgreSQL change LSNs interleave across concurrent transactions, so the LSN
    alone does not follow commit order. Debezium's ``source.sequence`` is
    ``[lastCommitLsn, lsn]``: the LSN of the last transaction committed before
    this one, then the change's own LSN. Compared as a pair, that follows commit
    order, and within a transaction the order of its changes.
    """

    commit_lsn: int
    change_lsn: int


@dataclass(frozen=True)
class MessageRef:
    """Where a message was read from; used for offsets and dead-letter headers."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class ChangeEvent:
    """One committed row change of a source table, decoded exactly.

    ``values`` holds the kept non-key columns the event carries. ``unavailable``
    names the columns it does not: those Debezium replaced by its
    unavailable-value placeholder (an unchanged TOASTed value), and every
    column of a delete. The sink keeps the last known value for them. ``previous_key`` is set when the change moved
    the row from another primary key (Debezium's ``__debezium.oldkey`` header);
    unavailable values are then read from that key's row. Within a batch it may
    point further back, to where a chain of moves started.
    """

    table: SourceTable
    operation: Operation
    key: Key
    values: Mapping[str, Value]
    unavailable: frozenset[str]
    position: SourceCommitPosition
    committed_at: datetime
    previous_key: Key | None = None


@dataclass(frozen=True)
class TableTruncated:
    """A TRUNCATE of a source table: every row of it is gone as of ``position``."""

    table: SourceTable
    position: SourceCommitPosition
    committed_at: datetime
