"""Topics created before a connector's topic-creation settings changed keep their old configs
(Connect applies ``topic.creation.*`` only when it creates a topic). This aligns them, for every
group in ``topic.creation.groups``.

Why it matters: a truncate event has no key, and a compacted topic refuses keyless records,
which fails the connector task. The shipped connectors create their change topics with
``cleanup.policy=delete`` and unlimited retention; older stacks created them compacted. The
notification topic is a log too: compaction would keep only the last notification of each
incremental snapshot (they share the signal id as key), losing which tables it scanned, which
``initial_snapshot`` needs to tell that an interrupted initial snapshot was recovered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from confluent_kafka.admin import (  # type: ignore[attr-defined]  # public names the stubs do not re-export
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from cdcsync.debezium.connector_spec import ConnectorSpec

_SETTINGS = ("cleanup.policy", "retention.ms")


def wanted_configs(spec: ConnectorSpec) -> list[tuple[str, dict[str, str]]]:
    """(topic regex, configs) of each of the spec's topic-creation groups. Pure."""
    groups = [g.strip() for g in spec.config.get("topic.creation.groups", "").split(",") if g.strip()]
    wanted = []
    for group in groups:
        include = spec.config.get(f"topic.creation.{group}.include")
        if include is None:
            continue
        prefix = f"topic.creation.{group}."
        configs = {k: spec.config[prefix + k] for k in _SETTINGS if prefix + k in spec.config}
        wanted.append((include, configs))
    return wanted


def align_change_topics(bootstrap_servers: str, specs: Sequence[ConnectorSpec], timeout: float = 30.0) -> list[str]:
    """Set the wanted configs on existing change topics that differ; returns the topics changed."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "client.id": "cdcsync-change-topics"})
    existing = admin.list_topics(timeout=timeout).topics
    wanted: dict[str, dict[str, str]] = {}
    for spec in specs:
        for pattern, configs in wanted_configs(spec):
            # Connect's include is a comma-separated list of regular expressions.
            patterns = [p.strip() for p in pattern.split(",") if p.strip()]
            wanted.update({t: configs for t in existing if any(re.fullmatch(p, t) for p in patterns)})
    if not wanted:
        return []
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic) for topic in sorted(wanted)])
    changes = []
    for resource, future in described.items():
        current = {name: entry.value for name, entry in future.result(timeout=timeout).items()}
        differing = {k: v for k, v in wanted[resource.name].items() if current.get(k) != v}
        if differing:
            changes.append(
                ConfigResource(
                    ResourceType.TOPIC,
                    resource.name,
                    incremental_configs=[
                        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in differing.items()
                    ],
                )
            )
    if not changes:
        return []
    for future in admin.incremental_alter_configs(changes).values():
        future.result(timeout=timeout)
    return sorted(c.name for c in changes)
