"""Message values as compact JSON text, whichever change format wrote them, for tests to search."""

from __future__ import annotations

import json
from functools import lru_cache

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

CONFLUENT_MAGIC = 0


@lru_cache(maxsize=4)
def _deserializer(registry_url: str) -> AvroDeserializer:
    deserializer: AvroDeserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    return deserializer


def readable_value(raw: bytes | None, registry_url: str | None = None, topic: str = "") -> str:
    """``raw`` as compact JSON: a Confluent-framed Avro value decoded through the registry at
    ``registry_url``, a JSON value re-serialized, anything else (another test's malformed message) as text."""
    if not raw:
        return ""
    if raw[0] == CONFLUENT_MAGIC and len(raw) > 5 and registry_url is not None:
        document = _deserializer(registry_url)(raw, SerializationContext(topic, MessageField.VALUE))
        return json.dumps(document, separators=(",", ":"), default=str)
    try:
        return json.dumps(json.loads(raw), separators=(",", ":"))
    except ValueError:
        return raw.decode("utf-8", errors="replace")
