"""The whole local stack: PostgreSQL, then Kafka, then Kafka Connect; stopped in reverse.

The schema registry is opt-in (``StackSettings.registry_wanted``, the Avro change
format): it starts after Kafka, before Connect. With the default nothing about it
is resolved, started or waited for; ``down`` and ``status`` still see a registry
that an earlier ``stack up --format avro`` started.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.connect import LocalConnect
from cdcsync.pipeline.stack.jvm import JavaRuntime, JvmArtifacts
from cdcsync.pipeline.stack.kafka import LocalKafka
from cdcsync.pipeline.stack.parts import PartStatus
from cdcsync.pipeline.stack.postgres import LocalPostgres
from cdcsync.pipeline.stack.registry import LocalRegistry

logger = logging.getLogger(__name__)

OnReady = Callable[[PartStatus, float], None]


class StackPart(Protocol):
    def start(self, timeout: float) -> None: ...

    def stop(self) -> bool: ...

    def status(self) -> PartStatus: ...


class DatabasePart(StackPart, Protocol):
    def bootstrap(self) -> None: ...


class OptionalPart(StackPart, Protocol):
    def is_running(self) -> bool: ...

    def ensure_artifacts(self) -> bool: ...


class LocalStack:
    """Starts, stops and reports the parts in dependency order. Construction touches nothing."""

    def __init__(
        self,
        settings: StackSettings,
        *,
        artifacts: JvmArtifacts | None = None,
        postgres: DatabasePart | None = None,
        kafka: StackPart | None = None,
        connect: StackPart | None = None,
        registry: OptionalPart | None = None,
    ) -> None:
        """The keyword arguments replace a part (tests pass stand-ins); by default each is the real one."""
        self._artifacts = artifacts or JvmArtifacts(settings)
        self._postgres = postgres or LocalPostgres(settings)
        self._kafka = kafka or LocalKafka(settings, self._artifacts)
        self._connect = connect or LocalConnect(settings, self._artifacts)
        self._registry = registry or LocalRegistry(settings)
        self._registry_wanted = settings.registry_wanted

    @property
    def parts(self) -> tuple[tuple[str, StackPart], ...]:
        """(name, part) in start order; the registry only if wanted or still running."""
        registry: tuple[tuple[str, StackPart], ...] = ()
        if self._registry_wanted or self._registry.is_running():
            registry = (("registry", self._registry),)
        return (("postgres", self._postgres), ("kafka", self._kafka), *registry, ("connect", self._connect))

    def up(self, timeout: float, on_ready: OnReady | None = None) -> None:
        """Start every part that is not running and wait until each is healthy. Idempotent.

        ``timeout`` is the time each part may take to become healthy; resolving
        the jars (first run only) has its own, longer limit. ``on_ready`` is
        called with each part's status and the seconds it took, as it becomes ready.
        """
        report = on_ready or (lambda status, seconds: None)

        # Check Java and resolve the jars first, so a missing JDK or Maven
        # fails before anything is started.
        started = time.monotonic()
        JavaRuntime.detect()
        resolved = self._artifacts.ensure()
        if self._registry_wanted:
            resolved = self._registry.ensure_artifacts() or resolved
        detail = "resolved by Maven" if resolved else "current, no Maven run"
        report(PartStatus("jvm", True, f"{detail} ({self._artifacts.root})", self._artifacts.log_file), _since(started))

        started = time.monotonic()
        self._postgres.start(timeout)
        self._postgres.bootstrap()
        report(self._postgres.status(), _since(started))

        later = (self._kafka, self._registry, self._connect) if self._registry_wanted else (self._kafka, self._connect)
        for part in later:
            started = time.monotonic()
            part.start(timeout)
            report(part.status(), _since(started))

    def down(self) -> list[tuple[str, bool]]:
        """Stop, in reverse order, every part this stack started; nothing else is signalled.

        Returns (part, was running) pairs. Tries every part even if one fails,
        then raises the first failure.
        """
        results: list[tuple[str, bool]] = []
        failures: list[StackError] = []
        for name, part in reversed(self.parts):
            try:
                results.append((name, part.stop()))
            except StackError as exc:
                logger.error("stopping %s failed: %s", name, exc)
                failures.append(exc)
        if failures:
            raise failures[0]
        return results

    def status(self) -> list[PartStatus]:
        return [part.status() for _, part in self.parts]


def _since(started: float) -> float:
    return time.monotonic() - started
