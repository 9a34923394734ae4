"""Debezium's change envelope -> ``ChangeEvent``: what every wire format shares. Pure.

A front end (``sink.json_changes``, ``sink.avro_changes``) turns the bytes of a
message into the envelope as a mapping (``op``, ``before``, ``after``, ``source``)
whose row values are already Python values: ``int``, ``bool``, ``str``,
``Decimal`` for exact decimals, ``datetime`` for timestamps the wire format
carries as numbers. This module reads the op, the source position and commit
time, the key, the kept columns and Debezium's unavailable-value placeholder,
and checks every value against the column it fills, exactly: timestamps to the
microsecond with their offset, decimals fitted to the column's scale. Anything
that cannot be decoded raises ``InvalidMessage`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from cdcsync.sink.change_event import ChangeEvent, Key, Operation, SourceCommitPosition, TableTruncated, Value
from cdcsync.sink.errors import InvalidMessage
from cdcsync.sink.source_tables import Column, ColumnType, SourceTable

UNAVAILABLE_VALUE_PLACEHOLDER = "__debezium_unavailable_value"
OLD_KEY_HEADER = "__debezium.oldkey"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = (-(2**63), 2**63 - 1)


def change_from_envelope(
    table: SourceTable,
    envelope: Mapping[str, Any],
    previous_key: Key | None,
    placeholder: str = UNAVAILABLE_VALUE_PLACEHOLDER,
) -> ChangeEvent | TableTruncated:
    """The change one envelope of ``table`` describes; ``previous_key`` comes from the old-key header."""
    op = envelope.get("op")
    source = envelope.get("source")
    if not isinstance(source, Mapping):
        raise InvalidMessage("envelope has no 'source' block: not a Debezium change event")
    position = _position(source)
    committed_at = _commit_time(source)

    if op in ("c", "u", "r"):
        row = _row(envelope, "after", op)
        values, unavailable = _decode_values(table, row, placeholder)
        if unavailable and (op == "r" or (op == "c" and previous_key is None)):
            raise InvalidMessage(
                f"op {op!r} carries the unavailable-value placeholder in {sorted(unavailable)}: "
                "no earlier value exists to keep"
            )
        return ChangeEvent(
            table=table,
            operation=Operation.UPSERT,
            key=key_of(table, row, "after"),
            values=values,
            unavailable=frozenset(unavailable),
            position=position,
            committed_at=committed_at,
            previous_key=previous_key,
        )
    if op == "d":
        row = _row(envelope, "before", op)
        return ChangeEvent(
            table=table,
            operation=Operation.DELETE,
            key=key_of(table, row, "before"),
            values={},
            # The before image holds only the key (default replica identity).
            unavailable=frozenset(table.column_names),
            position=position,
            committed_at=committed_at,
        )
    if op == "t":
        return TableTruncated(table=table, position=position, committed_at=committed_at)
    raise InvalidMessage(f"unknown envelope op {op!r}: expected one of c, u, r, d, t")


def key_of(table: SourceTable, row: Mapping[str, Any], where: str) -> Key:
    """The primary key of ``table`` read from ``row`` (an envelope row or a key document)."""
    key: list[int] = []
    for column in table.key:
        if column.name not in row:
            raise InvalidMessage(f"key column {column.name!r} missing from {where} of {table.qualified_name}")
        value = _decode_value(column, row[column.name])
        if not isinstance(value, int):
            raise InvalidMessage(f"key column {column.name!r} of {table.qualified_name} is null")
        key.append(value)
    return tuple(key)


def exact_decimal(unscaled: bytes, scale: int) -> Decimal:
    """Connect's Decimal bytes (big-endian two's complement of the unscaled value) at ``scale``, never rounded."""
    return Decimal(f"{int.from_bytes(unscaled, 'big', signed=True)}E{-scale}")


def _row(envelope: Mapping[str, Any], field: str, op: str) -> Mapping[str, Any]:
    row = envelope.get(field)
    if not isinstance(row, Mapping):
        raise InvalidMessage(f"op {op!r} without an '{field}' row")
    return row


def _sequence(source: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Debezium's ``source.sequence``: ``[lastCommitLsn, lsn]`` as a JSON string, either may be null."""
    sequence = source.get("sequence")
    if sequence is None:
        return None, None
    try:
        parts = json.loads(sequence) if isinstance(sequence, str) else sequence
        last_commit, lsn = parts
        return (None if last_commit is None else int(last_commit)), (None if lsn is None else int(lsn))
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidMessage(f"source.sequence {sequence!r} is not [lastCommitLsn, lsn]") from None


def _position(source: Mapping[str, Any]) -> SourceCommitPosition:
    last_commit, sequence_lsn = _sequence(source)
    if source.get("snapshot") == "incremental":
        # An incremental-snapshot read has no LSN of its own: it is the row as committed
        # up to the last commit Debezium streamed. It orders after every change of that
        # transaction and before any change of a later one, hence change LSN 0.
        anchor = last_commit if last_commit is not None else sequence_lsn
        if anchor is None:
            raise InvalidMessage("incremental snapshot read without source.sequence: its position is unknown")
        return SourceCommitPosition(commit_lsn=anchor, change_lsn=0)
    lsn = source.get("lsn")
    if not isinstance(lsn, int) or isinstance(lsn, bool):
        raise InvalidMessage(f"source.lsn is {lsn!r}, expected an integer LSN")
    return SourceCommitPosition(commit_lsn=lsn if last_commit is None else last_commit, change_lsn=lsn)


def _commit_time(source: Mapping[str, Any]) -> datetime:
    ts_us = source.get("ts_us")
    if ts_us is None and isinstance(source.get("ts_ms"), int):
        ts_us = source["ts_ms"] * 1000
    if not isinstance(ts_us, int) or isinstance(ts_us, bool):
        raise InvalidMessage("source has neither ts_us nor ts_ms: the commit time is unknown")
    return EPOCH + timedelta(microseconds=ts_us)


def _decode_values(table: SourceTable, row: Mapping[str, Any], placeholder: str) -> tuple[dict[str, Value], set[str]]:
    values: dict[str, Value] = {}
    unavailable: set[str] = set()
    for column in table.columns:
        if column.name not in row:
            raise InvalidMessage(
                f"column {column.name!r} missing from {table.qualified_name}: the calendar rules need it "
                "(was it dropped or renamed in the source?)"
            )
        raw = row[column.name]
        if raw == placeholder:
            unavailable.add(column.name)
            continue
        values[column.name] = _decode_value(column, raw)
    return values, unavailable


def _decode_value(column: Column, raw: Any) -> Value:
    if raw is None:
        if not column.nullable:
            raise InvalidMessage(f"column {column.name!r} is null but the rules need a value")
        return None
    decoder = _DECODERS[column.type]
    return decoder(column, raw)


def _bigint(column: Column, raw: Any) -> Value:
    if not isinstance(raw, int) or isinstance(raw, bool) or not _INT64[0] <= raw <= _INT64[1]:
        raise InvalidMessage(f"column {column.name!r}: {raw!r} is not a bigint")
    return raw


def _text(column: Column, raw: Any) -> Value:
    if not isinstance(raw, str):
        raise InvalidMessage(f"column {column.name!r}: {type(raw).__name__} where text was expected")
    if "\x00" in raw:
        raise InvalidMessage(f"column {column.name!r}: text with a NUL character cannot be stored")
    return raw


def _boolean(column: Column, raw: Any) -> Value:
    if not isinstance(raw, bool):
        raise InvalidMessage(f"column {column.name!r}: {raw!r} is not a boolean")
    return raw


def _timestamptz(column: Column, raw: Any) -> Value:
    """io.debezium.time.ZonedTimestamp (ISO-8601 with offset, up to microseconds), or an instant a front end
    decoded from a numeric timestamp type."""
    if isinstance(raw, datetime):
        if raw.tzinfo is None:
            raise InvalidMessage(f"column {column.name!r}: {raw!r} has no UTC offset")
        return raw
    if not isinstance(raw, str):
        raise InvalidMessage(
            f"column {column.name!r}: {raw!r} is not an ISO-8601 timestamp with offset "
            "(io.debezium.time.ZonedTimestamp)"
        )
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidMessage(f"column {column.name!r}: {raw!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise InvalidMessage(f"column {column.name!r}: {raw!r} has no UTC offset")
    return parsed


def _numeric(column: Column, raw: Any) -> Value:
    """An exact decimal: a ``Decimal`` a front end decoded, or the ``string`` decimal handling mode's text."""
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, str):
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise InvalidMessage(f"column {column.name!r}: {raw!r} is not a decimal") from None
    else:
        raise InvalidMessage(
            f"column {column.name!r}: {raw!r} is not an exact decimal; "
            "set the connector's decimal.handling.mode to string or precise"
        )
    return _fit_numeric(column, value)


def _fit_numeric(column: Column, value: Decimal) -> Decimal:
    if not value.is_finite():
        raise InvalidMessage(f"column {column.name!r}: {value} cannot be stored in {column.sql_type}")
    if column.precision is None:
        return value
    scale = column.scale or 0
    quantized = value.quantize(Decimal(1).scaleb(-scale))
    integer_digits = len(quantized.as_tuple().digits) - scale
    if quantized != value or integer_digits > column.precision - scale:
        raise InvalidMessage(f"column {column.name!r}: {value} does not fit {column.sql_type}")
    return quantized


_DECODERS = {
    ColumnType.BIGINT: _bigint,
    ColumnType.TEXT: _text,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.TIMESTAMPTZ: _timestamptz,
    ColumnType.NUMERIC: _numeric,
}
