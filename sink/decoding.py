"""Where a change event is decoded: Kafka message bytes -> ``ChangeEvent`` (or ``TableTruncated``).

Each message is read in the format it is in, so a topic may carry both (as it does
while the connectors move from JSON to Avro):

- magic byte 0 and at least the 5-byte frame header: Confluent-framed Avro,
  read through the schema registry (``sink.avro_changes``);
- anything else: JSON as Kafka Connect's JsonConverter writes it (``sink.json_changes``);
- neither (a 0 byte too short for a frame, bytes that are not JSON): ``InvalidMessage``.

Both front ends hand the envelope to ``sink.change_envelope``, so everything after
the wire format is shared. Debezium's ``__debezium.oldkey`` header is read the same
way. An Avro message with no registry configured stops the sink
(``SchemaRegistryNotConfigured``) before any offset moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cdcsync.sink.avro_changes import FRAME_HEADER_BYTES, MAGIC_BYTE, AvroChanges, schema_id_of
from cdcsync.sink.change_envelope import (
    OLD_KEY_HEADER,
    UNAVAILABLE_VALUE_PLACEHOLDER,
    change_from_envelope,
    key_of,
)
from cdcsync.sink.change_event import ChangeEvent, Key, TableTruncated
from cdcsync.sink.errors import InvalidMessage, SchemaRegistryNotConfigured
from cdcsync.sink.json_changes import json_document
from cdcsync.sink.source_tables import SourceTable

__all__ = ["OLD_KEY_HEADER", "UNAVAILABLE_VALUE_PLACEHOLDER", "decode_change", "is_avro"]

Headers = Sequence[tuple[str, bytes | None]] | None


def decode_change(
    table: SourceTable,
    value: bytes | None,
    headers: Headers = None,
    avro: AvroChanges | None = None,
    placeholder: str = UNAVAILABLE_VALUE_PLACEHOLDER,
) -> ChangeEvent | TableTruncated | None:
    """Decode one Debezium change event of ``table``; ``None`` for a tombstone.

    ``avro`` reads Avro messages; without it, one stops the sink. A tombstone (null
    value) always follows the delete event of the same key, which carries the
    position and is what the sink applies.
    """
    if value is None:
        return None
    envelope = _document(value, "message value", avro, placeholder, envelope=True)
    if envelope is None:
        return None
    return change_from_envelope(table, envelope, _previous_key(table, headers, avro, placeholder), placeholder)


def is_avro(raw: bytes, what: str) -> bool:
    """Whether ``raw`` is Confluent-framed Avro (else it can only be JSON)."""
    if raw[:1] != bytes([MAGIC_BYTE]):
        return False
    if len(raw) < FRAME_HEADER_BYTES:
        raise InvalidMessage(
            f"{what} starts with the Avro magic byte 0 but has {len(raw)} bytes, fewer than the "
            f"{FRAME_HEADER_BYTES}-byte frame header: neither Confluent-framed Avro nor JSON"
        )
    return True


def _document(
    raw: bytes, what: str, avro: AvroChanges | None, placeholder: str, *, envelope: bool
) -> dict[str, Any] | None:
    if not is_avro(raw, what):
        return json_document(raw, what, placeholder)
    if avro is None:
        raise SchemaRegistryNotConfigured(
            f"{what} is Avro (schema id {schema_id_of(raw)}) and SCHEMA_REGISTRY_URL is not set"
        )
    return avro.envelope(raw, what) if envelope else avro.record(raw, what)


def _previous_key(table: SourceTable, headers: Headers, avro: AvroChanges | None, placeholder: str) -> Key | None:
    for name, raw in headers or ():
        if name == OLD_KEY_HEADER and raw is not None:
            what = f"header {OLD_KEY_HEADER}"
            document = _document(raw, what, avro, placeholder, envelope=False)
            return None if document is None else key_of(table, document, what)
    return None
