"""Resident memory (psutil): of a process and its children, or of a process session (a peer's JVM and
whatever it forked), and a sampler that keeps the peak."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from types import TracebackType

import psutil


def rss_bytes(pid: int) -> int | None:
    """Resident bytes of ``pid`` and all its descendants now; None once it is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def session_pids(session: int) -> list[int]:
    """The pids of the live (not zombie) processes in ``session`` (a session leader's pid)."""
    pids = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == session and process.info["status"] != psutil.STATUS_ZOMBIE:
                pids.append(process.pid)
    return pids


def session_rss(session: int, command: str | None = None) -> int:
    """The summed resident bytes of the live processes in ``session``; only those named ``command`` if given."""
    total = 0
    for pid in session_pids(session):
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if command is None or process.name() == command:
                total += process.memory_info().rss
    return total


class PeakSampler:
    """Calls ``read`` every ``interval`` seconds in a thread while the ``with`` block runs; keeps the peak and the
    samples (for 'flat or growing')."""

    def __init__(self, read: Callable[[], int | None], interval: float = 0.5) -> None:
        self._read = read
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.samples: list[int] = []

    @property
    def peak(self) -> int | None:
        return max(self.samples) if self.samples else None

    def _sample(self) -> None:
        value = self._read()
        if value is not None:
            self.samples.append(value)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
