"""Debezium PostgreSQL change events as Apicurio's AvroConverter writes them: the schemas, and framed messages.

The schemas follow ``io.apicurio.registry.utils.converter.avro.AvroData`` (2.6.x,
``fromConnectSchema`` with connect meta data on, its default): a Connect struct is a
record, an optional field a ``["null", T]`` union with default null, Connect and
Debezium logical types keep ``connect.name`` / ``connect.version`` /
``connect.parameters``, Connect's Decimal also gets Avro's ``logicalType: decimal``
with ``precision`` (``connect.decimal.precision`` or 64) and ``scale``, Connect's
Timestamp ``logicalType: timestamp-millis``. A named record used again is named, not
repeated (``after`` is ``["null", "Value"]``). The envelope is Debezium's
(``before``, ``after``, ``source``, ``transaction``, ``op``, ``ts_ms``, ``ts_us``, ``ts_ns``).

Messages are encoded with fastavro and framed the Confluent way: magic byte 0, the schema
id in 4 bytes big-endian, the Avro body.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import fastavro

Field = dict[str, Any]


def zoned_timestamp() -> dict[str, Any]:
    return {"type": "string", "connect.version": 1, "connect.name": "io.debezium.time.ZonedTimestamp"}


def micro_timestamp() -> dict[str, Any]:
    return {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}


def debezium_timestamp() -> dict[str, Any]:
    return {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.Timestamp"}


def connect_timestamp() -> dict[str, Any]:
    return {
        "type": "long",
        "connect.version": 1,
        "connect.name": "org.apache.kafka.connect.data.Timestamp",
        "logicalType": "timestamp-millis",
    }


def connect_decimal(scale: int, precision: int | None = None) -> dict[str, Any]:
    """Debezium's ``precise`` decimal of a numeric(precision, scale) column (no precision: Connect's default 64)."""
    parameters = {"scale": str(scale)}
    if precision is not None:
        parameters["connect.decimal.precision"] = str(precision)
    return {
        "type": "bytes",
        "scale": scale,
        "precision": precision if precision is not None else 64,
        "connect.version": 1,
        "connect.parameters": parameters,
        "connect.name": "org.apache.kafka.connect.data.Decimal",
        "logicalType": "decimal",
    }


def variable_scale_decimal() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "VariableScaleDecimal",
        "namespace": "io.debezium.data",
        "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
        "connect.doc": "Variable scaled decimal",
        "connect.version": 1,
        "connect.name": "io.debezium.data.VariableScaleDecimal",
    }


def column(name: str, schema: Any, optional: bool = False) -> Field:
    if optional:
        return {"name": name, "type": ["null", schema], "default": None}
    return {"name": name, "type": schema}


ASSIGNMENT_COLUMNS: tuple[Field, ...] = (
    column("id", "long"),
    column("course_id", "long"),
    column("title", "string"),
    column("description", "string", optional=True),
    column("max_score", connect_decimal(2, 6), optional=True),
    column("opens_at", zoned_timestamp()),
    column("due_at", zoned_timestamp()),
    column("published", "boolean"),
    column("updated_at", zoned_timestamp()),
)


def _source() -> dict[str, Any]:
    snapshot = {
        "type": "string",
        "connect.version": 1,
        "connect.parameters": {
            "allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"
        },
        "connect.default": "false",
        "connect.name": "io.debezium.data.Enum",
    }
    optional_long = ["null", "long"]
    return {
        "type": "record",
        "name": "Source",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [
            {"name": "version", "type": "string"},
            {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "ts_ms", "type": "long"},
            {"name": "snapshot", "type": [snapshot, "null"], "default": "false"},
            {"name": "db", "type": "string"},
            {"name": "sequence", "type": ["null", "string"], "default": None},
            {"name": "ts_us", "type": optional_long, "default": None},
            {"name": "ts_ns", "type": optional_long, "default": None},
            {"name": "schema", "type": "string"},
            {"name": "table", "type": "string"},
            {"name": "txId", "type": optional_long, "default": None},
            {"name": "lsn", "type": optional_long, "default": None},
            {"name": "xmin", "type": optional_long, "default": None},
        ],
        "connect.name": "io.debezium.connector.postgresql.Source",
    }


def envelope_schema(topic: str, columns: Sequence[Field]) -> dict[str, Any]:
    """The value schema of ``topic`` (``<prefix>.<schema>.<table>``), rows of ``columns``."""
    value = {"type": "record", "name": "Value", "fields": list(columns), "connect.name": f"{topic}.Value"}
    block = {
        "type": "record",
        "name": "block",
        "namespace": "event",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "total_order", "type": "long"},
            {"name": "data_collection_order", "type": "long"},
        ],
        "connect.version": 1,
        "connect.name": "event.block",
    }
    optional_long = ["null", "long"]
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": topic,
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": _source()},
            {"name": "transaction", "type": ["null", block], "default": None},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": optional_long, "default": None},
            {"name": "ts_us", "type": optional_long, "default": None},
            {"name": "ts_ns", "type": optional_long, "default": None},
        ],
        "connect.version": 2,
        "connect.name": f"{topic}.Envelope",
    }


def key_schema(topic: str, key_columns: Sequence[str] = ("id",)) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Key",
        "namespace": topic,
        "fields": [{"name": name, "type": "long"} for name in key_columns],
        "connect.name": f"{topic}.Key",
    }


def heartbeat_schema() -> dict[str, Any]:
    """The value of Debezium's heartbeat records (``__debezium-heartbeat.<prefix>``)."""
    return {
        "type": "record",
        "name": "Heartbeat",
        "namespace": "io.debezium.connector.common",
        "fields": [{"name": "ts_ms", "type": "long"}],
        "connect.name": "io.debezium.connector.common.Heartbeat",
    }


def source_block(lsn: int | None = 1000, sequence: str | None = '["900","1000"]', **extra: Any) -> dict[str, Any]:
    return {
        "version": "3.0.8.Final",
        "connector": "postgresql",
        "name": "assignment",
        "ts_ms": 1_772_000_000_123,
        "snapshot": "false",
        "db": "assignment",
        "sequence": sequence,
        "ts_us": 1_772_000_000_123_456,
        "ts_ns": 1_772_000_000_123_456_000,
        "schema": "public",
        "table": "assignments",
        "txId": 771,
        "lsn": lsn,
        "xmin": None,
        **extra,
    }


def change(
    op: str, after: Mapping[str, Any] | None = None, before: Mapping[str, Any] | None = None, **source: Any
) -> dict[str, Any]:
    return {
        "before": before,
        "after": after,
        "source": source_block(**source),
        "transaction": None,
        "op": op,
        "ts_ms": 1_772_000_000_200,
        "ts_us": 1_772_000_000_200_000,
        "ts_ns": 1_772_000_000_200_000_000,
    }


def framed(schema_id: int, schema: Mapping[str, Any], record: Mapping[str, Any]) -> bytes:
    """``record`` in the Confluent wire format: magic byte 0, the schema id, the Avro body."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(dict(schema)), dict(record))
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
