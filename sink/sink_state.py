"""The daemon's own account of its state, in a small JSON file it rewrites atomically.

``cdcsync status`` reads it, because the calendar database (where the offsets
live) may be the very thing that is down. The path comes from
``CDCSYNC_SINK_STATE_FILE``; the background sink of the local stack sets it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

STATE_FILE_ENV = "CDCSYNC_SINK_STATE_FILE"


@dataclass(frozen=True)
class LostDependency:
    dependency: str  # "calendar database", "kafka" or "schema registry"
    since: str  # ISO 8601, UTC
    error: str  # the first line of the last error


@dataclass(frozen=True)
class SinkState:
    pid: int
    state: str  # starting, running, reconnecting, stopped
    since: str
    lost: tuple[LostDependency, ...] = field(default=())
    reason: str = ""  # why it stopped, if it did

    def describe(self, now: datetime | None = None) -> str:
        """One line for ``cdcsync status``: what the sink lost, since when."""
        if not self.lost:
            return f"{self.state} since {self.since}" + (f": {self.reason}" if self.reason else "")
        now = now or datetime.now(UTC)
        losses = "; ".join(
            f"{lost.dependency} lost {(now - datetime.fromisoformat(lost.since)).total_seconds():.0f}s ago"
            f" (since {lost.since}): {lost.error}"
            for lost in self.lost
        )
        return f"{self.state}: {losses}"


def write_state(path: Path, state: SinkState) -> None:
    """Replace the file in one rename, so a reader never sees half a state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(state), out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_state(path: Path) -> SinkState | None:
    """The last state written, or None if there is none (or it is unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        lost = tuple(LostDependency(**item) for item in raw.pop("lost", []))
        return SinkState(**raw, lost=lost)
    except (OSError, ValueError, TypeError):
        return None
