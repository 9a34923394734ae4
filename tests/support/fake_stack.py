"""Stand-ins for the local stack's parts, for unit tests of ``LocalStack``'s ordering (no process runs)."""

from __future__ import annotations

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.stack.jvm import JvmArtifacts
from cdcsync.pipeline.stack.parts import PartStatus


class RecordingPart:
    """Records ``start``, ``bootstrap``, ``stop`` and ``resolve`` in ``calls``.

    ``running`` is what ``is_running`` and ``status`` report; ``stop`` says it was running,
    or raises ``StackError`` with ``fail_stop``.
    """

    def __init__(self, name: str, calls: list[str], *, running: bool = False, fail_stop: bool = False) -> None:
        self.name, self.calls, self.running, self.fail_stop = name, calls, running, fail_stop

    def start(self, timeout: float) -> None:
        self.calls.append(f"start {self.name}")

    def bootstrap(self) -> None:
        self.calls.append(f"bootstrap {self.name}")

    def stop(self) -> bool:
        self.calls.append(f"stop {self.name}")
        if self.fail_stop:
            raise StackError(self.name, "would not stop")
        return True

    def status(self) -> PartStatus:
        return PartStatus(self.name, self.running, "")

    def is_running(self) -> bool:
        return self.running

    def ensure_artifacts(self) -> bool:
        self.calls.append(f"resolve {self.name}")
        return True


class ResolvedJars(JvmArtifacts):
    """The stack's jars as if Maven had resolved them already."""

    def ensure(self, timeout: float = 1200.0) -> bool:
        return False
