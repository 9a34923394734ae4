"""The sink daemon as a background process of the local stack (``cdcsync up`` / ``sink stop``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline.stack.parts import PartStatus
from pipeline.stack.processes import ManagedProcess
from sink.sink_state import STATE_FILE_ENV, read_state


class BackgroundSink:
    """``cdcsync sink run`` detached, with its log under ``<home>/logs/sink.log``
    and its state (running, reconnecting) in ``<home>/run/sink-state.json``."""

    def __init__(self, home: Path) -> None:
        self._process = ManagedProcess("sink", home)
        self.state_file = home / "run" / "sink-state.json"

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
        self.state_file.unlink(missing_ok=True)
        self._process.start(argv, env={**(os.environ if env is None else env), STATE_FILE_ENV: str(self.state_file)})
        return True

    def stop(self) -> bool:
        """SIGTERM: the sink finishes its batch and leaves the consumer group."""
        return self._process.stop(timeout=60.0)

    def status(self) -> PartStatus:
        pid = self._process.running_pid()
        state = read_state(self.state_file)
        if pid is None:
            # A sink that stopped on an error says why; its last state otherwise means nothing.
            detail = f"not running ({state.describe()})" if state is not None and state.reason else "not running"
        elif state is None or state.pid != pid:
            detail = f"pid {pid}"
        else:
            detail = f"pid {pid}, {state.describe()}"
        return PartStatus(name="sink", running=pid is not None, detail=detail, log_file=self.log_file)
