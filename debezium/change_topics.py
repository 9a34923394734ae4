"""Change topics created before a connector's topic-creation settings changed keep their old
configs (Connect applies ``topic.creation.*`` only when it creates a topic). This aligns them.

Why it matters: a truncate event has no key, and a compacted topic refuses keyless records,
which fails the connector task. The shipped connectors create their change topics with
``cleanup.policy=delete`` and unlimited retention; older stacks created them compacted.
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

from debezium.connector_spec import ConnectorSpec

_GROUP = "changes"
_SETTINGS = ("cleanup.policy", "retention.ms")


def wanted_configs(spec: ConnectorSpec) -> tuple[str, dict[str, str]] | None:
    """(topic regex, configs) of the spec's change-topic creation group, if it has one."""
    include = spec.config.get(f"topic.creation.{_GROUP}.include")
    if include is None:
        return None
    configs = {
        k: spec.config[f"topic.creation.{_GROUP}.{k}"]
        for k in _SETTINGS
        if f"topic.creation.{_GROUP}.{k}" in spec.config
    }
    return include, configs


def align_change_topics(bootstrap_servers: str, specs: Sequence[ConnectorSpec], timeout: float = 30.0) -> list[str]:
    """Set the wanted configs on existing change topics that differ; returns the topics changed."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "client.id": "cdcsync-change-topics"})
    existing = admin.list_topics(timeout=timeout).topics
    wanted: dict[str, dict[str, str]] = {}
    for spec in specs:
        group = wanted_configs(spec)
        if group is not None:
            pattern, configs = group
            wanted.update({topic: configs for topic in existing if re.fullmatch(pattern, topic)})
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
