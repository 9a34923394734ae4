"""What every part of the local stack reports about itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PartStatus:
    """One part's state as ``stack status`` shows it.

    ``detail`` is a short human-readable line (an address, a version, or why
    the part is down); ``log_file`` is where the part writes its log, if any.
    """

    name: str
    running: bool
    detail: str
    log_file: Path | None = None
