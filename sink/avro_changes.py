"""The Avro front end: a Confluent-framed Avro change event -> the envelope, with its schema from the registry.

The wire format: magic byte 0, the writer schema's id in the registry (4 bytes,
big-endian), then the Avro binary body. ``confluent_kafka``'s ``AvroDeserializer``
(built on fastavro) reads the body with the writer schema, which the
``SchemaRegistryClient`` fetches once per id and caches; what the schema says
about Connect's and Debezium's logical types (``sink.avro_logical_types``) is
derived once per id too. Nothing connects before the first Avro message.

Each failure leaves as the decision it calls for (``sink.errors``):

- the registry does not know the id (HTTP 404): ``UnknownSchemaId``, the sink
  stops: it reads another registry than the connectors write to;
- the registry refuses the credentials (401, 403): ``SchemaRegistryAccessDenied``;
- the registry does not answer, times out or fails (5xx, 408, 429, any other
  answer): ``SchemaRegistryUnavailable``, retried; ``probe`` tells when it is back;
- the body does not match its writer schema, or the schema is no change
  envelope: ``InvalidMessage``, a dead letter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer

# The schema registry client speaks HTTP through httpx or its successor, whichever
# this installation has; the module that chooses says which, and raises its errors.
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError

from cdcsync.sink.avro_logical_types import RowConverters, convert_rows, row_converters
from cdcsync.sink.errors import (
    InvalidMessage,
    SchemaRegistryAccessDenied,
    SchemaRegistryUnavailable,
    UnknownSchemaId,
)
from cdcsync.sink.settings import SchemaRegistrySettings

T = TypeVar("T")

MAGIC_BYTE = 0
FRAME_HEADER_BYTES = 5  # the magic byte and the schema id
REQUEST_TIMEOUT_S = 10.0
# What fastavro raises for a body its writer schema cannot read (truncated, corrupt, another schema's).
_UNREADABLE_BODY = (SerializationError, EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError)


def schema_id_of(raw: bytes) -> int:
    return int.from_bytes(raw[1:FRAME_HEADER_BYTES], "big")


class AvroChanges:
    """Decodes Confluent-framed Avro through one schema registry. The clients are made at first use."""

    def __init__(self, settings: SchemaRegistrySettings) -> None:
        self._settings = settings
        self._client: SchemaRegistryClient | None = None
        self._deserializer: AvroDeserializer | None = None
        self._converters: dict[int, RowConverters] = {}
        self._unanswered: int | None = None  # the schema id of the latest lookup the registry did not answer

    @property
    def url(self) -> str:
        return self._settings.url

    def envelope(self, raw: bytes, what: str) -> dict[str, Any]:
        """The change envelope in ``raw`` (framed), its row values exact."""
        schema_id = schema_id_of(raw)
        converters = self._converters.get(schema_id)
        if converters is None:
            converters = row_converters(self._writer_schema(schema_id, what))
            self._converters[schema_id] = converters
        return convert_rows(self._record(raw, schema_id, what), converters)

    def record(self, raw: bytes, what: str) -> dict[str, Any]:
        """A record of plain Avro values in ``raw`` (framed): a key (``__debezium.oldkey``), a heartbeat."""
        schema_id = schema_id_of(raw)
        self._lookup(schema_id)
        return self._record(raw, schema_id, what)

    def probe(self) -> None:
        """Raise ``SchemaRegistryUnavailable`` until the registry answers again (or the decision it answers)."""
        if self._unanswered is not None:
            self._lookup(self._unanswered)
        else:
            self._call(lambda: self._registry().get_subjects())
        self._unanswered = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._deserializer = None

    def _writer_schema(self, schema_id: int, what: str) -> dict[str, Any]:
        schema = self._lookup(schema_id)
        if schema.schema_type not in (None, "AVRO"):
            raise InvalidMessage(f"{what}: schema id {schema_id} is a {schema.schema_type} schema, not Avro")
        try:
            parsed = json.loads(schema.schema_str or "")
        except json.JSONDecodeError as exc:
            raise InvalidMessage(f"{what}: schema id {schema_id} is not Avro schema JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise InvalidMessage(f"{what}: schema id {schema_id} is Avro {parsed!r}, not a change envelope record")
        return parsed

    def _record(self, raw: bytes, schema_id: int, what: str) -> dict[str, Any]:
        deserializer = self._deserializer
        if deserializer is None:
            deserializer = self._deserializer = AvroDeserializer(self._registry())
        try:
            record = self._call(lambda: deserializer(raw, None), schema_id)
        except _UNREADABLE_BODY as exc:
            raise InvalidMessage(
                f"{what}: its Avro body does not match its writer schema (id {schema_id}): {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(record, dict):
            raise InvalidMessage(f"{what}: Avro {type(record).__name__} (schema id {schema_id}), expected a record")
        return record

    def _lookup(self, schema_id: int) -> Schema:
        return self._call(lambda: self._registry().get_schema(schema_id), schema_id)

    def _call(self, request: Callable[[], T], schema_id: int | None = None) -> T:
        try:
            return request()
        except SchemaRegistryError as exc:
            self._refused(exc, schema_id)
        except httpx.TransportError as exc:
            self._unanswered = schema_id
            raise SchemaRegistryUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from None

    def _refused(self, exc: SchemaRegistryError, schema_id: int | None) -> NoReturn:
        answer = f"HTTP {exc.http_status_code}, error {exc.error_code}: {exc.error_message}"
        if exc.http_status_code == 404 and schema_id is not None:
            raise UnknownSchemaId(f"schema id {schema_id} is unknown to the registry at {self.url} ({answer})")
        if exc.http_status_code in (401, 403):
            raise SchemaRegistryAccessDenied(f"the registry at {self.url} refused the sink ({answer})")
        self._unanswered = schema_id
        raise SchemaRegistryUnavailable(f"the registry at {self.url} failed ({answer})")

    def _registry(self) -> SchemaRegistryClient:
        if self._client is None:
            config: dict[str, Any] = {"url": self.url, "timeout": REQUEST_TIMEOUT_S, "max.retries": 0}
            if self._settings.basic_auth_user_info is not None:
                config["basic.auth.user.info"] = self._settings.basic_auth_user_info
            self._client = SchemaRegistryClient(config)
        return self._client
