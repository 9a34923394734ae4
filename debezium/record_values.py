"""Record values as documents, whichever format the connector wrote: JSON, or Confluent-framed Avro.

Debezium's notification and heartbeat records go through the connector's
converters, so they are JSON under the default format and Avro under
``ChangeFormat.AVRO``; a topic holds both after a switch. ``RecordDecoder``
decides per record: a value that starts with the Confluent magic byte 0 is
Avro (its schema fetched by id from the registry, then cached), anything else
is read as JSON (a JSON document never starts with a NUL byte).
"""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from cdcsync.errors import CdcsyncError, ConfigError

MAGIC_BYTE = 0
FRAME_HEADER_BYTES = 5  # magic byte + 4-byte schema id
SCHEMA_REGISTRY_URL_ENV = "SCHEMA_REGISTRY_URL"
# The client's own retries, with exponential backoff from 1 s: about 30 s of a registry restart is waited out.
REGISTRY_RETRIES = 5


class UndecodableRecord(CdcsyncError):
    """An Avro-framed record whose schema the registry cannot give (unknown id, registry down)."""

    exit_code = 1


def is_avro_framed(value: bytes) -> bool:
    """Whether ``value`` starts like a Confluent-framed record: magic byte 0, then a 4-byte id. Pure."""
    return len(value) > FRAME_HEADER_BYTES and value[0] == MAGIC_BYTE


def frame_schema_id(value: bytes) -> int:
    """The schema id of a Confluent-framed value (big-endian, after the magic byte). Pure."""
    return int.from_bytes(value[1:FRAME_HEADER_BYTES], "big")


class RecordDecoder:
    """Decodes record values to documents; Avro needs ``registry_url`` (the Confluent-compatible API).

    Construction makes no request; schemas are fetched on first use and cached
    by the client.
    """

    def __init__(self, registry_url: str | None = None, *, retries: int = REGISTRY_RETRIES) -> None:
        self._registry_url = registry_url
        self._retries = retries
        self._avro: AvroDeserializer | None = None

    def document(self, topic: str, value: bytes | None) -> Any:
        """The value as a JSON-like document; None for an empty value or one that is not JSON.

        Raises ``ConfigError`` for an Avro record without a registry URL, and
        ``UndecodableRecord`` when the registry cannot give its schema.
        """
        if not value:
            return None
        if is_avro_framed(value):
            return self._decode_avro(topic, value)
        try:
            return json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    def _decode_avro(self, topic: str, value: bytes) -> Any:
        if self._avro is None:
            if not self._registry_url:
                raise ConfigError(
                    SCHEMA_REGISTRY_URL_ENV,
                    f"not set, and {topic} holds Avro (schema id {frame_schema_id(value)})",
                    "export SCHEMA_REGISTRY_URL=http://HOST:PORT/apis/ccompat/v7 (cdcsync stack env prints it)",
                )
            client = SchemaRegistryClient({"url": self._registry_url, "max.retries": self._retries})
            self._avro = AvroDeserializer(client)
        try:
            return self._avro(value, SerializationContext(topic, MessageField.VALUE))
        except (SchemaRegistryError, SerializationError) as exc:
            raise UndecodableRecord(
                f"{topic}: cannot decode an Avro record with schema id {frame_schema_id(value)} "
                f"through {self._registry_url}: {exc}"
            ) from exc
        except Exception as exc:
            # The registry client's HTTP errors (unreachable, timed out) come from its private HTTP layer,
            # after its own retries (max.retries): an outage of the registry, named by its type.
            raise UndecodableRecord(
                f"{topic}: the registry {self._registry_url} did not answer for schema id "
                f"{frame_schema_id(value)} ({type(exc).__name__}: {exc})"
            ) from exc
