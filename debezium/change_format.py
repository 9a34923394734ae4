"""The format connectors write change events in: an overlay on the one set of definitions.

``debezium/connectors/*.json`` define each connector once, in JSON (schemaless,
Kafka's ``JsonConverter``). ``with_format(spec, ChangeFormat.AVRO)`` returns the
same connector writing Avro through a schema registry: Apicurio Registry's
``AvroConverter`` for keys and values, configured for the Confluent wire format
(magic byte 0, a 4-byte schema id, the Avro binary; no Kafka headers) with the
id the registry's Confluent-compatible API serves at ``/schemas/ids/{id}``
(the content id). Name, slot, publication and topics are the same in both
formats, so switching re-configures a connector in place: its offsets stay,
nothing is re-snapshotted.

The registry's address is a ``${env:CDCSYNC_REGISTRY_URL}`` placeholder (its
native ``/apis/registry/v2`` API), which the Connect worker resolves, so a
definition never pins an address.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.errors import ConfigError

FORMAT_ENV = "CDCSYNC_CHANGE_FORMAT"
REGISTRY_URL_PLACEHOLDER_VARIABLE = "CDCSYNC_REGISTRY_URL"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
AVRO_CONVERTER = "io.apicurio.registry.utils.converter.AvroConverter"
CONVERTER_ROLES = ("key", "value")

# Per converter (key.converter.*, value.converter.*): Apicurio's SerdeConfig keys.
AVRO_CONVERTER_OPTIONS: Mapping[str, str] = {
    "apicurio.registry.url": "${env:" + REGISTRY_URL_PLACEHOLDER_VARIABLE + "}",
    # Debezium's schemas are derived from the tables: register each new one as it appears.
    "apicurio.registry.auto-register": "true",
    # Confluent framing: magic byte 0 and a 4-byte id (Legacy4ByteIdHandler), not Apicurio's 8-byte global id.
    "apicurio.registry.as-confluent": "true",
    # The content id is what /apis/ccompat/v7/schemas/ids/{id} resolves (the global id is not, by default).
    "apicurio.registry.use-id": "contentId",
    # The id in the payload, not in Kafka headers: what Confluent deserializers expect.
    "apicurio.registry.headers.enabled": "false",
}
# Connector options that only the Avro format sets, and why:
AVRO_CONNECTOR_OPTIONS: Mapping[str, str] = {
    # NUMERIC as Avro's decimal logical type (bytes + the column's scale): exact and compact, where
    # JSON needs a string. A NUMERIC without a declared scale becomes VariableScaleDecimal.
    "decimal.handling.mode": "precise",
    # Avro names allow [A-Za-z0-9_] only; Debezium replaces anything else in schema and field names.
    "schema.name.adjustment.mode": "avro",
    "field.name.adjustment.mode": "avro",
}


class ChangeFormat(enum.StrEnum):
    JSON = "json"
    AVRO = "avro"

    @classmethod
    def parse(cls, value: str, source: str = FORMAT_ENV) -> ChangeFormat:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = "|".join(f.value for f in cls)
            raise ConfigError(source, f"{value!r} is not a change format", f"use one of {choices}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChangeFormat:
        """``CDCSYNC_CHANGE_FORMAT``, JSON when unset."""
        return cls.parse(env.get(FORMAT_ENV) or cls.JSON.value)


def _converter_keys(config: Mapping[str, str]) -> set[str]:
    """Every ``key.converter*`` and ``value.converter*`` key of ``config``."""
    return {key for key in config for role in CONVERTER_ROLES if key.startswith(f"{role}.converter")}


def with_format(spec: ConnectorSpec, change_format: ChangeFormat) -> ConnectorSpec:
    """``spec`` writing ``change_format``. Pure; JSON returns ``spec`` itself (the definitions are JSON)."""
    if change_format is ChangeFormat.JSON:
        return spec
    config = {key: value for key, value in spec.config.items() if key not in _converter_keys(spec.config)}
    for role in CONVERTER_ROLES:
        config[f"{role}.converter"] = AVRO_CONVERTER
        config.update({f"{role}.converter.{key}": value for key, value in AVRO_CONVERTER_OPTIONS.items()})
    config.update(AVRO_CONNECTOR_OPTIONS)
    return ConnectorSpec(name=spec.name, config=config)


def with_formats(specs: tuple[ConnectorSpec, ...], change_format: ChangeFormat) -> tuple[ConnectorSpec, ...]:
    return tuple(with_format(spec, change_format) for spec in specs)


def format_of(config: Mapping[str, str]) -> ChangeFormat | None:
    """The format a connector's (running) config writes, or None for converters this overlay does not make."""
    converters = {config.get(f"{role}.converter", "") for role in CONVERTER_ROLES}
    if converters == {AVRO_CONVERTER}:
        return ChangeFormat.AVRO
    if converters <= {JSON_CONVERTER, ""}:  # unset: the worker's default, JSON on the local stack and in compose
        return ChangeFormat.JSON
    return None
