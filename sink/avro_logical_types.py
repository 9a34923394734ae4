"""What the Kafka Connect types in an Avro writer schema mean, and how their values become exact Python values. Pure.

Apicurio's ``AvroConverter`` (like Confluent's) writes a Connect schema as Avro
and keeps what Avro cannot say in properties: ``connect.name`` (the Connect or
Debezium logical type), ``connect.version``, ``connect.parameters`` (a Decimal's
``scale``, ``connect.decimal.precision``). Connect's own logical types also get
Avro's ``logicalType`` (``decimal`` with ``precision``/``scale``,
``timestamp-millis``), which fastavro decodes by itself into ``Decimal`` and
UTC-aware ``datetime``. Debezium's types have no Avro counterpart:

- ``io.debezium.time.ZonedTimestamp``: a string, ISO-8601 with offset (left as it is);
- ``io.debezium.time.MicroTimestamp``: a long, microseconds since the epoch;
- ``io.debezium.time.Timestamp``: a long, milliseconds since the epoch;
- ``io.debezium.data.VariableScaleDecimal``: a record ``{scale: int, value: bytes}``.

``row_converters`` reads a writer schema once (the caller caches the result per
schema id) and returns, for the envelope's ``before`` and ``after`` rows, a
converter per column whose raw value needs one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cdcsync.sink.change_envelope import EPOCH, exact_decimal
from cdcsync.sink.errors import InvalidMessage

Converter = Callable[[str, Any], Any]
RowConverters = Mapping[str, Mapping[str, Converter]]  # envelope field -> column -> converter

ZONED_TIMESTAMP = "io.debezium.time.ZonedTimestamp"
MICRO_TIMESTAMP = "io.debezium.time.MicroTimestamp"
DEBEZIUM_TIMESTAMP = "io.debezium.time.Timestamp"
CONNECT_TIMESTAMP = "org.apache.kafka.connect.data.Timestamp"
CONNECT_DECIMAL = "org.apache.kafka.connect.data.Decimal"
VARIABLE_SCALE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
_ROW_FIELDS = ("before", "after")


def row_converters(writer_schema: Mapping[str, Any]) -> RowConverters:
    """Per envelope row field and column, how to make its raw value exact; raises InvalidMessage for a schema
    that is not a Debezium change envelope."""
    if writer_schema.get("type") != "record":
        raise InvalidMessage(f"the writer schema is Avro {writer_schema.get('type')!r}, not a change envelope record")
    named = dict(_named_records(writer_schema, writer_schema.get("namespace")))
    converters: dict[str, dict[str, Converter]] = {}
    for field in writer_schema.get("fields", ()):
        if field.get("name") not in _ROW_FIELDS:
            continue
        row = _resolve(_non_null(field.get("type")), named)
        if not isinstance(row, Mapping) or row.get("type") != "record":
            raise InvalidMessage(f"envelope field {field.get('name')!r} is not a record of the row's columns")
        converters[field["name"]] = {
            column["name"]: converter
            for column in row.get("fields", ())
            if (converter := _converter(_resolve(_non_null(column.get("type")), named))) is not None
        }
    if not converters:
        raise InvalidMessage("the writer schema has neither 'before' nor 'after': not a Debezium change envelope")
    return converters


def convert_rows(record: Mapping[str, Any], converters: RowConverters) -> dict[str, Any]:
    """The decoded envelope with exact values in its rows."""
    envelope = dict(record)
    for field, columns in converters.items():
        row = envelope.get(field)
        if isinstance(row, Mapping) and columns:
            envelope[field] = {
                name: (columns[name](name, raw) if name in columns and raw is not None else raw)
                for name, raw in row.items()
            }
    return envelope


def _named_records(schema: Any, namespace: str | None) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every named record in ``schema``, by its full name and by its short name: a later use names it
    instead of repeating it (Avro writes the short name within the same namespace: ``after`` is ``"Value"``)."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_records(branch, namespace)
    elif isinstance(schema, Mapping):
        namespace = schema.get("namespace", namespace)
        if schema.get("type") == "record" and isinstance(schema.get("name"), str):
            name = schema["name"]
            yield name, schema
            if namespace and "." not in name:
                yield f"{namespace}.{name}", schema
            for field in schema.get("fields", ()):
                yield from _named_records(field.get("type"), namespace)
        elif schema.get("type") in ("array", "map"):
            yield from _named_records(schema.get("items", schema.get("values")), namespace)


def _non_null(schema: Any) -> Any:
    """The branch of an optional field's ``["null", T]`` union that is not null."""
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        return branches[0] if len(branches) == 1 else schema
    return schema


def _resolve(schema: Any, named: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(schema, str) and schema in named:
        return named[schema]
    return schema


def _converter(schema: Any) -> Converter | None:
    if not isinstance(schema, Mapping):
        return None
    name = schema.get("connect.name")
    if name == MICRO_TIMESTAMP:
        return _micro_timestamp
    if name in (DEBEZIUM_TIMESTAMP, CONNECT_TIMESTAMP):
        return _milli_timestamp
    if name == CONNECT_DECIMAL or schema.get("logicalType") == "decimal":
        return _fixed_scale_decimal(_decimal_scale(schema))
    if name == VARIABLE_SCALE_DECIMAL:
        return _variable_scale_decimal
    return None  # ZonedTimestamp and every plain type: the raw value is already exact


def _decimal_scale(schema: Mapping[str, Any]) -> int:
    scale = schema.get("scale", (schema.get("connect.parameters") or {}).get("scale", 0))
    try:
        return int(scale)
    except (TypeError, ValueError):
        raise InvalidMessage(f"a Decimal in the writer schema has scale {scale!r}, not an integer") from None


def _micro_timestamp(name: str, raw: Any) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return EPOCH + timedelta(microseconds=raw)
    raise InvalidMessage(f"column {name!r}: {raw!r} is not {MICRO_TIMESTAMP} (microseconds since the epoch)")


def _milli_timestamp(name: str, raw: Any) -> Any:
    if isinstance(raw, datetime):  # Avro's timestamp-millis, which fastavro decodes
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return EPOCH + timedelta(milliseconds=raw)
    raise InvalidMessage(f"column {name!r}: {raw!r} is not a timestamp in milliseconds since the epoch")


def _fixed_scale_decimal(scale: int) -> Converter:
    def convert(name: str, raw: Any) -> Any:
        if isinstance(raw, Decimal):  # Avro's decimal logical type, which fastavro decodes
            return raw
        if isinstance(raw, bytes):
            return exact_decimal(raw, scale)
        return raw  # the placeholder or a mismatch: sink.change_envelope says which

    return convert


def _variable_scale_decimal(name: str, raw: Any) -> Any:
    if isinstance(raw, Mapping) and isinstance(raw.get("scale"), int) and isinstance(raw.get("value"), bytes):
        return exact_decimal(raw["value"], raw["scale"])
    raise InvalidMessage(f"column {name!r}: {raw!r} is not a {VARIABLE_SCALE_DECIMAL} {{scale, value}}")
