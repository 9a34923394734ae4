"""The one place the librdkafka configuration of the sink's clients is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message

from cdcsync.sink.settings import SinkSettings

# librdkafka logs every failed reconnect (several a second while a broker is down). The
# sink hears of the same errors through error_cb and logs one line per outage instead.
_QUIET = {"log_level": 2}


def consumer_config(settings: SinkSettings, on_error: Callable[[KafkaError], None] | None = None) -> dict[str, Any]:
    """``on_error`` gets the client's own errors (a broker down, a failed authentication), from ``consume``."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": settings.group_id,
        # Offsets live in the calendar database; Kafka commits are informational.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # Source topics appear when a connector's snapshot starts; notice them within seconds.
        "topic.metadata.refresh.interval.ms": 5_000,
        # A killed sink's partitions move to its restart (or a peer) after 10 s, not 45 s.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        # The prefetch queue (librdkafka's default is 64 MiB) holds about three batches of change events, not
        # a backlog's worth: while catching up, memory stays flat and a fetch is back before the next batch.
        "queued.max.messages.kbytes": 16_384,
        "client.id": "cdcsync-sink",
        **_QUIET,
    }
    if on_error is not None:
        config["error_cb"] = on_error
    return config


def heartbeat_consumer_config(settings: SinkSettings) -> dict[str, Any]:
    """Reads Debezium's heartbeat topics by ``assign``: it never joins the group, never commits."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": f"{settings.group_id}-heartbeats",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "client.id": "cdcsync-sink-heartbeats",
        **_QUIET,
    }


def producer_config(settings: SinkSettings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        # Every letter gets its verdict within one flush (DeadLetterTopic waits 30 s).
        "message.timeout.ms": 20_000,
        "client.id": "cdcsync-sink-dead-letters",
        **_QUIET,
    }


def admin_config(settings: SinkSettings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, "client.id": "cdcsync-sink-admin", **_QUIET}


def message_headers(message: Message) -> tuple[tuple[str, bytes | None], ...]:
    """A message's headers as (name, bytes) pairs, whichever form the client returned them in."""
    raw = message.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    return tuple((name, value.encode() if isinstance(value, str) else value) for name, value in pairs)
