"""Resident memory of a process session, read from ``/proc`` (Linux): a peer's process and its children."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _session_of(stat: str) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid pgrp session ..."; comm may hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[3])


def session_pids(session: int) -> list[int]:
    """The pids of the live processes in ``session`` (a session leader's pid)."""
    pids = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
            if _session_of(stat) == session and " Z " not in stat[stat.rindex(")") :][:4]:
                pids.append(int(entry.name))
    return pids


def rss(pid: int) -> int:
    """The resident bytes of ``pid`` (0 once it is gone)."""
    try:
        pages = int((_PROC / str(pid) / "statm").read_text(encoding="utf-8").split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * _PAGE


def session_rss(session: int) -> int:
    """The summed resident bytes of every live process in ``session``."""
    return sum(rss(pid) for pid in session_pids(session))


def session_rss_of(session: int, command: str) -> int:
    """The summed resident bytes of the live processes in ``session`` named ``command`` (``/proc/<pid>/comm``)."""
    total = 0
    for pid in session_pids(session):
        with contextlib.suppress(OSError):
            if (_PROC / str(pid) / "comm").read_text(encoding="utf-8").strip() == command:
                total += rss(pid)
    return total
