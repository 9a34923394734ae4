"""What the stack's JVM parts (Kafka, Kafka Connect) share: one detached java process per part.

A part lives in ``<home>/<name>``: its generated ``.properties`` config and
``log4j2.properties`` are rewritten at every start, and it logs to
``<home>/logs/<name>.log``. A subclass says what differs: its ports, main
class, heap, config, environment, the preparation before the first start, and
how to tell that it is healthy.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.jvm import JavaRuntime, JvmArtifacts, log4j2_properties, render_properties
from cdcsync.pipeline.stack.parts import PartStatus
from cdcsync.pipeline.stack.processes import ManagedProcess, port_in_use, wait_until

_STOP_TIMEOUT_S = 60.0


class JvmPart(ABC):
    """A JVM part of the stack. Construction touches nothing; ``start`` does the work."""

    name: ClassVar[str]  # the part's name in messages, and its directory, log and pid file
    title: ClassVar[str]  # what it is called while start waits for it, e.g. "Kafka"
    main_class: ClassVar[str]
    heap_max: ClassVar[str]
    config_name: ClassVar[str]  # the file name of its generated config
    log_levels: ClassVar[Mapping[str, str]]  # log4j2 logger name -> level

    def __init__(self, settings: StackSettings, artifacts: JvmArtifacts | None = None) -> None:
        self._settings = settings
        self._artifacts = artifacts or JvmArtifacts(settings)
        self._process = ManagedProcess(self.name, settings.home)
        self._dir = settings.home / self.name

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    @property
    def config_file(self) -> Path:
        return self._dir / self.config_name

    @property
    def log4j_config(self) -> Path:
        return self._dir / "log4j2.properties"

    def start(self, timeout: float) -> None:
        """Start the process unless it runs, then wait until it is healthy. Idempotent."""
        if self._process.running_pid() is None:
            for port in self._ports():
                if port_in_use(self._settings.host, port):
                    raise StackError(self.name, f"port {port} in use by a process cdcsync did not start", self.log_file)
            java = JavaRuntime.detect()
            self._ensure_artifacts()
            self._write_config()
            self._prepare(java)
            argv = self._argv(java)
            extra_env = self._extra_env()
            env = {**os.environ, **extra_env} if extra_env else None
            self._process.start(argv, env=env, cwd=self._dir)
        try:
            wait_until(self._started_and_healthy, timeout, f"{self.title} on {self._address}")
        except TimeoutError as exc:
            raise StackError(self.name, str(exc), self.log_file) from None

    def stop(self) -> bool:
        """Stop the process this stack started; returns whether it was running."""
        return self._process.stop(timeout=_STOP_TIMEOUT_S)

    def status(self) -> PartStatus:
        pid = self._process.running_pid()
        if pid is None:
            return PartStatus(self.name, False, "not running", self.log_file)
        return self._running_status(pid)

    # -- what a part says about itself -------------------------------------------------------------

    @property
    @abstractmethod
    def _address(self) -> str:
        """Where clients reach the part."""

    @abstractmethod
    def _ports(self) -> tuple[int, ...]:
        """The ports the part listens on; each must be free before it starts."""

    @abstractmethod
    def _properties(self) -> Mapping[str, str | int | bool]:
        """The content of ``config_file``."""

    @abstractmethod
    def _healthy(self) -> bool:
        """One health probe of a running process; may raise ``StackError`` for a failure waiting cannot fix."""

    @abstractmethod
    def _running_status(self, pid: int) -> PartStatus:
        """The status of the running process ``pid``."""

    def _extra_env(self) -> Mapping[str, str]:
        """Variables added to the inherited environment of the process."""
        return {}

    def _ensure_artifacts(self) -> None:
        """Resolve what the part runs from, unless it is current."""
        self._artifacts.ensure()

    def _argv(self, java: JavaRuntime) -> list[str]:
        """The part's command line: ``main_class`` on the stack's classpath, given ``config_file``."""
        return java.argv(
            self._artifacts.classpath,
            self.main_class,
            [str(self.config_file)],
            heap_max=self.heap_max,
            log4j_config=self.log4j_config,
        )

    def _prepare(self, java: JavaRuntime) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called before each start of the process, after the config is written."""

    # -- internals ---------------------------------------------------------------------------------

    def _started_and_healthy(self) -> bool:
        if self._process.running_pid() is None:
            raise StackError(self.name, "exited while starting", self.log_file)
        return self._healthy()

    def _write_config(self) -> None:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_properties(self._properties()), encoding="utf-8")
        self.log4j_config.write_text(log4j2_properties(self.log_levels), encoding="utf-8")
