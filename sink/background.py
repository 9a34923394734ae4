"""The sink daemon as a background process of the local stack (``cdcsync up`` / ``sink stop``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline.stack.parts import PartStatus
from pipeline.stack.processes import ManagedProcess


class BackgroundSink:
    """``cdcsync sink run`` detached, with its log under ``<home>/logs/sink.log``."""

    def __init__(self, home: Path) -> None:
        self._process = ManagedProcess("sink", home)

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    def start(self, env: Mapping[str, str] | None = None) -> bool:
        """Start the sink unless it runs already; True if this call started it.

        The sink inherits the environment, so secrets stay in memory.
        """
        if self._process.running_pid() is not None:
            return False
        argv = [sys.executable, "-m", "pipeline", "sink", "run"]
        self._process.start(argv, env=dict(os.environ if env is None else env))
        return True

    def stop(self) -> bool:
        """SIGTERM: the sink finishes its batch and leaves the consumer group."""
        return self._process.stop(timeout=60.0)

    def status(self) -> PartStatus:
        pid = self._process.running_pid()
        detail = f"pid {pid}" if pid is not None else "not running"
        return PartStatus(name="sink", running=pid is not None, detail=detail, log_file=self.log_file)
