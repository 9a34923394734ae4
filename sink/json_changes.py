"""The JSON front end: a Debezium change event written by Kafka Connect's JsonConverter -> the envelope. Pure.

Accepts the envelope with or without the converter's schema wrapper
(``{"schema": ..., "payload": ...}``). Decimals of the ``precise`` decimal
handling mode (base64 of the unscaled bytes) become ``Decimal`` here, with the
scale the wrapper's schema gives; ``sink.change_envelope`` does the rest.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cdcsync.sink.change_envelope import exact_decimal
from cdcsync.sink.errors import InvalidMessage

_DECIMAL_LOGICAL_TYPE = "org.apache.kafka.connect.data.Decimal"


def json_document(raw: bytes, what: str, placeholder: str) -> dict[str, Any] | None:
    """The envelope (or key document) in ``raw``; None for a schema-wrapped null payload."""
    document, schema = _unwrap(_json_object(raw, what))
    if document is None or schema is None:
        return document
    for field, scales in _decimal_scales(schema).items():
        row = document.get(field)
        if isinstance(row, dict):
            document[field] = _exact_decimals(row, scales, placeholder)
    return document


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessage(f"{what} is neither Confluent-framed Avro (magic byte 0) nor valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidMessage(f"{what} is JSON {type(document).__name__}, expected an object")
    return document


def _unwrap(document: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Strip the JsonConverter ``schemas.enable=true`` wrapper when present."""
    if set(document) == {"schema", "payload"}:
        payload, schema = document["payload"], document["schema"]
        if payload is not None and not isinstance(payload, dict):
            raise InvalidMessage("'payload' of a schema-wrapped message is not an object")
        return payload, schema if isinstance(schema, dict) else None
    return document, None


def _decimal_scales(schema: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Envelope field (``before``, ``after``) -> column -> scale, for Connect ``Decimal`` columns."""
    scales: dict[str, dict[str, int]] = {}
    for envelope_field in schema.get("fields", ()):
        for column in envelope_field.get("fields", ()):
            if column.get("name") == _DECIMAL_LOGICAL_TYPE:
                scale = (column.get("parameters") or {}).get("scale")
                if scale is not None:
                    scales.setdefault(envelope_field.get("field"), {})[column["field"]] = int(scale)
    return scales


def _exact_decimals(row: dict[str, Any], scales: Mapping[str, int], placeholder: str) -> dict[str, Any]:
    exact = dict(row)
    for name, scale in scales.items():
        raw = row.get(name)
        if raw is None or raw == placeholder:
            continue
        if not isinstance(raw, str):
            raise InvalidMessage(f"column {name!r}: {raw!r} is not base64 decimal bytes")
        try:
            unscaled = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidMessage(f"column {name!r}: {raw!r} is not base64 decimal bytes") from None
        exact[name] = exact_decimal(unscaled, scale)
    return exact
