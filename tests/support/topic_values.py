"""Message values as compact JSON text, whichever change format wrote them, for tests to search."""

from __future__ import annotations

import json
from functools import lru_cache

from cdcsync.debezium.record_values import RecordDecoder, is_avro_framed


@lru_cache(maxsize=4)
def _decoder(registry_url: str | None) -> RecordDecoder:
    return RecordDecoder(registry_url)


def readable_value(raw: bytes | None, registry_url: str | None = None, topic: str = "") -> str:
    """``raw`` as compact JSON: a Confluent-framed Avro value decoded through the registry at
    ``registry_url``, a JSON value re-serialized, anything else (another test's malformed message) as text."""
    if not raw:
        return ""
    if is_avro_framed(raw) and registry_url is None:
        return raw.decode("utf-8", errors="replace")  # a JSON pipeline's topic: bytes that only look framed
    document = _decoder(registry_url).document(topic, raw)
    if document is None:
        return raw.decode("utf-8", errors="replace")
    return json.dumps(document, separators=(",", ":"), default=str)
