"""A change workload on the source databases in a thread, for tests that inject faults under load."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from types import TracebackType

from cdcsync.pipeline.sources.workload import ChangeWorkload


class BackgroundWorkload:
    """``ChangeWorkload`` applying a change every ``pause_s`` in a thread while the ``with`` block runs.

    ``applied`` counts the committed changes. Leaving the block stops the thread and waits for it; an error
    that ended the thread is raised then, so a writer that died is not taken for a quiet one.
    """

    def __init__(self, urls: Mapping[str, str], seed: int, pause_s: float = 0.02) -> None:
        self._urls = dict(urls)
        self._seed = seed
        self._pause_s = pause_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-workload", daemon=True)
        self._error: list[BaseException] = []
        self.applied = 0

    def _run(self) -> None:
        try:
            with ChangeWorkload(self._urls, random.Random(self._seed)) as workload:
                while not self._stop.is_set():
                    workload.apply_next()
                    self.applied += 1
                    time.sleep(self._pause_s)
        except BaseException as exc:  # raised in the test's thread on leaving the block
            self._error.append(exc)

    def __enter__(self) -> BackgroundWorkload:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if exc is None and self._error:
            raise RuntimeError(f"the background workload stopped: {self._error[0]!r}") from self._error[0]
