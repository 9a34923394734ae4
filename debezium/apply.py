"""``apply``: make Kafka Connect run exactly the given definitions, idempotently.

- ``load_specs``: definitions from files and directories (``-f``), distinct names, slots and prefixes.
- ``apply_connector``: compare with the running config, then ``PUT .../config`` only on a difference.
- ``validate_specs``: the plugin's validate endpoint; nothing is created.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec, check_distinct, load_connector_specs, parse_connector_spec
from cdcsync.errors import ConfigError


class ApplyOutcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def load_specs(paths: Sequence[Path]) -> tuple[ConnectorSpec, ...]:
    """Definitions from ``paths`` (files, or directories of ``*.json``) in the order given; none: the packaged ones."""
    if not paths:
        return load_connector_specs()
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise ConfigError(str(path), "holds no *.json connector definition", "add one file per connector")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(str(path), "does not exist", "pass a connector JSON file or a directory of them")
    parsed = [(str(f), parse_connector_spec(f.read_text(encoding="utf-8"), str(f))) for f in dict.fromkeys(files)]
    check_distinct(parsed)
    return tuple(spec for _, spec in parsed)


def planned_outcome(client: ConnectClient, spec: ConnectorSpec) -> ApplyOutcome:
    """What applying ``spec`` would do, judged from the running config."""
    try:
        running = client.get_connector_config(spec.name)
    except ConnectorNotFound:
        return ApplyOutcome.CREATED
    return ApplyOutcome.UNCHANGED if spec.matches(running) else ApplyOutcome.UPDATED


def apply_connector(client: ConnectClient, spec: ConnectorSpec) -> ApplyOutcome:
    """Create or update ``spec`` so the running config equals it. Idempotent."""
    planned = planned_outcome(client, spec)
    if planned is ApplyOutcome.UNCHANGED:
        return planned
    created = client.put_connector_config(spec.name, spec.config)
    return ApplyOutcome.CREATED if created else ApplyOutcome.UPDATED


@dataclass(frozen=True)
class Validation:
    spec: ConnectorSpec
    errors: dict[str, tuple[str, ...]]  # property -> messages; empty when valid
    planned: ApplyOutcome | None  # None when invalid

    def lines(self) -> list[str]:
        verdict = "invalid" if self.errors else f"would be {self.planned.value if self.planned else '?'}"
        return [f"{self.spec.name}: {verdict}"] + [
            f"  {key}: {message}" for key, messages in sorted(self.errors.items()) for message in messages
        ]


def validate_specs(client: ConnectClient, specs: Iterable[ConnectorSpec]) -> list[Validation]:
    """Each definition through ``PUT /connector-plugins/{class}/config/validate``; creates nothing."""
    results = []
    for spec in specs:
        errors = client.validate_connector_config(spec.name, spec.config)
        results.append(Validation(spec, errors, None if errors else planned_outcome(client, spec)))
    return results
