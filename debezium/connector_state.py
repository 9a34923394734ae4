"""What Kafka Connect says about a connector: its status, and with ``info`` its type and config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class TaskState:
    id: int
    state: str
    worker_id: str
    trace: str | None = None


@dataclass(frozen=True)
class ConnectorState:
    """A connector's status as the REST API reports it (GET /connectors/{name}/status)."""

    name: str
    state: str
    worker_id: str
    tasks: tuple[TaskState, ...]
    trace: str | None = None
    type: str = "unknown"

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(t.state == "RUNNING" for t in self.tasks)

    @property
    def failed(self) -> bool:
        return self.state == "FAILED" or any(t.state == "FAILED" for t in self.tasks)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ConnectorState:
        connector = document.get("connector") or {}
        return cls(
            name=str(document.get("name", "")),
            state=str(connector.get("state", "UNKNOWN")),
            worker_id=str(connector.get("worker_id", "")),
            trace=connector.get("trace"),
            type=str(document.get("type") or "unknown"),
            tasks=tuple(
                TaskState(
                    id=int(t.get("id", -1)),
                    state=str(t.get("state", "UNKNOWN")),
                    worker_id=str(t.get("worker_id", "")),
                    trace=t.get("trace"),
                )
                for t in document.get("tasks") or ()
            ),
        )


@dataclass(frozen=True)
class ConnectorInfo:
    """A connector's status plus its stored config (placeholders unresolved). ``config`` is read-only."""

    status: ConnectorState
    config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    @property
    def name(self) -> str:
        return self.status.name

    @classmethod
    def from_json(cls, info: Mapping[str, Any], status: Mapping[str, Any]) -> ConnectorInfo:
        """``info`` is GET /connectors/{name} (name, config, tasks, type); ``status`` its /status."""
        state = ConnectorState.from_json({"name": info.get("name"), **status})
        if state.type == "unknown" and info.get("type"):
            state = replace(state, type=str(info["type"]))
        config = {str(k): str(v) for k, v in (info.get("config") or {}).items()}
        return cls(status=state, config=config)
